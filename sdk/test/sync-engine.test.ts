/**
 * The sync engine's pull side against a scripted server (sync-fake-server.ts): snapshot and
 * catch-up into an IndexedDB replica (fake-indexeddb), acks within the window, live changes,
 * resync, reconnects with back-off, 4008 and 4001, keepalive pings.
 */
import "fake-indexeddb/auto";
import { IDBFactory, IDBKeyRange } from "fake-indexeddb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { IndexedDbReplica, ReplicaInUseError, type ReplicaLocks } from "../src/replica/indexeddb.ts";
import { backoffDelay } from "../src/sync/backoff.ts";
import type { SyncEngine } from "../src/sync/engine.ts";
import { syncUrl } from "../src/sync/protocol.ts";
import type { SyncOptions } from "../src/sync/types.ts";
import { FakeSyncServer } from "./sync-fake-server.ts";
import { byId, collect, engineFor, idbReplica, statusOf } from "./sync-helpers.ts";

const engines: SyncEngine[] = [];

function start(server: FakeSyncServer, factory: IDBFactory, options: Partial<SyncOptions> = {}): SyncEngine {
  const sync = engineFor(server, { replica: idbReplica(factory), ...options });
  engines.push(sync);
  return sync;
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

function seed(server: FakeSyncServer, n: number, table = "todos"): void {
  for (let i = 1; i <= n; i++)
    server.write({ op: "insert", table, row: { id: `t${i}`, title: `todo ${i}` } });
}

describe("sync engine: pull", () => {
  it("pulls a snapshot of every followed table in pages, acknowledging within the window, and goes live", async () => {
    const server = new FakeSyncServer();
    seed(server, 9);
    seed(server, 4, "notes");
    const sync = start(server, new IDBFactory());
    await statusOf(sync, "live");
    await server.until(() => server.caughtUp(), "caught up");

    const socket = server.socket;
    expect(socket.url.toString()).toBe("ws://hearth.test/p/p1/sync/v1?apikey=anon-key");
    expect(socket.received[0]).toEqual({
      type: "pull",
      cursor: null,
      tables: ["todos", "notes"],
      ref: "pull",
    });
    // 13 rows in pages of 2: 7 snapshot frames, more than the window of 4: the server only
    // went on because acks came, and the last ack covers the last frame.
    const acks = socket.received.filter((f) => f.type === "ack").map((f) => f.seq as number);
    expect(socket.state.seq).toBe(7);
    expect(acks.at(-1)).toBe(7);
    expect(acks).toEqual([...acks].sort((a, b) => a - b));
    expect(byId(await sync.query("todos"))).toEqual(byId(server.rows("todos")));
    expect(byId(await sync.query("notes"))).toEqual(byId(server.rows("notes")));
  });

  it("applies live inserts, updates and deletes by primary key", async () => {
    const server = new FakeSyncServer();
    seed(server, 3);
    const sync = start(server, new IDBFactory());
    await statusOf(sync, "live");
    server.write({ op: "insert", table: "todos", row: { id: "t4", title: "new" } });
    server.write({ op: "update", table: "todos", pk: { id: "t1" }, values: { done: true } });
    server.write({ op: "delete", table: "todos", pk: { id: "t2" } });
    const at = server.lsn;
    await server.until(() => server.caughtUp(), "caught up");
    expect(byId(await sync.query("todos"))).toEqual(byId(server.rows("todos")));
    expect((await sync.get("todos", "t1"))?.done).toBe(true);
    expect(await sync.get("todos", { id: "t2" })).toBeUndefined();
    expect(server.socket.state.cursor).toBe(at);
  });

  it("after a reload, catches up from the cursor it stored: only the changes it missed, no snapshot", async () => {
    const server = new FakeSyncServer();
    seed(server, 5);
    const factory = new IDBFactory();
    const first = start(server, factory);
    await statusOf(first, "live");
    await first.close();

    server.write({ op: "update", table: "todos", pk: { id: "t3" }, values: { title: "edited" } });
    server.write({ op: "delete", table: "todos", pk: { id: "t4" } });
    server.write({ op: "insert", table: "todos", row: { id: "t6", title: "new" } });
    const cursor = 5;
    const second = start(server, factory);
    await server.until(() => server.sockets.length === 2 && server.caughtUp(), "caught up");
    const pull = server.socket.received.find((f) => f.type === "pull");
    expect(pull).toMatchObject({ cursor });
    expect(server.socket.received.filter((f) => f.type === "ack")).toEqual([{ type: "ack", seq: 1 }]);
    expect(byId(await second.query("todos"))).toEqual(byId(server.rows("todos")));
  });

  it("resyncs when its cursor is older than the WAL keeps: the snapshot replaces the rows", async () => {
    const server = new FakeSyncServer();
    seed(server, 4);
    const factory = new IDBFactory();
    const first = start(server, factory);
    await statusOf(first, "live");
    await first.close();

    server.write({ op: "delete", table: "todos", pk: { id: "t1" } });
    server.write({ op: "insert", table: "todos", row: { id: "t9", title: "after" } });
    server.trim(server.lsn);
    const second = start(server, factory);
    const seen: string[][] = [];
    second.live("todos", { orderBy: "id" }, (rows) => seen.push(rows.map((r) => String(r.id))));
    await statusOf(second, "live");
    await vi.waitFor(() => expect(seen.at(-1)).toEqual(["t2", "t3", "t4", "t9"]));
    // The old rows stayed readable while the snapshot loaded: never an empty or partial table.
    expect(seen).toEqual([
      ["t1", "t2", "t3", "t4"],
      ["t2", "t3", "t4", "t9"],
    ]);
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor: 4 });
  });

  it("pulls a snapshot again when it was stopped in the middle of one", async () => {
    const server = new FakeSyncServer();
    seed(server, 6);
    server.limits.window = 1;
    const factory = new IDBFactory();
    const first = start(server, factory);
    // Stop after the first snapshot page was applied and acknowledged.
    await server.until(() => server.sockets[0]?.received.some((f) => f.type === "ack") === true, "first ack");
    await first.close();
    const second = start(server, factory);
    await statusOf(second, "live");
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor: null });
    expect(byId(await second.query("todos"))).toEqual(byId(server.rows("todos")));
  });

  it("follows the tables it is given: a new table in the list pulls a snapshot", async () => {
    const server = new FakeSyncServer();
    seed(server, 2);
    seed(server, 2, "notes");
    const factory = new IDBFactory();
    const first = start(server, factory, { tables: ["todos"] });
    await statusOf(first, "live");
    expect(await first.query("todos")).toHaveLength(2);
    await first.close();
    const second = start(server, factory, { tables: ["todos", "notes"] });
    await statusOf(second, "live");
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor: null });
    expect(await second.query("notes")).toHaveLength(2);
  });
});

describe("sync engine: connection", () => {
  it("reconnects with growing, capped back-off after drops, and pulls from its cursor", async () => {
    const server = new FakeSyncServer();
    seed(server, 2);
    const sync = start(server, new IDBFactory(), {
      backoff: { initialMs: 4, maxMs: 32, random: () => 0.999 },
    });
    const drops = collect(sync, "disconnected");
    await statusOf(sync, "live");
    const cursor = server.lsn;
    server.refuse = true;
    server.socket.drop(1006, "network");
    await server.until(() => server.sockets.length >= 7, "reconnect attempts");
    server.refuse = false;
    await server.until(() => server.socket.state.phase === "live", "live again");
    await statusOf(sync, "live");
    const delays = drops.map((d) => d.retryInMs);
    expect(delays.slice(0, 6)).toEqual([4, 8, 16, 32, 32, 32]);
    expect(drops[0]).toMatchObject({ code: 1006, reason: "network" });
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor });
    // Live again: the back-off starts over.
    server.socket.drop(1006, "again");
    await server.until(() => server.socket.state.phase === "live", "live after the second drop");
    expect(drops.at(-1)?.retryInMs).toBe(4);
  });

  it("opens {url}/sync/v1 with the credential, ws for http and wss for https", () => {
    expect(syncUrl("https://h.example/p/abc/", "k&1")).toBe("wss://h.example/p/abc/sync/v1?apikey=k%261");
    expect(syncUrl("http://127.0.0.1:8787/p/abc", "k")).toBe("ws://127.0.0.1:8787/p/abc/sync/v1?apikey=k");
  });

  it("keeps half of each step fixed and jitters the rest", () => {
    const o = { initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, { ...o, random: () => 0 })).toBe(50);
    expect(backoffDelay(0, { ...o, random: () => 0.5 })).toBe(75);
    expect(backoffDelay(3, { ...o, random: () => 0 })).toBe(400);
    expect(backoffDelay(10, { ...o, random: () => 0.999 })).toBe(1000);
    expect(backoffDelay(5000, { ...o, random: () => 0 })).toBe(500);
  });

  it("on 4008 (slow consumer) reconnects and pulls from its stored cursor, missing nothing", async () => {
    const server = new FakeSyncServer();
    seed(server, 3);
    const sync = start(server, new IDBFactory());
    await statusOf(sync, "live");
    const first = server.socket;
    server.holdDelivery = true;
    server.write({ op: "insert", table: "todos", row: { id: "t8", title: "while slow" } });
    first.drop(4008, "slow consumer: 257 frames unacknowledged");
    server.holdDelivery = false;
    await server.until(() => server.sockets.length === 2 && server.socket.state.phase === "live", "back");
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor: 3 });
    await vi.waitFor(async () => expect(byId(await sync.query("todos"))).toEqual(byId(server.rows("todos"))));
  });

  it("on 4001 stops, reports unauthorized, and stays stopped until start()", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory());
    const reasons = collect(sync, "unauthorized");
    await statusOf(sync, "live");
    server.socket.drop(4001, "grant revoked");
    await statusOf(sync, "unauthorized");
    expect(reasons).toEqual(["grant revoked"]);
    // Writes still work offline, and nothing reconnects on its own.
    await sync.insert("todos", { id: "x", title: "offline" }).queued;
    expect(server.sockets).toHaveLength(1);
    sync.start();
    await sync.settled();
    expect(server.sockets).toHaveLength(2);
    expect(server.rows("todos")).toEqual([{ id: "x", title: "offline", done: false }]);
  });

  it("asks getToken for every connection", async () => {
    const server = new FakeSyncServer();
    let n = 0;
    const sync = start(server, new IDBFactory(), { getToken: async () => `token-${++n}` });
    await statusOf(sync, "live");
    server.socket.drop(1011, "state lost");
    await server.until(() => server.sockets.length === 2 && server.socket.state.phase === "live", "back");
    expect(server.sockets.map((s) => s.url.searchParams.get("apikey"))).toEqual(["token-1", "token-2"]);
  });

  it("pings to keep the socket open, and replaces a socket that stopped answering", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory(), { pingIntervalMs: 10, pongTimeoutMs: 30 });
    await statusOf(sync, "live");
    await server.until(() => server.socket.received.filter((f) => f.type === "ping").length >= 2, "pings");
    const first = server.socket;
    server.mute = true;
    await server.until(() => first.closeCode !== null, "the client gives up on the silent socket");
    expect(first.closeCode).toBe(4000);
    const before = server.sockets.length;
    server.mute = false;
    await server.until(
      () => server.sockets.length > before && server.socket.state.phase === "live",
      "a new socket",
    );
    await statusOf(sync, "live");
  });

  it("does not apply a frame it cannot read: it reconnects and pulls from its cursor", async () => {
    const server = new FakeSyncServer();
    seed(server, 1);
    const sync = start(server, new IDBFactory());
    const errors = collect(sync, "error");
    await statusOf(sync, "live");
    server.socket.emit({ type: "changes", seq: 1, cursor: 99, changes: [{ nonsense: true }] });
    await server.until(() => server.sockets.length === 2 && server.socket.state.phase === "live", "back");
    expect(errors.map((e) => e.code)).toContain("HEARTH_SYNC_CLIENT");
    expect(server.socket.received.find((f) => f.type === "pull")).toMatchObject({ cursor: 1 });
  });

  it("reports a pull the server refuses and tries again later", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory());
    const errors = collect(sync, "error");
    await server.until(() => server.sockets.length === 1 && server.socket.open, "open");
    // The first socket's pull is refused (a table that does not exist yet).
    const first = server.socket;
    await server.until(() => first.received.some((f) => f.type === "pull"), "pull");
    first.emit({
      type: "error",
      code: "PGRST205",
      message: "Could not find the table 'notes'",
      details: null,
      hint: null,
      ref: "pull",
    });
    await server.until(
      () => server.sockets.length === 2 && server.socket.state.phase === "live",
      "second try",
    );
    expect(errors.map((e) => e.code)).toEqual(["PGRST205"]);
    await statusOf(sync, "live");
  });

  it("stops with the replica's error when the replica cannot open (in use by another engine)", async () => {
    const server = new FakeSyncServer();
    const factory = new IDBFactory();
    const held = new Set<string>();
    const locks: ReplicaLocks = {
      async request(name, _options, callback) {
        if (held.has(name)) return callback(null);
        held.add(name);
        void Promise.resolve(callback({ name })).finally(() => held.delete(name));
      },
    };
    const replica = () => new IndexedDbReplica({ name: "tab", indexedDB: factory, IDBKeyRange, locks });
    const first = start(server, factory, { replica: replica() });
    await statusOf(first, "live");
    const second = start(server, factory, { replica: replica() });
    const errors = collect(second, "error");
    await statusOf(second, "stopped");
    expect(errors.map((e) => e.details)).toEqual(["ReplicaInUseError"]);
    await expect(second.query("todos")).rejects.toBeInstanceOf(ReplicaInUseError);
    await expect(second.insert("todos", { id: "x" })).rejects.toBeInstanceOf(ReplicaInUseError);
    expect(server.sockets).toHaveLength(1);
  });

  it("refuses a table whose primary key is not the one configured, with a clear error", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "x" } });
    const sync = start(server, new IDBFactory(), { tables: { todos: { primaryKey: "uuid" } } });
    const errors = collect(sync, "error");
    await statusOf(sync, "stopped");
    expect(errors[0]?.message).toMatch(/todos/);
    expect(errors[0]?.message).toMatch(/primaryKey/);
  });
});
