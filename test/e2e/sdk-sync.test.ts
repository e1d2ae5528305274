/**
 * The SDK's sync engine (sdk/src/sync) against a real `npm start` (started by
 * global-setup.ts), in Node with `ws` as the WebSocket: two engines on one project see each
 * other's writes live; one goes offline, writes, and is "reloaded" (a new engine on its
 * persisted replica file) — everything reaches the server exactly once and the other engine;
 * refused writes roll back with the server's code. Waiting is on the engine's promises and
 * live callbacks, never on sleeps.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDBFactory, IDBKeyRange } from "fake-indexeddb";
import "fake-indexeddb/auto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { IndexedDbReplica } from "../../sdk/src/replica/indexeddb.ts";
import { MemoryReplica } from "../../sdk/src/replica/memory.ts";
import type { Row } from "../../sdk/src/replica/types.ts";
import { createSync, type SyncEngine } from "../../sdk/src/sync/engine.ts";
import { SyncMutationError } from "../../sdk/src/sync/errors.ts";
import type { SyncOptions } from "../../sdk/src/sync/types.ts";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const SCHEMA = {
  tables: {
    todos: {
      columns: {
        id: { type: "uuid", primaryKey: true },
        title: { type: "text", notNull: true },
        done: { type: "boolean", default: false },
        n: { type: "integer" },
      },
      policy: { read: "public", write: "public" },
    },
    log: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        body: { type: "text" },
      },
      policy: { read: "public", write: "public" },
    },
    locked: {
      columns: { id: { type: "uuid", primaryKey: true }, title: { type: "text" } },
      policy: { read: "public", write: "service" },
    },
  },
};

const TABLES = ["todos", "log", "locked"];

let project: Project;
let dir: string;
const engines: SyncEngine[] = [];

beforeAll(async () => {
  project = await createProject(server, "sdk-sync-e2e");
  await putSchema(project, SCHEMA);
  dir = mkdtempSync(join(tmpdir(), "hearth-sdk-sync-"));
});

afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** A replica in a JSON file, written to a temporary file and renamed over (never half-written). */
function fileReplica(name: string): MemoryReplica {
  const path = join(dir, name);
  return new MemoryReplica({
    persist: {
      load: () => readFile(path, "utf8").catch(() => null),
      save: async (json) => {
        await writeFile(`${path}.tmp`, json);
        await rename(`${path}.tmp`, path);
      },
    },
  });
}

function engine(replica: SyncOptions["replica"], options: Partial<SyncOptions> = {}): SyncEngine {
  const sync = createSync({
    url: project.url,
    token: project.anonKey,
    tables: TABLES,
    replica,
    WebSocket,
    ...options,
  });
  engines.push(sync);
  return sync;
}

async function rest(table: string): Promise<Row[]> {
  const res = await fetch(`${project.url}/rest/v1/${table}?select=*&order=id`, {
    headers: { apikey: project.serviceKey, authorization: `Bearer ${project.serviceKey}` },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Row[];
}

/** Resolves with the rows of the first live answer that satisfies `done`. */
function liveUntil(
  sync: SyncEngine,
  table: string,
  done: (rows: Row[]) => boolean,
  ms = 20_000,
): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    let last: Row[] = [];
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`live query never matched; last answer: ${JSON.stringify(last).slice(0, 500)}`));
    }, ms);
    const stop = sync.live(table, { orderBy: "id" }, (rows) => {
      last = rows;
      if (!done(rows)) return;
      clearTimeout(timer);
      queueMicrotask(stop);
      resolve(rows);
    });
  });
}

const sorted = (rows: Row[]) => [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id)));
const pick = (rows: Row[]) => sorted(rows).map(({ id, title, done, n }) => ({ id, title, done, n }));

describe("SDK sync against npm start", () => {
  let a: SyncEngine;
  let b: SyncEngine;
  const bFactory = new IDBFactory();
  let hello: Row;

  it("two engines: A's write reaches B's live query", async () => {
    a = engine(fileReplica("a.json"));
    b = engine(new IndexedDbReplica({ name: "b", indexedDB: bFactory, IDBKeyRange }));
    await Promise.all([a.settled(), b.settled()]);
    const id = crypto.randomUUID();
    const seen = liveUntil(b, "todos", (rows) => rows.some((r) => r.id === id));
    expect(await a.insert("todos", { id, title: "hello from A" })).toMatchObject({ status: "applied" });
    const rows = await seen;
    // B holds the server's row: with the column default it did not send.
    hello = { id, title: "hello from A", done: false, n: null };
    expect(rows.find((r) => r.id === id)).toEqual(hello);
  });

  it("A offline: 50 inserts and edits survive a reload and sync once; B sees all of it", async () => {
    await a.settled();
    a.stop();
    const ids = Array.from({ length: 50 }, () => crypto.randomUUID());
    const writes = ids.map((id, i) => a.insert("todos", { id, title: `offline ${i}`, n: i }));
    for (const id of ids.slice(0, 10)) writes.push(a.update("todos", id, { done: true }));
    for (const id of ids.slice(10, 15)) writes.push(a.delete("todos", id));
    writes.push(a.update("todos", ids[20]!, { title: "renamed offline" }));
    for (let i = 0; i < 3; i++) writes.push(a.insert("log", { body: `entry ${i}` }));
    await Promise.all(writes.map((w) => w.queued));
    expect(a.pendingCount).toBe(69);
    // Reads answer from the replica, offline: 1 + 50 - 5 todos, 3 log entries with local keys.
    expect(await a.query("todos")).toHaveLength(46);
    expect(await a.query("log")).toHaveLength(3);
    const clientId = a.clientId;
    await a.close(); // the "reload": this process forgets A; its replica file stays

    const a2 = engine(fileReplica("a.json"), { connect: false });
    await a2.ready;
    expect(a2.clientId).toBe(clientId);
    expect(a2.pendingCount).toBe(69);
    expect(await a2.query("todos")).toHaveLength(46);
    const expected = pick([
      hello,
      ...ids
        .map((id, i) => ({ id, title: i === 20 ? "renamed offline" : `offline ${i}`, done: i < 10, n: i }))
        .filter((_, i) => i < 10 || i >= 15),
    ]);

    const atB = liveUntil(
      b,
      "todos",
      (rows) => rows.length === 46 && rows.some((r) => r.title === "renamed offline"),
    );
    a2.start();
    await a2.settled();
    expect(a2.pendingCount).toBe(0);
    expect(pick(await a2.query("todos"))).toEqual(expected);

    // The server holds each write once: the rows A shows, and three log entries, not six.
    const server = await rest("todos");
    expect(pick(server)).toEqual(expected);
    expect(server.filter((r) => r.done === true)).toHaveLength(10);
    const log = await rest("log");
    expect(log.map((r) => r.body).sort()).toEqual(["entry 0", "entry 1", "entry 2"]);
    // A's optimistic log rows gave way to the server's (with their generated ids).
    expect(sorted(await a2.query("log")).map((r) => r.id)).toEqual(sorted(log).map((r) => r.id));

    expect(pick(await atB)).toEqual(expected);
    await b.settled();
    expect(pick(await b.query("todos"))).toEqual(expected);
    expect(sorted(await b.query("log"))).toEqual(sorted(log));
  });

  it("a refused write rolls back with the server's code: policy denial (42501) and duplicate key (23505)", async () => {
    const sync = engine(fileReplica("c.json"));
    const rejected: SyncMutationError[] = [];
    sync.on("rejected", (e) => rejected.push(e));
    await sync.settled();

    const denied = sync.insert("locked", { id: crypto.randomUUID(), title: "anon may not write" });
    await denied.queued;
    expect(await sync.query("locked")).toHaveLength(1);
    const err = await denied.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncMutationError);
    expect(err).toMatchObject({ outcome: "rejected", code: "42501" });
    expect(await sync.query("locked")).toEqual([]);

    const [existing] = await rest("todos");
    const dup = sync.insert("todos", { id: existing!.id, title: "same key" });
    await dup.queued;
    expect((await sync.get("todos", existing!.id))?.title).toBe("same key");
    await expect(dup).rejects.toMatchObject({ outcome: "rejected", code: "23505" });
    expect(await sync.get("todos", existing!.id)).toEqual(existing);
    expect(rejected.map((e) => e.code)).toEqual(["42501", "23505"]);
    expect(await rest("locked")).toEqual([]);
  });
});
