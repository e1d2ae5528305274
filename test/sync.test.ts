/**
 * The sync feed (`{url}/sync/v1`, docs/sync.md) through the gateway, with real D1, R2 and
 * Durable Object bindings: catching up by cursor (also after eviction, flush and freeze),
 * resync with a snapshot, exactly-once pushes, authorization, limits and bad input.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { archiveKey, loadArchive, restoreArchive, saveArchive } from "../durable-objects/sync/archive.ts";
import type { SyncHub } from "../durable-objects/sync/hub.ts";
import { trimWal, walFloor } from "../durable-objects/sync/retention.ts";
import { readWal, type WalEntry } from "../durable-objects/wal.ts";
import { notesTable, SECRETS_TABLE, TODOS_TABLE } from "./fixtures/feed-tables.ts";
import { account } from "./helpers/accounts.ts";
import { admin, projectWithSchema, rest, type TestProject, workerApi } from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";
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

const testEnv = env as unknown as { PROJECT: DurableObjectNamespace<ProjectDO>; BUCKET: R2Bucket };

const SCHEMA = {
  tables: { todos: TODOS_TABLE, notes: notesTable("uuid"), secrets: SECRETS_TABLE },
};

async function walAfter(p: TestProject, after: number): Promise<WalEntry[]> {
  return runInDurableObject(stubOf(p), (_i, state) => readWal(state.storage.sql, after, 100_000));
}

/** Changes the sync hub's limits on the live instance (they reset when the object reloads). */
async function setLimits(p: TestProject, limits: Partial<SyncHub["limits"]>): Promise<void> {
  await runInDurableObject(stubOf(p), (instance) => {
    Object.assign((instance as unknown as { sync: SyncHub }).sync.limits, limits);
  });
}

function hubOf(instance: unknown): SyncHub {
  return (instance as { sync: SyncHub }).sync;
}

/** Trims the whole WAL at the next flush's rule (every change old enough to go). */
async function trimAll(p: TestProject): Promise<void> {
  await runInDurableObject(stubOf(p), (_i, state) => {
    const sql = state.storage.sql;
    const last = Number(sql.exec("SELECT max(lsn) AS l FROM _hearth_wal").one().l);
    trimWal(sql, { changes: 0, ms: 0 }, last, Date.now());
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

  it("answers a mutation whose record was pruned with the WAL 'expired', never applying it again", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`alice-${crypto.randomUUID()}`);
    const c = await connectSync(p, alice);
    // Notes get their key from the server: an insert sent twice would be two rows.
    const note = (id: number, body: string) => ({ id, op: "insert", table: "notes", row: { body } });
    // Both applied, and (say) both answers lost.
    const first = await c.push("phone", [note(5, "a"), note(6, "b")]);
    expect(first.map((r) => r.status)).toEqual(["applied", "applied"]);
    expect((await c.push("laptop", [note(1, "c")]))[0]).toMatchObject({ status: "applied" });
    // The client stays away past the retention: a flush's trim prunes record 5 and keeps
    // each writer's newest (6, and the laptop's 1).
    await trimAll(p);
    const again = await c.push("phone", [note(5, "a"), note(6, "b")]);
    expect(again[0]).toMatchObject({
      id: 5,
      status: "expired",
      error: { code: "HEARTH_SYNC_MUTATION_EXPIRED", hint: expect.stringContaining("do not send it again") },
    });
    expect(again[0]).not.toHaveProperty("lsn");
    expect(again[1]).toMatchObject({ id: 6, status: "duplicate", lsn: first[1]!.lsn });
    expect((await c.push("laptop", [note(1, "c")]))[0]).toMatchObject({ status: "duplicate" });
    // At or below the pruned id: expired. Above it without a record: never decided (order).
    expect((await c.push("phone", [note(2, "x")]))[0]).toMatchObject({ status: "expired" });
    expect((await c.push("phone", [note(9, "d")]))[0]).toMatchObject({ status: "applied" });
    expect((await c.push("phone", [note(7, "y")]))[0]).toMatchObject({
      status: "rejected",
      error: { code: "HEARTH_SYNC_MUTATION_ORDER", hint: expect.stringContaining("above 9") },
    });
    expect((await table(p, "/notes?select=body&order=body")).map((r) => r.body)).toEqual([
      "a",
      "b",
      "c",
      "d",
    ]);
    c.close();
  });

  it("moves a ledger of the first version (client id alone) aside, its ids answered 'expired' to everyone", async () => {
    const p = await projectWithSchema(SCHEMA);
    await runInDurableObject(stubOf(p), (_i, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE _hearth_sync_mutations (
        client_id TEXT NOT NULL, mutation_id INTEGER NOT NULL, status TEXT NOT NULL, lsn INTEGER,
        error TEXT, ts INTEGER NOT NULL, at_lsn INTEGER NOT NULL, PRIMARY KEY (client_id, mutation_id)
      ) WITHOUT ROWID`);
      sql.exec("INSERT INTO _hearth_sync_mutations VALUES ('old', 5, 'applied', 1, NULL, ?, 1)", Date.now());
    });
    const alice = await account(`alice-${crypto.randomUUID()}`);
    const c = await connectSync(p, p.anonKey);
    const a = await connectSync(p, alice);
    const m = (id: number) => ({ id, op: "insert", table: "todos", row: { id } });
    expect((await c.push("old", [m(5), m(6)])).map((r) => r.status)).toEqual(["expired", "applied"]);
    expect((await a.push("old", [m(3), m(7)])).map((r) => r.status)).toEqual(["expired", "applied"]);
    expect(await table(p, "/todos?select=id&order=id")).toEqual([{ id: 6 }, { id: 7 }]);
    const cols = await runInDurableObject(stubOf(p), (_i, state) =>
      state.storage.sql
        .exec("SELECT name FROM pragma_table_info('_hearth_sync_mutations')")
        .toArray()
        .map((r) => r.name),
    );
    expect(cols).toContain("owner");
    c.close();
    a.close();
  });
});

describe("sync: freeze archive", () => {
  it("keeps at most its budget: the newest WAL entries, and the newest records (older ones answer 'expired')", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`alice-${crypto.randomUUID()}`);
    const c = await connectSync(p, p.anonKey);
    const a = await connectSync(p, alice);
    const m = (id: number) => ({ id, op: "insert", table: "todos", row: { id, title: "x".repeat(1000) } });
    const results = await c.push(
      "k",
      Array.from({ length: 20 }, (_, i) => m(i + 1)),
    );
    expect(results.every((r) => r.status === "applied")).toBe(true);
    const hers = (await a.push("k", [m(21)]))[0]!;
    const wal = await walAfter(p, 0);
    expect(wal).toHaveLength(21);
    const budget = { walBytes: 5_000, ledgerBytes: 400, clientBytes: 10_000 };
    const archive = await runInDurableObject(stubOf(p), async (_i, state) => {
      await saveArchive(testEnv.BUCKET, state.storage.sql, p.id, budget);
      return loadArchive(testEnv.BUCKET, p.id);
    });
    expect(archive).not.toBeNull();
    const kept = archive!.wal.map((w) => Number(w[0]));
    // A suffix of the WAL, within the budget, and not all of it.
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(wal.length);
    expect(kept).toEqual(wal.slice(wal.length - kept.length).map((e) => e.lsn));
    const lineBytes = (tag: string, rows: unknown[][]) =>
      rows.reduce((n, r) => n + JSON.stringify([tag, ...r]).length + 1, 0);
    expect(lineBytes("w", archive!.wal)).toBeLessThanOrEqual(budget.walBytes);
    expect(lineBytes("m", archive!.mutations)).toBeLessThanOrEqual(budget.ledgerBytes);
    expect(archive!.mutations.length).toBeLessThan(21);
    expect(archive!.lastLsn).toBe(wal.at(-1)!.lsn);
    // What a wake does with it: the storage emptied, the archive put back.
    await runInDurableObject(stubOf(p), (_i, state) => {
      const sql = state.storage.sql;
      state.storage.transactionSync(() => {
        for (const t of ["_hearth_wal", "_hearth_sync_mutations", "_hearth_sync_clients"])
          sql.exec(`DELETE FROM ${t}`);
        restoreArchive(sql, archive!);
      });
    });
    // Folded records answer "expired", kept ones as before; each writer keeps its own.
    const again = await c.push("k", [m(1), m(20)]);
    expect(again.map((r) => r.status)).toEqual(["expired", "duplicate"]);
    expect(again[1]!.lsn).toBe(results[19]!.lsn);
    expect((await a.push("k", [m(21)]))[0]).toMatchObject({ status: "duplicate", lsn: hers.lsn });
    expect((await c.push("k", [m(22)]))[0]).toMatchObject({ status: "applied" });
    // A cursor the archive reaches catches up; an older one resyncs.
    const first = kept[0]!;
    const d = await connectSync(p, p.anonKey);
    const from = d.frames.length;
    await d.pull(first - 1, ["todos"]);
    expect(d.frames[from]).toMatchObject({ type: "catchup" });
    const at = d.frames.length;
    await d.pull(first - 2, ["todos"]);
    expect(d.frames[at]).toMatchObject({ type: "resync", reason: "cursor_too_old" });
    c.close();
    a.close();
    d.close();
  });

  it("reads an archive of the first format: its WAL, and its records as 'expired' to everyone", async () => {
    const p = await projectWithSchema(SCHEMA);
    const v1 = {
      format: 1,
      projectId: p.id,
      lastLsn: 9,
      tx: 4,
      wal: [[9, 4, 1_700_000_000_000, "todos", "INSERT", "[1]", '{"id":1}', null]],
      mutations: [
        ["old", 3, "applied", 9, null, 1_700_000_000_000, 9],
        ["old", 8, "rejected", null, '{"code":"42501"}', 1_700_000_000_001, 9],
      ],
    };
    const gz = await new Response(
      new Blob([JSON.stringify(v1)]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    await testEnv.BUCKET.put(archiveKey(p.id), gz);
    const archive = await runInDurableObject(stubOf(p), () => loadArchive(testEnv.BUCKET, p.id));
    expect(archive).toMatchObject({
      lastLsn: 9,
      tx: 4,
      wal: v1.wal,
      mutations: [],
      clients: [["*", "old", 8, 8, 1_700_000_000_001]],
    });
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

  it("keeps one ledger per writer: the same client id of another principal is another writer", async () => {
    const p = await projectWithSchema(SCHEMA);
    const aliceId = `alice-${crypto.randomUUID()}`;
    const alice = await account(aliceId);
    const bob = await account(`bob-${crypto.randomUUID()}`);
    const [a, b, anon] = [
      await connectSync(p, alice),
      await connectSync(p, bob),
      await connectSync(p, p.anonKey),
    ];
    const m = (id: number, row: number) => ({ id, op: "insert", table: "todos", row: { id: row } });
    const [mine] = await a.push("web", [m(1, 1)]);
    expect(mine).toMatchObject({ status: "applied" });
    // Bob's mutation 1 of "web" is his own: applied, not alice's duplicate.
    const [his] = await b.push("web", [m(1, 2)]);
    expect(his).toMatchObject({ status: "applied" });
    expect(his!.lsn).not.toBe(mine!.lsn);
    // Alice's rejection is not handed to bob.
    const [denied] = await a.push("web", [{ id: 2, op: "insert", table: "secrets", row: { id: 1 } }]);
    expect(denied).toMatchObject({ status: "rejected", error: { code: "42501" } });
    expect((await b.push("web", [m(2, 3)]))[0]).toMatchObject({ status: "applied" });
    // The anon key cannot burn alice's ids by pushing a huge id for her client id.
    expect((await anon.push("victim", [m(Number.MAX_SAFE_INTEGER, 4)]))[0]).toMatchObject({
      status: "applied",
    });
    expect((await a.push("victim", [m(1, 5)]))[0]).toMatchObject({ status: "applied" });
    // The same account is the same writer on another socket with another token; another
    // client id of hers (a second device) has ids of its own.
    const a2 = await connectSync(p, await account(aliceId));
    expect((await a2.push("web", [m(1, 1)]))[0]).toMatchObject({ status: "duplicate", lsn: mine!.lsn });
    expect((await a2.push("phone", [m(1, 6)]))[0]).toMatchObject({ status: "applied" });
    expect((await table(p, "/todos?select=id&order=id")).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const c of [a, b, anon, a2]) c.close();
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
    // The user is another writer than the app acting for them: same client id, own ids.
    const u = await connectSync(p, user.accessToken);
    expect((await u.push("app", [{ id: 1, op: "insert", table: TABLE, row: { id: 4 } }]))[0]).toMatchObject({
      status: "applied",
    });
    u.close();
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

describe("sync: re-checks and closed sockets", () => {
  it("keeps delivering when a token re-check fails (D1 unreachable): to the others, and to that socket on its last check", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`alice-${crypto.randomUUID()}`);
    const bob = await account(`bob-${crypto.randomUUID()}`);
    const a = await connectSync(p, alice);
    const b = await connectSync(p, bob);
    await a.pull(0, ["todos"]);
    await b.pull(0, ["todos"]);
    const failing = (fail: boolean) =>
      runInDurableObject(stubOf(p), (instance) => {
        const sync = hubOf(instance);
        const auth = sync.host.auth as unknown as { recheck: unknown; original?: unknown };
        auth.original ??= auth.recheck;
        const recheck = auth.original as SyncHub["host"]["auth"]["recheck"];
        auth.recheck = (x: Parameters<typeof recheck>[0]) =>
          fail && x.token === alice
            ? Promise.reject(new Error("D1_ERROR: Network connection lost."))
            : recheck.call(sync.host.auth, x);
        sync.recheckAll();
      });
    await failing(true);
    const [fa, fb] = [a.frames.length, b.frames.length];
    await ok(rest(p, "/todos", { method: "POST", body: { id: 1 } }));
    const pk = (f: Record<string, unknown>) => (f.changes as Change[] | undefined)?.[0]?.pk;
    expect(pk(await b.waitFor((f) => f.type === "changes", 10_000, fb))).toEqual({ id: 1 });
    expect(pk(await a.waitFor((f) => f.type === "changes", 10_000, fa))).toEqual({ id: 1 });
    // A push waits for a completed check: refused whole, nothing applied, sent again later.
    const push = {
      type: "push",
      clientId: "a",
      mutations: [{ id: 1, op: "insert", table: "todos", row: { id: 2 } }],
    };
    a.send({ ...push, ref: "w" });
    expect(await a.waitFor((f) => f.type === "error" && f.ref === "w")).toMatchObject({
      code: "HEARTH_INTERNAL",
    });
    expect(await table(p, "/todos?select=id")).toEqual([{ id: 1 }]);
    await failing(false);
    expect((await a.push("a", push.mutations))[0]).toMatchObject({ status: "applied" });
    a.close();
    b.close();
  });

  it("never stores a socket again that closed during an await (auth frame, a push's write)", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`alice-${crypto.randomUUID()}`);
    const syncRows = () =>
      runInDurableObject(
        stubOf(p),
        (_i, state) =>
          state.storage.sql.exec("SELECT id FROM _hearth_sockets WHERE kind = 'sync'").toArray().length,
      );
    // The socket closes while its auth frame's token is being checked.
    const c = await connectSync(p, p.anonKey);
    await runInDurableObject(stubOf(p), (instance, state) => {
      const sync = hubOf(instance);
      const auth = sync.host.auth;
      const establish = auth.establish.bind(auth);
      auth.establish = async (token) => {
        const r = await establish(token);
        for (const ws of state.getWebSockets()) {
          sync.close(ws);
          ws.close(1000, "gone");
        }
        auth.establish = establish;
        return r;
      };
    });
    expect(await syncRows()).toBe(1);
    c.send({ type: "auth", access_token: alice });
    await c.waitClosed();
    expect(await syncRows()).toBe(0);
    // The socket closes during the write of a push's first mutation: that one is applied
    // and recorded (it committed), the rest are not attempted, and no socket row comes back.
    const d = await connectSync(p, p.anonKey);
    await runInDurableObject(stubOf(p), (instance, state) => {
      const sync = hubOf(instance);
      const host = sync.host as { rest: SyncHub["host"]["rest"] };
      const rest = host.rest;
      host.rest = async (principal, request, inTransaction) => {
        const res = await rest(principal, request, inTransaction);
        for (const ws of state.getWebSockets()) {
          sync.close(ws);
          ws.close(1000, "gone");
        }
        host.rest = rest;
        return res;
      };
    });
    const m = (id: number) => ({ id, op: "insert", table: "todos", row: { id } });
    d.send({ type: "push", clientId: "k", mutations: [m(1), m(2)] });
    await d.waitClosed();
    expect(await syncRows()).toBe(0);
    expect(await table(p, "/todos?select=id")).toEqual([{ id: 1 }]);
    const e = await connectSync(p, p.anonKey);
    expect((await e.push("k", [m(1), m(2)])).map((r) => r.status)).toEqual(["duplicate", "applied"]);
    e.close();
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
