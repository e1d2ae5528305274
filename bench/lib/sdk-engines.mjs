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
import { waiters } from "./live-watch.mjs";

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

// A hang fails its step, not the run; times are hrtime (bigint).
export const { within, watch } = waiters({ waitMs: 180_000, now: () => process.hrtime.bigint() });
