/**
 * The sync feed (`{url}/sync/v1`, docs/sync.md) through the gateway, with real D1, R2 and
 * Durable Object bindings: catching up by cursor (also after eviction, flush and freeze),
 * resync with a snapshot, exactly-once pushes, authorization, limits and bad input.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import type { SyncHub } from "../durable-objects/sync/hub.ts";
import { trimWal, walFloor } from "../durable-objects/sync/retention.ts";
import { readWal, type WalEntry } from "../durable-objects/wal.ts";
import { account } from "./helpers/accounts.ts";
import { admin, projectWithSchema, rest, type TestProject, workerApi } from "./helpers/api.ts";
import {
  type Api,
  connectApp,
  createOwnedProject,
  grantOf,
  registerApp,
  revokeGrant,
  signup,
} from "./helpers/oauth.ts";
import { applyAll, type Change, connectSync, type SyncClient } from "./helpers/sync.ts";

const testEnv = env as unknown as { PROJECT: DurableObjectNamespace<ProjectDO> };

const SCHEMA = {
  tables: {
    todos: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text" },
        status: { type: "text" },
        done: { type: "boolean", default: false },
      },
      policy: { read: "public", write: "public" },
    },
    notes: {
      columns: { id: { type: "uuid", primaryKey: true, default: "random" }, body: { type: "text" } },
      policy: { read: "owner", write: "owner" },
    },
    secrets: {
      columns: { id: { type: "integer", primaryKey: true }, value: { type: "text" } },
      policy: { read: "service", write: "service" },
    },
  },
};

function stubOf(p: TestProject) {
  return testEnv.PROJECT.get(testEnv.PROJECT.idFromName(p.id));
}

async function walAfter(p: TestProject, after: number): Promise<WalEntry[]> {
  return runInDurableObject(stubOf(p), (_i, state) => readWal(state.storage.sql, after, 100_000));
}

/** Changes the sync hub's limits on the live instance (they reset when the object reloads). */
async function setLimits(p: TestProject, limits: Partial<SyncHub["limits"]>): Promise<void> {
  await runInDurableObject(stubOf(p), (instance) => {
    Object.assign((instance as unknown as { sync: SyncHub }).sync.limits, limits);
  });
}

async function ok(res: Response | Promise<Response>, status = [200, 201, 204]): Promise<void> {
  const r = await res;
  expect(status, await r.clone().text()).toContain(r.status);
}

/** 1,000 committed changes by other clients: 600 inserts (anon), 300 updates, 100 deletes (service). */
async function thousandChanges(p: TestProject): Promise<void> {
  const rows = Array.from({ length: 600 }, (_, i) => ({ id: i + 1, title: `t${i + 1}` }));
  await ok(rest(p, "/todos", { method: "POST", key: p.anonKey, body: rows }));
  await ok(rest(p, "/todos?id=lte.300", { method: "PATCH", body: { status: "seen" } }));
  await ok(rest(p, "/todos?id=gt.500&id=lte.600", { method: "DELETE" }));
}

async function table(p: TestProject, path: string): Promise<Record<string, unknown>[]> {
  const res = await rest(p, path);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Record<string, unknown>[];
}

const byId = (row: Record<string, unknown>) => String(row.id);

async function closed(c: SyncClient): Promise<void> {
  c.close();
  await c.waitClosed();
}

/** The missed changes are exactly the WAL's entries after `cursor`, once each, in order. */
async function expectExactly(p: TestProject, cursor: number, changes: Change[]): Promise<void> {
  const wal = await walAfter(p, cursor);
  expect(wal).toHaveLength(1000);
  expect(changes).toHaveLength(1000);
  expect(changes.map((c) => c.lsn)).toEqual(wal.map((e) => e.lsn));
  expect(new Set(changes.map((c) => c.lsn)).size).toBe(1000);
  expect(changes.map((c) => [c.op, c.pk.id])).toEqual(wal.map((e) => [e.op.toLowerCase(), e.pk[0]]));
}

describe("sync: pull by cursor", () => {
  it("a client that reconnects with its cursor gets exactly the 1,000 changes it missed, in order", async () => {
    const p = await projectWithSchema(SCHEMA);
    await ok(rest(p, "/todos", { method: "POST", body: { id: 1000, title: "before" } }));
    const a = await connectSync(p, p.anonKey);
    const first = await a.pull(0, ["todos"]);
    expect(first.changes.map((c) => [c.op, c.pk, c.row?.title])).toEqual([
      ["insert", { id: 1000 }, "before"],
    ]);
    const local = applyAll(new Map(), a.frames, byId);
    await closed(a);

    await thousandChanges(p);
    const b = await connectSync(p, p.anonKey);
    const from = b.frames.length;
    const { changes, cursor } = await b.pull(first.cursor, ["todos"]);
    await expectExactly(p, first.cursor, changes);
    expect(b.frames[from]).toMatchObject({ type: "catchup", cursor: first.cursor });
    expect(cursor).toBe(changes.at(-1)!.lsn);
    // Applied by primary key, they give the table.
    applyAll(local, b.frames.slice(from), byId);
    expect([...local.values()].sort((x, y) => Number(x.id) - Number(y.id))).toEqual(
      await table(p, "/todos?order=id"),
    );
    // Live: the next write arrives without asking.
    const at = b.frames.length;
    await ok(rest(p, "/todos?id=eq.1", { method: "PATCH", body: { done: true } }));
    const live = await b.waitFor((f) => f.type === "changes", 10_000, at);
    expect(live.changes).toEqual([
      expect.objectContaining({ op: "update", pk: { id: 1 }, row: expect.objectContaining({ done: true }) }),
    ]);
    b.close();
  });

  it("catches up the same after the Durable Object was evicted", async () => {
    const p = await projectWithSchema(SCHEMA);
    const a = await connectSync(p, p.anonKey);
    const first = await a.pull(0, ["todos"]);
    await closed(a);
    await thousandChanges(p);
    await abortAllDurableObjects();
    const b = await connectSync(p, p.anonKey);
    const { changes } = await b.pull(first.cursor, ["todos"]);
    await expectExactly(p, first.cursor, changes);
    b.close();
  });

  it("catches up the same after a flush and a freeze (the WAL tail is archived and restored)", async () => {
    const p = await projectWithSchema(SCHEMA);
    await ok(rest(p, "/todos", { method: "POST", body: { id: 1000, title: "before" } }));
    const a = await connectSync(p, p.anonKey);
    const first = await a.pull(0, ["todos"]);
    await closed(a);
    await thousandChanges(p);
    const expected = await walAfter(p, first.cursor);
    expect(await admin(p, "flush")).toMatchObject({ flushed: true });
    expect(await admin(p, "freeze")).toMatchObject({ frozen: true });
    const b = await connectSync(p, p.anonKey);
    const { changes, cursor } = await b.pull(first.cursor, ["todos"]);
    expect(changes.map((c) => c.lsn)).toEqual(expected.map((e) => e.lsn));
    expect(changes.map((c) => [c.op, c.pk.id])).toEqual(expected.map((e) => [e.op.toLowerCase(), e.pk[0]]));
    // LSNs go on from where they were: the next change is the next LSN.
    const at = b.frames.length;
    await ok(rest(p, "/todos", { method: "POST", body: { id: 5000, title: "after" } }));
    const next = await b.waitFor((f) => f.type === "changes", 10_000, at);
    expect((next.changes as Change[])[0]!.lsn).toBe(cursor + 1);
    b.close();
  });
});

describe("sync: sockets kept through hibernation", () => {
  it("resumes a live socket's stream from its saved position after the object lost its memory", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectSync(p, p.anonKey);
    await c.pull(0, ["todos"]);
    await ok(rest(p, "/todos", { method: "POST", body: [{ id: 1 }, { id: 2 }] }));
    await c.waitFor((f) => f.type === "changes" && (f.changes as Change[]).some((ch) => ch.pk.id === 2));
    // What a wake after hibernation does: every in-memory structure rebuilt, sockets kept.
    await runInDurableObject(stubOf(p), (instance) => {
      (instance as unknown as { load(): void }).load();
    });
    await ok(rest(p, "/todos", { method: "POST", body: [{ id: 3 }, { id: 4 }] }));
    await ok(rest(p, "/todos?id=eq.1", { method: "DELETE" }));
    await c.waitFor((f) => f.type === "changes" && (f.changes as Change[]).some((ch) => ch.op === "delete"));
    const wal = await walAfter(p, 0);
    expect(c.changes().map((ch) => ch.lsn)).toEqual(wal.map((e) => e.lsn));
    // The restored socket caught up from its saved cursor and went live again.
    expect(c.frames.filter((f) => f.type === "live")).toHaveLength(2);
    // Its client id and credential came back too: a push is answered from the ledger.
    const m = { id: 1, op: "insert", table: "todos", row: { id: 9 } };
    expect((await c.push("k", [m]))[0]).toMatchObject({ status: "applied" });
    await runInDurableObject(stubOf(p), (instance) => {
      (instance as unknown as { load(): void }).load();
    });
    expect((await c.push("k", [m]))[0]).toMatchObject({ status: "duplicate" });
    c.close();
  });
});

describe("sync: WAL retention", () => {
  it("keeps the newest changes and the young ones, as a suffix; older cursors resync", async () => {
    const p = await projectWithSchema(SCHEMA);
    await ok(
      rest(p, "/todos", { method: "POST", body: Array.from({ length: 20 }, (_, i) => ({ id: i + 1 })) }),
    );
    const floors = await runInDurableObject(stubOf(p), (_i, state) => {
      const sql = state.storage.sql;
      const now = Date.now();
      const out = [walFloor(sql)];
      trimWal(sql, { changes: 5, ms: 60_000 }, 20, now); // all young: all kept
      out.push(walFloor(sql));
      trimWal(sql, { changes: 5, ms: 60_000 }, 20, now + 120_000); // all old: the newest 5 kept
      out.push(walFloor(sql));
      return out;
    });
    expect(floors).toEqual([0, 0, 15]);
    const c = await connectSync(p, p.anonKey);
    const from = c.frames.length;
    const { changes } = await c.pull(15, ["todos"]);
    expect(c.frames[from]).toMatchObject({ type: "catchup", cursor: 15 });
    expect(changes.map((ch) => ch.pk.id)).toEqual([16, 17, 18, 19, 20]);
    const at = c.frames.length;
    await c.pull(14, ["todos"]);
    expect(c.frames[at]).toMatchObject({ type: "resync", reason: "cursor_too_old", cursor: 20 });
    c.close();
  });

  it("a flush trims the WAL to the project's retention settings (tuning)", async () => {
    const p = await projectWithSchema(SCHEMA);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.walRetention = { changes: 3, ms: 0 };
    });
    await ok(
      rest(p, "/todos", { method: "POST", body: Array.from({ length: 10 }, (_, i) => ({ id: i + 1 })) }),
    );
    await admin(p, "flush");
    const c = await connectSync(p, p.anonKey);
    const { changes } = await c.pull(7, ["todos"]);
    expect(changes.map((ch) => ch.pk.id)).toEqual([8, 9, 10]);
    const at = c.frames.length;
    await c.pull(6, ["todos"]);
    expect(c.frames[at]).toMatchObject({ type: "resync", reason: "cursor_too_old" });
    c.close();
  });

  it("prunes push records with the WAL, keeping each client's newest for the order rule", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectSync(p, p.anonKey);
    const m = (id: number) => ({ id, op: "insert", table: "todos", row: { id } });
    await c.push("k", [m(1), m(2)]);
    await c.push("j", [m(3)]);
    await runInDurableObject(stubOf(p), (_i, state) => {
      trimWal(state.storage.sql, { changes: 0, ms: 0 }, 3, Date.now());
    });
    const [one, two, three] = [
      (await c.push("k", [m(1)]))[0],
      (await c.push("k", [m(2)]))[0],
      (await c.push("j", [m(3)]))[0],
    ];
    // Mutation 1's record went with the WAL: it is refused, not applied a second time.
    expect(one).toMatchObject({ status: "rejected", error: { code: "HEARTH_SYNC_MUTATION_ORDER" } });
    expect(two).toMatchObject({ status: "duplicate" });
    expect(three).toMatchObject({ status: "duplicate" });
    expect(await table(p, "/todos?select=id&order=id")).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    c.close();
  });
});

describe("sync: resync", () => {
  it("answers a cursor older than the WAL's retention with a snapshot that, with the changes after its cursor, is the table", async () => {
    const p = await projectWithSchema(SCHEMA);
    // 10,050 changes, then a flush: the WAL keeps its newest 10,000 (HEARTH_WAL_RETAIN_CHANGES).
    const rows = Array.from({ length: 10_050 }, (_, i) => ({ id: i + 1, title: `row ${i + 1}` }));
    await ok(rest(p, "/todos", { method: "POST", body: rows }));
    expect(await admin(p, "flush")).toMatchObject({ flushed: true });
    await ok(rest(p, "/todos", { method: "POST", body: { id: 20_000, title: "hot" } }));
    // Small pages, one frame in flight: writes interleave with the snapshot.
    await setLimits(p, { snapshotPage: 700, window: 1 });
    const c = await connectSync(p, p.anonKey);
    c.send({ type: "pull", cursor: 0, tables: ["todos"] });
    const resync = await c.waitFor((f) => f.type === "resync");
    expect(resync).toMatchObject({ reason: "cursor_too_old" });
    for (let i = 0; i < 10; i++) {
      await ok(rest(p, `/todos?id=eq.${1 + i * 997}`, { method: "PATCH", body: { title: `changed ${i}` } }));
      await ok(rest(p, `/todos?id=eq.${500 + i * 1003}`, { method: "DELETE" }));
      await ok(rest(p, "/todos", { method: "POST", body: { id: 30_000 + i, title: `new ${i}` } }));
    }
    const end = await c.waitFor((f) => f.type === "snapshot_end", 30_000);
    expect(end.cursor).toBe(resync.cursor);
    await c.waitFor((f) => f.type === "live", 30_000);
    // Writes committed after the catch-up went live arrive through the change feed.
    const { wal } = await admin<{ wal: { lastLsn: number } }>(p, "stats");
    await c.waitFor(
      (f) => (f.type === "changes" || f.type === "live") && Number(f.cursor) >= wal.lastLsn,
      30_000,
    );
    const after = c.changes();
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((ch) => ch.lsn > Number(resync.cursor))).toBe(true);
    const state = applyAll(new Map(), c.frames, byId);
    const expected = [
      ...(await table(p, "/todos?order=id&limit=10000")),
      ...(await table(p, "/todos?order=id&offset=10000")),
    ];
    expect(state.size).toBe(expected.length);
    expect([...state.values()].sort((x, y) => Number(x.id) - Number(y.id))).toEqual(expected);
    c.close();
  });

  it("sends a snapshot for a null cursor and for a cursor ahead of the WAL", async () => {
    const p = await projectWithSchema(SCHEMA);
    await ok(
      rest(p, "/todos", {
        method: "POST",
        body: [
          { id: 1, title: "a" },
          { id: 2, title: "b" },
        ],
      }),
    );
    const c = await connectSync(p, p.anonKey);
    const fresh = await c.pull(null, ["todos"]);
    expect(c.frames.find((f) => f.type === "resync")).toMatchObject({ reason: "requested", cursor: 2 });
    expect(c.frames.filter((f) => f.type === "snapshot").flatMap((f) => f.rows as unknown[])).toEqual([
      { id: 1, title: "a", status: null, done: false },
      { id: 2, title: "b", status: null, done: false },
    ]);
    expect(fresh).toEqual({ changes: [], cursor: 2 });
    const from = c.frames.length;
    await c.pull(99, ["todos"]);
    expect(c.frames[from]).toMatchObject({ type: "resync", reason: "cursor_ahead", cursor: 2 });
    c.close();
  });
});

describe("sync: push", () => {
  it("applies a mutation pushed twice once, also from another socket and after eviction", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectSync(p, p.anonKey);
    const m = { id: 1, op: "insert", table: "todos", row: { id: 7, title: "once" } };
    const [first] = await c.push("client-a", [m]);
    expect(first).toMatchObject({ type: "push_result", clientId: "client-a", id: 1, status: "applied" });
    expect(typeof first!.lsn).toBe("number");
    const [again] = await c.push("client-a", [m]);
    expect(again).toMatchObject({ id: 1, status: "duplicate", lsn: first!.lsn });
    const d = await connectSync(p, p.anonKey);
    expect((await d.push("client-a", [m]))[0]).toMatchObject({ status: "duplicate", lsn: first!.lsn });
    c.close();
    d.close();
    await abortAllDurableObjects();
    const e = await connectSync(p, p.anonKey);
    expect((await e.push("client-a", [m]))[0]).toMatchObject({ status: "duplicate", lsn: first!.lsn });
    // Another client's mutation 1 is its own.
    expect((await e.push("client-b", [{ ...m, row: { id: 8 } }]))[0]).toMatchObject({ status: "applied" });
    expect(await table(p, "/todos?select=id,title&order=id")).toEqual([
      { id: 7, title: "once" },
      { id: 8, title: null },
    ]);
    const wal = await walAfter(p, 0);
    expect(wal.map((w) => [w.op, w.pk])).toEqual([
      ["INSERT", [7]],
      ["INSERT", [8]],
    ]);
    expect(wal[0]!.lsn).toBe(first!.lsn);
    e.close();
  });

  it("keeps its answers across a freeze", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectSync(p, p.anonKey);
    const m = { id: 3, op: "upsert", table: "todos", row: { id: 1, title: "x" } };
    const [r] = await c.push("c", [m]);
    await closed(c);
    expect(await admin(p, "freeze")).toMatchObject({ frozen: true });
    const d = await connectSync(p, p.anonKey);
    expect((await d.push("c", [m]))[0]).toMatchObject({ status: "duplicate", lsn: r!.lsn });
    expect((await walAfter(p, 0)).map((w) => w.lsn)).toEqual([r!.lsn]);
    d.close();
  });

  it("applies insert, upsert, update and delete in order, answering each with its LSN", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectSync(p, p.anonKey);
    const results = await c.push("c1", [
      { id: 1, op: "insert", table: "todos", row: { id: 1, title: "a", status: "new" } },
      { id: 2, op: "update", table: "todos", pk: { id: 1 }, values: { title: "b" } },
      { id: 3, op: "upsert", table: "todos", row: { id: 1, done: true } },
      { id: 4, op: "insert", table: "todos", row: { id: 2 } },
      { id: 5, op: "delete", table: "todos", pk: { id: 2 } },
      { id: 6, op: "delete", table: "todos", pk: { id: 2 } },
    ]);
    expect(results.map((r) => [r.id, r.status])).toEqual([
      [1, "applied"],
      [2, "applied"],
      [3, "applied"],
      [4, "applied"],
      [5, "applied"],
      [6, "applied"],
    ]);
    const lsns = results.slice(0, 5).map((r) => r.lsn as number);
    expect(lsns).toEqual([...lsns].sort((a, b) => a - b));
    // Deleting what is already gone changes nothing: no LSN.
    expect(results[5]!.lsn).toBeNull();
    // The upsert merged only the column it sent.
    expect(await table(p, "/todos")).toEqual([{ id: 1, title: "b", status: "new", done: true }]);
    c.close();
  });

  it("resolves concurrent updates last-writer-wins per column, in commit order", async () => {
    const p = await projectWithSchema(SCHEMA);
    await ok(rest(p, "/todos", { method: "POST", body: { id: 1, title: "t0", status: "s0" } }));
    const a = await connectSync(p, p.anonKey);
    const b = await connectSync(p, p.anonKey);
    // Both edited the row offline; a's push commits first.
    await a.push("a", [
      { id: 1, op: "update", table: "todos", pk: { id: 1 }, values: { title: "ta", done: true } },
    ]);
    await b.push("b", [{ id: 1, op: "update", table: "todos", pk: { id: 1 }, values: { title: "tb" } }]);
    await b.push("b", [{ id: 2, op: "update", table: "todos", pk: { id: 1 }, values: { status: "sb" } }]);
    expect(await table(p, "/todos")).toEqual([{ id: 1, title: "tb", status: "sb", done: true }]);
    a.close();
    b.close();
  });

  it("rejects bad mutations one by one with a clear error, and changes nothing", async () => {
    const p = await projectWithSchema(SCHEMA);
    await ok(rest(p, "/todos", { method: "POST", body: { id: 1, title: "kept" } }));
    const before = await walAfter(p, 0);
    const c = await connectSync(p, p.anonKey);
    const results = await c.push("c", [
      { id: 1, op: "insert", table: "nope", row: { id: 1 } },
      { id: 2, op: "insert", table: "secrets", row: { id: 1, value: "x" } },
      { id: 3, op: "insert", table: "todos", row: { id: "abc" } },
      { id: 4, op: "insert", table: "todos", row: { id: 1, title: "dup" } },
      { id: 5, op: "update", table: "todos", pk: { id: 99 }, values: { title: "gone" } },
      { id: 6, op: "update", table: "todos", pk: { title: "kept" }, values: { title: "x" } },
      { id: 7, op: "merge", table: "todos", row: {} },
      { id: 8, op: "insert", table: "todos", row: { id: 2, nope: 1 } },
    ]);
    expect(results.map((r) => [r.id, r.status, r.error?.code])).toEqual([
      [1, "rejected", "PGRST205"],
      [2, "rejected", "42501"],
      [3, "rejected", "22P02"],
      [4, "rejected", "23505"],
      [5, "rejected", "HEARTH_SYNC_ROW_NOT_FOUND"],
      [6, "rejected", "HEARTH_BAD_FRAME"],
      [7, "rejected", "HEARTH_BAD_FRAME"],
      [8, "rejected", "PGRST204"],
    ]);
    for (const r of results) expect(r.error!.message.length).toBeGreaterThan(5);
    // A rejection is an answer too: the same id gets it again, without another attempt.
    const [again] = await c.push("c", [{ id: 4, op: "insert", table: "todos", row: { id: 3 } }]);
    expect(again).toMatchObject({ status: "rejected", error: { code: "23505" } });
    // Ids must increase per client: an older unseen id is refused, not applied.
    await c.push("c", [{ id: 20, op: "insert", table: "todos", row: { id: 20 } }]);
    const [late] = await c.push("c", [{ id: 10, op: "insert", table: "todos", row: { id: 10 } }]);
    expect(late).toMatchObject({ status: "rejected", error: { code: "HEARTH_SYNC_MUTATION_ORDER" } });
    expect(await table(p, "/todos?select=id,title&order=id")).toEqual([
      { id: 1, title: "kept" },
      { id: 20, title: null },
    ]);
    expect((await walAfter(p, 0)).length).toBe(before.length + 1);
    c.close();
  });
});

const api: Api = workerApi;

describe("sync: authorization", () => {
  it("sends no row of an owner table to another account, live or in a snapshot", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`alice-${crypto.randomUUID()}`);
    const bob = await account(`bob-${crypto.randomUUID()}`);
    const a = await connectSync(p, alice);
    await a.pull(0, ["notes"]);
    const from = a.frames.length;
    await ok(rest(p, "/notes", { method: "POST", key: bob, body: [{ body: "bob 1" }, { body: "bob 2" }] }));
    await ok(rest(p, "/notes", { method: "POST", key: alice, body: { body: "alice 1" } }));
    // Delivery is in LSN order: alice's own change arriving shows bob's were held back.
    await a.waitFor((f) => f.type === "changes", 10_000, from);
    expect(a.changes(from).map((c) => c.row?.body)).toEqual(["alice 1"]);
    // Alice pushes as herself; bob cannot reach her row by key.
    const mine = a.changes(from)[0]!.pk;
    expect(
      (await a.push("alice", [{ id: 1, op: "insert", table: "notes", row: { body: "alice 2" } }]))[0],
    ).toMatchObject({ status: "applied" });
    const b = await connectSync(p, bob);
    const [steal] = await b.push("bob", [
      { id: 1, op: "update", table: "notes", pk: mine, values: { body: "mine now" } },
    ]);
    expect(steal).toMatchObject({ status: "rejected", error: { code: "HEARTH_SYNC_ROW_NOT_FOUND" } });
    // A snapshot (and catching up from 0) shows bob only his rows.
    await b.pull(null, ["notes"]);
    expect(
      b.frames
        .filter((f) => f.type === "snapshot")
        .flatMap((f) => (f.rows as { body: string }[]).map((r) => r.body))
        .sort(),
    ).toEqual(["bob 1", "bob 2"]);
    const caught = await b.pull(0, ["notes"]);
    expect(caught.changes.map((c) => c.row?.body)).toEqual(["bob 1", "bob 2"]);
    // The anon key may not follow the table at all.
    const anon = await connectSync(p, p.anonKey);
    anon.send({ type: "pull", cursor: 0, tables: ["notes"], ref: "r1" });
    expect(await anon.waitFor((f) => f.type === "error")).toMatchObject({ code: "42501", ref: "r1" });
    a.close();
    b.close();
    anon.close();
  });

  it("closes an app's socket when the user revokes its grant mid-subscription", async () => {
    const dev = await signup(api, "sync-dev");
    const user = await signup(api, "sync-user");
    const p = await createOwnedProject(api, user.accessToken, "synced");
    const TABLE = "org.sync.todos";
    const app = await registerApp(api, dev.accessToken, "Sync app", {
      [TABLE]: { columns: { id: { type: "integer", primaryKey: true }, title: { type: "text" } } },
    });
    const tokens = await connectApp(api, user.accessToken, {
      clientId: app.clientId,
      projectId: p.id,
      scope: `db:${TABLE}:write`,
    });
    const c = await connectSync(p, tokens.access_token);
    await c.pull(0, [TABLE]);
    const as = (id: number) =>
      rest(p, `/${TABLE}`, { method: "POST", key: user.accessToken, body: { id, title: `row ${id}` } });
    const from = c.frames.length;
    await ok(as(1));
    await c.waitFor((f) => f.type === "changes", 10_000, from);
    expect((await c.push("app", [{ id: 1, op: "insert", table: TABLE, row: { id: 2 } }]))[0]).toMatchObject({
      status: "applied",
    });
    const grant = await grantOf(api, user.accessToken, app.clientId, p.id);
    await revokeGrant(api, user.accessToken, grant.id);
    expect(await c.waitClosed()).toMatchObject({ code: 4001, reason: "grant revoked" });
    const seen = c.frames.length;
    await ok(as(3));
    expect(c.frames.length).toBe(seen);
    // Reconnecting with the revoked token is refused.
    const res = await api.fetch(`${p.url}/sync/v1?apikey=${tokens.access_token}`, {
      headers: { upgrade: "websocket" },
    });
    expect(res.status).toBe(401);
  });

  it("acts as a user after an auth frame on a socket opened with the anon key", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`alice-${crypto.randomUUID()}`);
    await ok(rest(p, "/notes", { method: "POST", key: alice, body: { body: "hers" } }));
    const c = await connectSync(p, p.anonKey);
    c.send({ type: "auth", access_token: "not-a-token", ref: 1 });
    expect(await c.waitFor((f) => f.type === "error")).toMatchObject({ code: "PGRST301", ref: 1 });
    c.send({ type: "auth", access_token: alice, ref: 2 });
    expect(await c.waitFor((f) => f.type === "auth_ok")).toMatchObject({ role: "authenticated", ref: 2 });
    const { changes } = await c.pull(0, ["notes"]);
    expect(changes.map((ch) => ch.row?.body)).toEqual(["hers"]);
    c.close();
  });
});

describe("sync: limits and bad input", () => {
  it("answers malformed frames with an error frame and keeps the socket working", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectSync(p, p.anonKey);
    const bad: [unknown, string][] = [
      ["not json", "HEARTH_BAD_FRAME"],
      ["[1,2]", "HEARTH_BAD_FRAME"],
      [{ type: "nope" }, "HEARTH_BAD_FRAME"],
      [{ type: "pull", cursor: -1, tables: ["todos"] }, "HEARTH_BAD_FRAME"],
      [{ type: "pull", cursor: 0, tables: [] }, "HEARTH_BAD_FRAME"],
      [{ type: "pull", cursor: 0, tables: ["nope"] }, "PGRST205"],
      [{ type: "ack", seq: 99 }, "HEARTH_BAD_FRAME"],
      [{ type: "push", clientId: "c", mutations: [{ op: "insert" }] }, "HEARTH_BAD_FRAME"],
      [{ type: "push", clientId: "", mutations: [] }, "HEARTH_BAD_FRAME"],
      [{ type: "ping", pad: "x".repeat(300 * 1024) }, "HEARTH_REALTIME_LIMIT"],
    ];
    for (const [frame, code] of bad) {
      const from = c.frames.length;
      c.send(frame);
      const err = await c.waitFor((f) => f.type === "error", 10_000, from);
      expect(err, JSON.stringify(frame).slice(0, 80)).toMatchObject({ code, message: expect.any(String) });
    }
    c.ws.send(new Uint8Array([1, 2, 3]));
    expect(
      await c.waitFor(
        (f) => f.type === "error" && f.message === "Binary frames are not part of the sync protocol",
      ),
    ).toBeTruthy();
    c.send({ type: "pull", cursor: 0, tables: Array.from({ length: 101 }, (_, i) => `t${i}`) });
    expect(
      await c.waitFor(
        (f) =>
          f.type === "error" && f.code === "HEARTH_REALTIME_LIMIT" && String(f.message).includes("tables"),
      ),
    ).toBeTruthy();
    // Still working: pull, push and ping.
    await ok(rest(p, "/todos", { method: "POST", body: { id: 1 } }));
    expect((await c.pull(0, ["todos"])).changes).toHaveLength(1);
    c.send({ type: "ping", ref: "p" });
    expect(await c.waitFor((f) => f.type === "pong")).toMatchObject({ ref: "p", cursor: 1 });
    expect(await walAfter(p, 0)).toHaveLength(1);
    c.close();
  });

  it("paces catch-up by acknowledgements and drops a live consumer that stops reading (4008)", async () => {
    const p = await projectWithSchema(SCHEMA);
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i + 1 }));
    await ok(rest(p, "/todos", { method: "POST", body: rows }));
    await setLimits(p, { batchChanges: 5, window: 2, maxUnackedFrames: 3 });
    const c = await connectSync(p, p.anonKey);
    c.autoAck = false;
    c.send({ type: "pull", cursor: 0, tables: ["todos"] });
    await c.waitFor((f) => f.type === "changes" && f.seq === 2);
    // The window is full: a ping's answer shows nothing more was sent meanwhile.
    c.send({ type: "ping" });
    await c.waitFor((f) => f.type === "pong");
    expect(c.frames.filter((f) => f.type === "changes")).toHaveLength(2);
    c.ack(2);
    await c.waitFor((f) => f.type === "changes" && f.seq === 4);
    c.autoAck = true;
    c.ack(4);
    await c.waitFor((f) => f.type === "live");
    expect(c.changes().map((ch) => ch.pk.id)).toEqual(rows.map((r) => r.id));
    // Live and no longer acknowledging: dropped after maxUnackedFrames, with a clear code.
    c.autoAck = false;
    const written: number[] = [];
    for (let id = 100; id < 106 && !c.closed; id++) {
      await ok(rest(p, "/todos", { method: "POST", body: { id } }));
      written.push(id);
    }
    const why = await c.waitClosed();
    expect(why.code).toBe(4008);
    expect(why.reason).toMatch(/slow consumer/);
    // Nothing is lost: reconnecting with the last cursor it applied resumes.
    const d = await connectSync(p, p.anonKey);
    const last = c.changes().at(-1)!.lsn;
    const { changes } = await d.pull(last, ["todos"]);
    expect(changes.map((ch) => ch.pk.id)).toEqual(
      written.filter((id) => !c.changes().some((ch) => ch.pk.id === id)),
    );
    expect(changes.length).toBeGreaterThan(0);
    d.close();
  });
});
