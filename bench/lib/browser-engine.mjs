/**
 * In-page helpers of the browser bench (bundled with browser-page.mjs): deadlines, the raw
 * IndexedDB request/transaction promises, engines on fresh replicas and a live-query watcher.
 * Engines and replicas come from the SDK's public entry point, as an app imports them.
 */
import { createSync, IndexedDbReplica, MemoryReplica } from "../../sdk/src/index.ts";

const WAIT_MS = 120_000;

/** `promise`, or a rejection naming `what` after WAIT_MS. */
export function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${WAIT_MS / 1000} s`)), WAIT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
export const finished = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
  });

/** Deletes an IndexedDB database (a blocked delete goes on once the last connection closes). */
export function deleteDatabase(name) {
  return within(
    new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error);
    }),
    `deleting the database ${name}`,
  );
}

export function makeReplica(kind) {
  const name = `bench-${crypto.randomUUID()}`;
  if (kind === "indexeddb")
    return { replica: new IndexedDbReplica({ name }), drop: () => deleteDatabase(name) };
  if (kind === "memory") return { replica: new MemoryReplica(), drop: async () => {} };
  throw new Error(`unknown replica kind ${kind}`);
}

/** A connected engine on a fresh replica; `close()` also deletes its database. */
export function openEngine({ url, anonKey, table, kind }) {
  const { replica, drop } = makeReplica(kind);
  const errors = [];
  const engine = createSync({
    url,
    token: anonKey,
    tables: [table],
    replica,
    onError: (err) => errors.push(String(err?.message ?? err)),
  });
  const check = () => {
    if (errors.length > 0) throw new Error(`the engine reported: ${errors.join("; ")}`);
  };
  return {
    engine,
    check,
    close: async () => {
      await within(engine.close(), "closing the engine");
      await drop();
    },
  };
}

/**
 * A live query of the whole `table`: `next(id)` resolves with the time of the first callback
 * whose rows hold that id; `count(n)` with that of the first one with at least `n` rows.
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
    const at = performance.now();
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
