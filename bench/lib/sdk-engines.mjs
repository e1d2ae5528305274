/**
 * Sync engines for the SDK bench: each on a fresh replica (memory, or IndexedDB on its own
 * fake-indexeddb factory), connected with `ws`, its close registered with the cleanup registry;
 * and `watch`, a live query whose callbacks resolve waits for a row id or a row count.
 */
import { randomUUID } from "node:crypto";
import { IDBFactory, IDBKeyRange } from "fake-indexeddb";
// The SDK's IndexedDB wrapper (idb) checks `instanceof IDBRequest` and friends on the globals.
import "fake-indexeddb/auto";
import WebSocket from "ws";
import { onCleanup } from "./cleanup.mjs";

export const REPLICAS = {
  memory: { label: "MemoryReplica", make: (sdk) => new sdk.MemoryReplica() },
  indexeddb: {
    label: "IndexedDbReplica (fake-indexeddb)",
    make: (sdk) =>
      new sdk.IndexedDbReplica({
        name: `bench-${randomUUID()}`,
        indexedDB: new IDBFactory(),
        IDBKeyRange,
        locks: null,
      }),
  },
};

/** A connected engine following `tables`; `errors` collects what its `onError` reports. */
export function openEngine(sdk, project, kind, tables) {
  const errors = [];
  const engine = sdk.createSync({
    url: project.url,
    token: project.anonKey,
    tables,
    replica: REPLICAS[kind].make(sdk),
    WebSocket,
    onError: (err) => errors.push(err),
  });
  const unregister = onCleanup(() => engine.close());
  return {
    engine,
    errors,
    close: async () => {
      unregister();
      await engine.close();
    },
  };
}

const WAIT_MS = 180_000;

/** `promise`, or a rejection naming `what` after 3 minutes: a hang fails its step, not the run. */
export function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${WAIT_MS / 1000} s`)), WAIT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Subscribes a live query of the whole `table`. `next(id)` resolves with the hrtime (bigint)
 * of the first callback whose rows hold that id; `count(n)` with that of the first callback
 * with at least `n` rows. `stop()` unsubscribes.
 */
export function watch(engine, table) {
  const byId = new Map();
  const byCount = [];
  let last = 0;
  const wait = (register, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`live query never showed ${what} (last: ${last} rows)`)),
        WAIT_MS,
      );
      register((at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  const stop = engine.live(table, {}, (rows) => {
    const at = process.hrtime.bigint();
    last = rows.length;
    if (byId.size > 0) {
      const ids = new Set(rows.map((r) => r.id));
      for (const [id, done] of byId) {
        if (!ids.has(id)) continue;
        byId.delete(id);
        done(at);
      }
    }
    for (let i = byCount.length - 1; i >= 0; i--) {
      if (rows.length < byCount[i].n) continue;
      byCount[i].done(at);
      byCount.splice(i, 1);
    }
  });
  return {
    next: (id) => wait((done) => byId.set(id, done), `row ${id}`),
    count: (n) => wait((done) => byCount.push({ n, done }), `${n} rows`),
    stop,
  };
}
