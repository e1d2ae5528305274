/**
 * Optimistic writes and the durable mutation queue against the scripted server
 * (sync-fake-server.ts): immediate local apply, pushes in order and one at a time, the
 * answers (applied, duplicate, rejected with rollback, retryable, expired), the optimistic
 * value kept until its change arrives, and the queue surviving a reload.
 */
import "fake-indexeddb/auto";
import { IDBFactory } from "fake-indexeddb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HearthError } from "../src/errors.ts";
import type { SyncEngine } from "../src/sync/engine.ts";
import { SyncMutationError } from "../src/sync/errors.ts";
import type { SyncOptions } from "../src/sync/types.ts";
import { FakeSyncServer } from "./sync-fake-server.ts";
import { collect, engineFor, idbReplica, statusOf } from "./sync-helpers.ts";

const engines: SyncEngine[] = [];

function start(server: FakeSyncServer, factory: IDBFactory, options: Partial<SyncOptions> = {}): SyncEngine {
  const sync = engineFor(server, { replica: idbReplica(factory), ...options });
  engines.push(sync);
  return sync;
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

const POLICY = { code: "42501", message: "permission denied for table todos", details: null, hint: null };

describe("sync engine: writes", () => {
  it("applies a write locally at once, offline too, and pushes it when online", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory(), { connect: false });
    const counts: number[] = [];
    sync.on("pending", (n) => counts.push(n));
    const write = sync.insert("todos", { id: "a", title: "milk" });
    expect(await write.queued).toBe(1);
    expect(await sync.query("todos")).toEqual([{ id: "a", title: "milk" }]);
    expect(sync.pendingCount).toBe(1);
    expect(server.sockets).toHaveLength(0);
    await sync.insert("todos", { id: "b", title: "eggs" }).queued;

    sync.start();
    expect(await write).toEqual({ id: 1, status: "applied", lsn: 1 });
    await sync.settled();
    expect(server.rows("todos")).toEqual([
      { id: "a", title: "milk", done: false },
      { id: "b", title: "eggs", done: false },
    ]);
    // The server's row (with its default) replaced the optimistic one.
    expect(await sync.query("todos")).toContainEqual({ id: "a", title: "milk", done: false });
    expect(sync.pendingCount).toBe(0);
    // Each change of the count was told once: queued, queued, answered, answered.
    expect(counts).toEqual([1, 2, 1, 0]);
  });

  it("pushes in id order, one push at a time, at most mutationsPerPush per push", async () => {
    const server = new FakeSyncServer();
    server.limits.mutationsPerPush = 3;
    server.holdPushes = true;
    const sync = start(server, new IDBFactory(), { connect: false });
    for (let i = 1; i <= 7; i++) sync.insert("todos", { id: `r${i}`, n: i });
    await sync.update("todos", "r1", { n: 100 }).queued;
    sync.start();
    await server.until(() => server.pushes.length === 1, "first push");
    // Held unanswered: nothing more is sent until it is answered.
    await statusOf(sync, "live");
    expect(server.pushes).toHaveLength(1);
    server.releasePushes();
    await sync.settled();
    expect(server.pushes.map((p) => p.map((m) => m.id))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8],
    ]);
    expect(server.pushes[2]![1]).toEqual({
      id: 8,
      op: "update",
      table: "todos",
      pk: { id: "r1" },
      values: { n: 100 },
    });
    expect(server.rows("todos").find((r) => r.id === "r1")).toMatchObject({ n: 100 });
    // Every push named this installation's client id.
    const clientIds = server.socket.received.filter((f) => f.type === "push").map((f) => f.clientId);
    expect(new Set(clientIds)).toEqual(new Set([sync.clientId]));
  });

  it("keeps the optimistic value until the server's change arrives: no flicker back", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "old" } });
    const sync = start(server, new IDBFactory());
    await sync.settled();
    const seen: unknown[] = [];
    sync.live("todos", {}, (rows) => seen.push(rows[0]?.title));
    await vi.waitFor(() => expect(seen).toEqual(["old"]));
    server.holdDelivery = true;
    const write = sync.update("todos", "a", { title: "new" });
    expect(await write).toMatchObject({ status: "applied", lsn: 2 });
    // Answered, but its change has not arrived: the replica still says "old", the view "new".
    expect(await sync.get("todos", "a")).toMatchObject({ title: "new" });
    expect(sync.pendingCount).toBe(0);
    server.deliver();
    await sync.settled();
    expect(await sync.get("todos", "a")).toEqual({ id: "a", title: "new", done: false });
    expect(seen).toEqual(["old", "new"]);
  });

  it("rolls back a rejected write, rejecting its promise with the server's code and calling onRejected", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "mine" } });
    const rejected: SyncMutationError[] = [];
    const sync = start(server, new IDBFactory(), { onRejected: (e) => rejected.push(e) });
    await sync.settled();
    server.decide = (m) => (m.op === "update" ? { kind: "reject", error: POLICY } : { kind: "apply" });

    const seen: unknown[] = [];
    sync.live("todos", { orderBy: "id" }, (rows) => seen.push(rows.map((r) => `${r.id}:${r.title}`)));
    const update = sync.update("todos", "a", { title: "not allowed" });
    const insert = sync.insert("todos", { id: "b", title: "fine" });
    const err = await update.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncMutationError);
    expect(err).toBeInstanceOf(HearthError);
    // `status` is HearthError's HTTP status (none over a socket); the outcome has its own field.
    expect(err).toMatchObject({ outcome: "rejected", status: 0, code: "42501", message: POLICY.message });
    expect((err as SyncMutationError).mutation).toMatchObject({
      op: "update",
      values: { title: "not allowed" },
    });
    expect(rejected).toEqual([err]);
    await insert;
    await sync.settled();
    expect(await sync.query("todos", { orderBy: "id" })).toEqual([
      { id: "a", title: "mine", done: false },
      { id: "b", title: "fine", done: false },
    ]);
    await vi.waitFor(() => expect(seen.at(-1)).toEqual(["a:mine", "b:fine"]));
    expect(seen.some((rows) => (rows as string[]).includes("a:not allowed"))).toBe(true);
  });

  it("rolls back an insert the server refuses as a duplicate key (23505)", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory(), { connect: false });
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "theirs" } });
    const write = sync.insert("todos", { id: "a", title: "mine" });
    await write.queued;
    expect(await sync.get("todos", "a")).toEqual({ id: "a", title: "mine" });
    sync.start();
    await expect(write).rejects.toMatchObject({ code: "23505", outcome: "rejected" });
    await sync.settled();
    expect(await sync.get("todos", "a")).toEqual({ id: "a", title: "theirs", done: false });
  });

  it("answers a push whose answer was lost from the ledger: pushed again with its id, applied once", async () => {
    const server = new FakeSyncServer();
    let first = true;
    server.decide = () => {
      if (!first) return { kind: "apply" };
      first = false;
      return { kind: "apply-then-drop" };
    };
    const sync = start(server, new IDBFactory());
    await statusOf(sync, "live");
    const write = sync.insert("todos", { id: "a", title: "once" });
    expect(await write).toMatchObject({ id: 1, status: "duplicate", lsn: 1 });
    expect(server.sockets).toHaveLength(2);
    expect(server.pushes.map((p) => p.map((m) => m.id))).toEqual([[1], [1]]);
    expect(server.wal.filter((c) => c.table === "todos")).toHaveLength(1);
    await sync.settled();
    expect(await sync.query("todos")).toEqual([{ id: "a", title: "once", done: false }]);
  });

  it("retries a retryable failure with the same ids after a delay, keeping the write visible", async () => {
    const server = new FakeSyncServer();
    let failures = 2;
    server.decide = () => (failures-- > 0 ? { kind: "retry" } : { kind: "apply" });
    const sync = start(server, new IDBFactory(), { connect: false });
    const a = sync.insert("todos", { id: "a" });
    const b = sync.insert("todos", { id: "b" });
    await b.queued;
    sync.start();
    await server.until(() => server.pushes.length >= 1, "first push");
    expect(await sync.query("todos")).toHaveLength(2);
    expect(await a).toMatchObject({ id: 1, status: "applied" });
    expect(await b).toMatchObject({ id: 2, status: "applied" });
    expect(server.pushes.map((p) => p.map((m) => m.id))).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
  });

  it("reports an expired mutation as its own outcome and drops it from the queue", async () => {
    const server = new FakeSyncServer();
    server.decide = () => ({ kind: "expire" });
    const sync = start(server, new IDBFactory());
    const expired = collect(sync, "expired");
    const rejected = collect(sync, "rejected");
    const write = sync.delete("todos", "gone");
    await expect(write).rejects.toMatchObject({ outcome: "expired", code: "HEARTH_SYNC_MUTATION_EXPIRED" });
    await sync.settled();
    expect(expired).toHaveLength(1);
    expect(rejected).toHaveLength(0);
    expect(sync.pendingCount).toBe(0);
  });

  it("keeps queued writes across a reload and pushes them with the same ids and client id", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "x", title: "server row" } });
    const factory = new IDBFactory();
    const first = start(server, factory);
    await first.settled();
    first.stop();
    await first.insert("todos", { id: "a", title: "offline 1" }).queued;
    await first.update("todos", "x", { title: "edited offline" }).queued;
    await first.delete("todos", "a").queued;
    await first.insert("todos", { id: "b", title: "offline 2" }).queued;
    const clientId = first.clientId;
    await first.close();

    const second = start(server, factory, { connect: false });
    await second.ready;
    expect(second.clientId).toBe(clientId);
    expect(second.pendingCount).toBe(4);
    // The reloaded replica shows the offline writes before anything is sent.
    expect(await second.query("todos", { orderBy: "id" })).toEqual([
      { id: "b", title: "offline 2" },
      { id: "x", title: "edited offline", done: false },
    ]);
    second.start();
    await second.settled();
    expect(server.pushes.flat().map((m) => m.id)).toEqual([1, 2, 3, 4]);
    expect(server.ledger.size).toBe(4);
    expect(server.rows("todos")).toEqual([
      { id: "x", title: "edited offline", done: false },
      { id: "b", title: "offline 2", done: false },
    ]);
    // New writes go on from the stored counter.
    expect(await second.insert("todos", { id: "c" }).queued).toBe(5);
  });

  it("sends only the columns an update changes: concurrent edits of other columns survive", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "t", note: "n" } });
    const sync = start(server, new IDBFactory(), { connect: false });
    await sync.ready;
    const write = sync.update("todos", { id: "a" }, { title: "mine" });
    // Someone else changes another column meanwhile.
    server.write({ op: "update", table: "todos", pk: { id: "a" }, values: { note: "theirs" } });
    sync.start();
    await write;
    await sync.settled();
    expect(server.pushes.flat()).toEqual([
      { id: 1, op: "update", table: "todos", pk: { id: "a" }, values: { title: "mine" } },
    ]);
    expect(await sync.get("todos", "a")).toEqual({ id: "a", title: "mine", note: "theirs", done: false });
  });

  it("shows a row inserted without its key until the server's row arrives", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory(), { connect: false, tables: { todos: {}, notes: {} } });
    await sync.insert("notes", { body: "server makes the id" }).queued;
    expect(await sync.query("notes")).toEqual([{ body: "server makes the id" }]);
  });

  it("refuses bad writes before queueing them", async () => {
    const server = new FakeSyncServer();
    const sync = start(server, new IDBFactory(), { connect: false });
    await expect(sync.insert("nope", { id: 1 })).rejects.toMatchObject({
      code: "HEARTH_SYNC_UNKNOWN_TABLE",
      message: expect.stringMatching(/not one of the synced tables/),
    });
    await expect(sync.update("todos", "a", {})).rejects.toThrow(/at least one column/);
    await expect(sync.delete("todos", { title: "x" })).rejects.toThrow(/needs column id/);
    await expect(sync.insert("todos", "row" as never).queued).rejects.toThrow(/object/);
    expect(sync.pendingCount).toBe(0);
    expect(await sync.insert("todos", { id: "ok" }).queued).toBe(1);
  });

  it("rejects alone a mutation too large for a frame and pushes the others", async () => {
    const server = new FakeSyncServer();
    server.limits.frameBytes = 2_000;
    const sync = start(server, new IDBFactory());
    const big = sync.insert("todos", { id: "big", title: "x".repeat(5_000) });
    const small = sync.insert("todos", { id: "small" });
    await expect(big).rejects.toMatchObject({ code: "HEARTH_REALTIME_LIMIT", outcome: "rejected" });
    await expect(small).resolves.toMatchObject({ status: "applied" });
    await sync.settled();
    expect(server.rows("todos").map((r) => r.id)).toEqual(["small"]);
  });

  it("halves a push the server refuses as too large, and pushes everything", async () => {
    const server = new FakeSyncServer();
    server.limits.mutationsPerPush = 4;
    // It announces 4 but refuses more than 2 (as it would a frame over its size).
    server.acceptsPerPush = 2;
    const sync = start(server, new IDBFactory(), { connect: false });
    for (let i = 1; i <= 8; i++) sync.insert("todos", { id: `r${i}` });
    await sync.insert("todos", { id: "r9" }).queued;
    sync.start();
    await sync.settled();
    expect(server.rows("todos")).toHaveLength(9);
    expect(server.pushes.map((p) => p.length)).toEqual([4, 2, 2, 2, 2, 1]);
  });
});
