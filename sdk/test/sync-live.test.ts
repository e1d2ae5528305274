/**
 * Reads of the sync engine: local queries (where, order, limit), live queries on local and
 * remote changes, the codec hook (rows encrypted before a push, decrypted after a pull), and
 * the engine on a MemoryReplica persisted through load/save.
 */
import "fake-indexeddb/auto";
import { IDBFactory } from "fake-indexeddb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HearthError } from "../src/errors.ts";
import { MemoryReplica } from "../src/replica/memory.ts";
import type { Row } from "../src/replica/types.ts";
import type { SyncEngine } from "../src/sync/engine.ts";
import type { SyncError } from "../src/sync/errors.ts";
import { runQuery } from "../src/sync/query.ts";
import type { RowCodec, SyncOptions } from "../src/sync/types.ts";
import { FakeSyncServer } from "./sync-fake-server.ts";
import { collect, engineFor, idbReplica } from "./sync-helpers.ts";

const engines: SyncEngine[] = [];

function start(server: FakeSyncServer, options: Partial<SyncOptions> = {}): SyncEngine {
  const sync = engineFor(server, { replica: idbReplica(new IDBFactory()), ...options });
  engines.push(sync);
  return sync;
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

describe("local queries", () => {
  const rows: Row[] = [
    { id: 1, title: "b", rank: 2 },
    { id: 2, title: "a", rank: null },
    { id: 3, title: "c", rank: 1 },
    { id: 4, title: "a", rank: 3 },
  ];

  it("filters, orders (nulls last going up, first going down) and limits", () => {
    expect(runQuery([...rows], { orderBy: "rank" }).map((r) => r.id)).toEqual([3, 1, 4, 2]);
    expect(runQuery([...rows], { orderBy: { column: "rank", ascending: false } }).map((r) => r.id)).toEqual([
      2, 4, 1, 3,
    ]);
    expect(
      runQuery([...rows], { orderBy: ["title", { column: "id", ascending: false }] }).map((r) => r.id),
    ).toEqual([4, 2, 1, 3]);
    expect(runQuery([...rows], { where: (r) => r.title === "a", orderBy: "id", limit: 1 })).toEqual([
      { id: 2, title: "a", rank: null },
    ]);
    expect(
      runQuery([...rows], { orderBy: { column: "rank", nullsFirst: true }, limit: 2 }).map((r) => r.id),
    ).toEqual([2, 3]);
  });
});

describe("live queries", () => {
  it("re-run on local writes and on the server's changes, and stay quiet when their answer is unchanged", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "first", done: false } });
    const sync = start(server);
    await sync.settled();
    const open: string[][] = [];
    const stop = sync.live("todos", { where: (t) => !t.done, orderBy: "id" }, (rows) =>
      open.push(rows.map((r) => String(r.id))),
    );
    await vi.waitFor(() => expect(open).toEqual([["a"]]));

    await sync.insert("todos", { id: "b", title: "local", done: false }).queued;
    await vi.waitFor(() => expect(open.at(-1)).toEqual(["a", "b"]));

    server.write({ op: "insert", table: "todos", row: { id: "c", title: "remote" } });
    await vi.waitFor(() => expect(open.at(-1)).toEqual(["a", "b", "c"]));

    // A change outside the query's answer (a done row) does not call it: the next call is
    // the next visible change (runs of one query are sequential).
    const calls = open.length;
    server.write({ op: "insert", table: "todos", row: { id: "d", done: true } });
    await server.until(() => server.caughtUp(), "caught up");
    await sync.insert("todos", { id: "c2", done: false }).queued;
    await vi.waitFor(() => expect(open.at(-1)).toEqual(["a", "b", "c", "c2"]));
    expect(open.length).toBe(calls + 1);

    server.write({ op: "update", table: "todos", pk: { id: "a" }, values: { done: true } });
    await vi.waitFor(() => expect(open.at(-1)).toEqual(["b", "c", "c2"]));

    stop();
    const after = open.length;
    await sync.insert("todos", { id: "e", done: false }).queued;
    await sync.settled();
    expect(open.length).toBe(after);
  });

  it("reports a query that throws as an error event, and keeps running the others", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, { connect: false });
    const errors: string[] = [];
    sync.on("error", (e) => errors.push(e.message));
    sync.live(
      "todos",
      {
        where: () => {
          throw new Error("bad predicate");
        },
      },
      () => {},
    );
    const ok: number[] = [];
    sync.live("todos", {}, (rows) => ok.push(rows.length));
    await sync.insert("todos", { id: "a" }).queued;
    await vi.waitFor(() => expect(ok.at(-1)).toBe(1));
    expect(errors).toContain("bad predicate");
  });
});

describe("a live query's own errors (onError)", () => {
  it("a table the engine does not follow fails at once with HEARTH_SYNC_UNKNOWN_TABLE, naming the followed ones", async () => {
    const sync = start(new FakeSyncServer(), { connect: false });
    const events = collect(sync, "error");
    const errors: SyncError[] = [];
    const rows: unknown[] = [];
    sync.live("todoz", {}, (r) => rows.push(r), { onError: (e) => errors.push(e) });
    await Promise.resolve(); // delivered in a microtask: no replica or network involved
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(HearthError);
    expect(errors[0]).toMatchObject({
      code: "HEARTH_SYNC_UNKNOWN_TABLE",
      status: 0,
      message: "todoz is not one of the synced tables (todos, notes)",
      hint: expect.stringContaining('"todoz"'),
    });
    expect(rows).toEqual([]);
    expect(events).toEqual([]); // given onError, the engine's event stays quiet

    // Without onError it goes to the engine's `error` event; unsubscribed at once, nowhere.
    sync.live("todoz", {}, () => {});
    sync.live("todoz", {}, () => {}, { onError: (e) => errors.push(e) })();
    await vi.waitFor(() => expect(events.map((e) => e.code)).toEqual(["HEARTH_SYNC_UNKNOWN_TABLE"]));
    expect(errors).toHaveLength(1);

    // Reads and writes of such a table reject with the same code.
    await expect(sync.query("todoz")).rejects.toMatchObject({ code: "HEARTH_SYNC_UNKNOWN_TABLE" });
    await expect(sync.get("todoz", 1)).rejects.toMatchObject({ code: "HEARTH_SYNC_UNKNOWN_TABLE" });
    await expect(sync.insert("todoz", { id: 1 }).queued).rejects.toMatchObject({
      code: "HEARTH_SYNC_UNKNOWN_TABLE",
    });
  });

  it("a `where` that throws reaches onError with what it threw as cause; the next answer still comes", async () => {
    const sync = start(new FakeSyncServer(), { connect: false });
    await sync.insert("todos", { id: "a", done: false }).queued;
    const events = collect(sync, "error");
    const errors: SyncError[] = [];
    const seen: string[][] = [];
    const bad = new Error("bad predicate");
    let broken = false;
    const where = (t: Row) => {
      if (broken) throw bad;
      return !t.done;
    };
    sync.live("todos", { where }, (rows) => seen.push(rows.map((r) => String(r.id))), {
      onError: (e) => errors.push(e),
    });
    await vi.waitFor(() => expect(seen).toEqual([["a"]]));

    broken = true;
    await sync.insert("todos", { id: "b", done: true }).queued;
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ code: "HEARTH_SYNC_CLIENT", message: "bad predicate", cause: bad });
    expect(events).toEqual([]);

    // Fixed, and the answer equals the last one delivered: it is delivered again after an error.
    broken = false;
    await sync.insert("todos", { id: "c", done: true }).queued;
    await vi.waitFor(() => expect(seen).toEqual([["a"], ["a"]]));
  });
});

/**
 * A stand-in for the crypto codec: `secret` leaves as "enc(<key>:<value>)" (bound to the row's
 * key, as sdk/src/crypto binds ciphertext) and comes back plain; "locked" cannot be encrypted.
 */
const codec: RowCodec = {
  encrypt: async (_table, row, { primaryKey }) => {
    if (!("secret" in row)) return row;
    if (row.secret === "locked") throw new Error("the key is locked");
    const id = primaryKey?.id ?? row.id;
    return { ...row, secret: `enc(${String(id)}:${String(row.secret)})` };
  },
  decrypt: async (_table, row) => {
    if (typeof row.secret !== "string" || !row.secret.startsWith("enc(")) return row;
    const [id, value] = row.secret.slice(4, -1).split(":");
    if (id !== row.id) throw new Error(`the secret of ${String(row.id)} belongs to another row`);
    return { ...row, secret: value };
  },
};

describe("codec", () => {
  it("encrypts rows and changed columns when written, and decrypts what the server sends", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "x", title: "theirs", secret: "enc(x:old)" } });
    const sync = start(server, { codec });
    await sync.settled();
    expect(await sync.get("todos", "x")).toMatchObject({ secret: "old" });

    await sync.insert("todos", { id: "a", title: "mine", secret: "s1" });
    await sync.update("todos", "x", { secret: "s2" });
    await sync.update("todos", "x", { title: "no secret in this one" });
    await sync.settled();
    expect(server.pushes.flat().map((m) => m.row ?? m.values)).toEqual([
      { id: "a", title: "mine", secret: "enc(a:s1)" },
      { secret: "enc(x:s2)" },
      { title: "no secret in this one" },
    ]);
    expect(server.rows("todos").map((r) => r.secret)).toEqual(["enc(x:s2)", "enc(a:s1)"]);
    // The replica holds what decrypt returned.
    expect(await sync.query("todos", { orderBy: "id" })).toEqual([
      { id: "a", title: "mine", secret: "s1", done: false },
      { id: "x", title: "no secret in this one", secret: "s2", done: false },
    ]);
  });

  it("rejects a write it cannot encrypt, and keeps the order of the writes around it", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, { codec, connect: false });
    const first = sync.insert("todos", { id: "a", secret: "1" });
    const locked = sync.insert("todos", { id: "b", secret: "locked" });
    const last = sync.insert("todos", { id: "c", secret: "3" });
    await expect(locked.queued).rejects.toThrow("the key is locked");
    await expect(locked).rejects.toThrow("the key is locked");
    expect([await first.queued, await last.queued]).toEqual([1, 2]);
    expect((await sync.query("todos", { orderBy: "id" })).map((r) => r.id)).toEqual(["a", "c"]);
  });

  it("stores a row it cannot decrypt as it came, and reports it", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "x", secret: "enc(y:moved from another row)" } });
    server.write({ op: "insert", table: "todos", row: { id: "z", secret: "enc(z:fine)" } });
    const sync = start(server, { codec });
    const errors: string[] = [];
    sync.on("error", (e) => errors.push(e.message));
    await sync.settled();
    expect(await sync.query("todos", { orderBy: "id" })).toEqual([
      { id: "x", secret: "enc(y:moved from another row)", done: false },
      { id: "z", secret: "fine", done: false },
    ]);
    expect(errors).toEqual(["the secret of x belongs to another row"]);
  });
});

describe("MemoryReplica under the engine", () => {
  it("syncs, and a new engine on the persisted replica carries on from its cursor and queue", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a" } });
    let file: string | null = null;
    const replica = () =>
      new MemoryReplica({
        persist: {
          load: () => file,
          save: (json) => {
            file = json;
          },
        },
      });
    const first = start(server, { replica: replica() });
    await first.settled();
    first.stop();
    await first.insert("todos", { id: "b" }).queued;
    await first.close();

    server.write({ op: "insert", table: "todos", row: { id: "c" } });
    const second = start(server, { replica: replica() });
    await second.settled();
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor: 1 });
    expect((await second.query("todos", { orderBy: "id" })).map((r) => r.id)).toEqual(["a", "b", "c"]);
    expect(server.rows("todos").map((r) => r.id)).toEqual(["a", "c", "b"]);
  });
});
