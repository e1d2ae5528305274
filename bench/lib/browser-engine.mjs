/**
 * In-page helpers of the browser bench (bundled with browser-page.mjs): deadlines, the raw
 * IndexedDB request/transaction promises, engines on fresh replicas and a live-query watcher.
 * Engines and replicas come from the SDK's public entry point, as an app imports them.
 */
import { createSync, IndexedDbReplica, MemoryReplica } from "../../sdk/src/index.ts";
import { waiters } from "./live-watch.mjs";

// Times are performance.now() in the page.
export const { within, watch } = waiters({ waitMs: 120_000, now: () => performance.now() });

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
