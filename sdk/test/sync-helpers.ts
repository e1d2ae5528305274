/** The engine under test, on the scripted server of sync-fake-server.ts. */
import { IDBKeyRange } from "fake-indexeddb";
import { IndexedDbReplica } from "../src/replica/indexeddb.ts";
import type { Replica, Row } from "../src/replica/types.ts";
import { createSync, type SyncEngine } from "../src/sync/engine.ts";
import type { SyncEvents, SyncOptions, SyncStatus } from "../src/sync/types.ts";
import type { FakeSyncServer } from "./sync-fake-server.ts";

export const TEST_URL = "http://hearth.test/p/p1";

/** An engine on `server`, with quick back-off and no keepalive pings unless asked. */
export function engineFor(
  server: FakeSyncServer,
  options: Partial<SyncOptions> & { replica: Replica },
): SyncEngine {
  return createSync({
    url: TEST_URL,
    token: "anon-key",
    tables: ["todos", "notes"],
    WebSocket: server.WebSocket,
    backoff: { initialMs: 5, maxMs: 40 },
    pingIntervalMs: 60_000,
    ...options,
  });
}

/** An IndexedDB replica on `factory` (the same factory again is a reload). */
export function idbReplica(factory: IDBFactory): IndexedDbReplica {
  return new IndexedDbReplica({ name: "replica", indexedDB: factory, IDBKeyRange });
}

/** Resolves when the engine reports `status` (at once if it already does). */
export function statusOf(sync: SyncEngine, status: SyncStatus, ms = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (sync.status === status) return resolve();
    const timer = setTimeout(() => {
      off();
      reject(new Error(`still ${sync.status}, waited for ${status}`));
    }, ms);
    const off = sync.on("status", (s) => {
      if (s !== status) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** Every `value` the engine emits as `type`, as they come. */
export function collect<K extends keyof SyncEvents & string>(sync: SyncEngine, type: K): SyncEvents[K][] {
  const out: SyncEvents[K][] = [];
  sync.on(type, (v) => out.push(v));
  return out;
}

export const byId = (rows: Row[]) => [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id)));
