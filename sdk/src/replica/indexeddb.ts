/**
 * A replica in IndexedDB (browsers), through `idb`. One database per replica with four stores:
 * `rows` and `staged` keyed by [table, row key], `mutations` by mutation id, `meta` (one
 * record). Each `commit` is one readwrite transaction over them, so a crash or a closed tab
 * keeps either all of a batch or none of it: a stored cursor always has its rows, a queued
 * mutation its id counter.
 *
 * One engine per database: where Web Locks exist, `open` takes an exclusive lock named after the
 * database and fails at once if another tab holds it (two engines would hand out the same
 * mutation ids, and the server would answer the second writer's "duplicate" without applying
 * it). The lock is released by `close`.
 *
 * `idb` recognises IndexedDB objects by the global classes (IDBRequest, IDBTransaction…):
 * browsers have them; Node needs `fake-indexeddb/auto` loaded before use. The factory and
 * IDBKeyRange themselves can be injected (one fake factory per test keeps tests apart).
 */
import { type DBSchema, type IDBPDatabase, type IDBPTransaction, wrap } from "idb";
import { HearthError } from "../errors.ts";
import {
  newMeta,
  type QueuedMutation,
  type Replica,
  type ReplicaBatch,
  type ReplicaContents,
  type ReplicaMeta,
  type Row,
} from "./types.ts";

interface ReplicaSchema extends DBSchema {
  rows: { key: [string, string]; value: Row };
  staged: { key: [string, string]; value: Row };
  mutations: { key: number; value: QueuedMutation };
  meta: { key: string; value: ReplicaMeta };
}

const VERSION = 1;
const STORES = ["rows", "staged", "mutations", "meta"] as const;
const META_KEY = "meta";

type Tx = IDBPTransaction<ReplicaSchema, (typeof STORES)[number][], "readwrite">;

/** The part of the Web Locks API (`navigator.locks`) the replica uses. */
export interface ReplicaLocks {
  request(
    name: string,
    options: { ifAvailable: true },
    callback: (lock: unknown) => Promise<void> | undefined,
  ): Promise<unknown>;
}

/** `HEARTH_REPLICA_IN_USE`: another tab or engine holds this replica's lock. */
export class ReplicaInUseError extends HearthError {
  override readonly name: string = "ReplicaInUseError";
  constructor(message: string) {
    super("HEARTH_REPLICA_IN_USE", message, {
      hint: "Show that the app is open in another tab, or give each tab its own database name.",
    });
  }
}

export interface IndexedDbReplicaOptions {
  /** the database name: one per project and user (default "hearth-replica") */
  name?: string;
  /** default: globalThis.indexedDB */
  indexedDB?: IDBFactory;
  /** default: globalThis.IDBKeyRange */
  IDBKeyRange?: typeof IDBKeyRange;
  /** default: navigator.locks where it exists; null: no lock */
  locks?: ReplicaLocks | null;
}

/**
 * @example
 * const replica = new IndexedDbReplica({ name: `hearth:${projectId}:${userId}` });
 * const sync = createSync({ url, token, tables: ["todos"], replica });
 */
export class IndexedDbReplica implements Replica {
  private db: IDBPDatabase<ReplicaSchema> | null = null;
  private readonly name: string;
  private readonly factory: IDBFactory;
  private readonly KeyRange: typeof IDBKeyRange;
  private readonly locks: ReplicaLocks | null;
  private release: (() => void) | null = null;

  constructor(options: IndexedDbReplicaOptions = {}) {
    this.name = options.name ?? "hearth-replica";
    const factory = options.indexedDB ?? globalThis.indexedDB;
    const KeyRange = options.IDBKeyRange ?? globalThis.IDBKeyRange;
    if (!factory || !KeyRange) {
      throw new TypeError(
        "IndexedDbReplica needs IndexedDB: pass { indexedDB, IDBKeyRange } outside browsers",
      );
    }
    this.factory = factory;
    this.KeyRange = KeyRange;
    const nav = (globalThis as { navigator?: { locks?: ReplicaLocks } }).navigator;
    this.locks = options.locks === undefined ? (nav?.locks ?? null) : options.locks;
  }

  /** Holds the database's lock until `close`; throws if another engine holds it. */
  private async lock(): Promise<void> {
    if (!this.locks || this.release) return;
    await new Promise<void>((resolve, reject) => {
      this.locks!.request(`hearth-replica:${this.name}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(new ReplicaInUseError(`The replica ${this.name} is open in another tab or engine`));
          return undefined;
        }
        resolve();
        return new Promise<void>((release) => {
          this.release = release;
        });
      }).catch(reject);
    });
  }

  async open(): Promise<ReplicaContents> {
    await this.lock();
    if (!this.db) {
      const request = this.factory.open(this.name, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        for (const store of STORES) if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
      };
      const db = (await wrap(request)) as unknown as IDBPDatabase<ReplicaSchema>;
      // Another tab upgrading the database: let it, this connection is done.
      db.addEventListener("versionchange", () => db.close());
      this.db = db;
    }
    const tx = this.database().transaction(["meta", "mutations"], "readwrite");
    let meta = await tx.objectStore("meta").get(META_KEY);
    if (!meta) {
      meta = newMeta();
      await tx.objectStore("meta").put(meta, META_KEY);
    }
    const mutations = await tx.objectStore("mutations").getAll();
    await tx.done;
    return { meta, mutations };
  }

  private database(): IDBPDatabase<ReplicaSchema> {
    if (!this.db) throw new Error("The replica is not open");
    return this.db;
  }

  /** Every key [table, k] (arrays sort after strings, so [table, []] bounds them). */
  private tableRange(table: string): IDBKeyRange {
    return this.KeyRange.bound([table], [table, []]);
  }

  async rows(table: string): Promise<[string, Row][]> {
    const tx = this.database().transaction("rows", "readonly");
    const range = this.tableRange(table);
    const [keys, values] = await Promise.all([tx.store.getAllKeys(range), tx.store.getAll(range), tx.done]);
    return keys.map((k, i) => [k[1], values[i]!]);
  }

  async row(table: string, key: string): Promise<Row | undefined> {
    return this.database().get("rows", [table, key]);
  }

  async commit(batch: ReplicaBatch): Promise<void> {
    const tx = this.database().transaction([...STORES], "readwrite");
    // Every request is awaited with the transaction: one failure aborts it whole, and no
    // request's rejection goes unhandled.
    const requests: Promise<unknown>[] = [tx.done];
    try {
      await this.write(tx, batch, requests);
    } catch (err) {
      try {
        tx.abort();
      } catch {
        // already finished
      }
      await Promise.allSettled(requests);
      throw err;
    }
    await Promise.all(requests);
  }

  private async write(tx: Tx, batch: ReplicaBatch, requests: Promise<unknown>[]): Promise<void> {
    const staged = tx.objectStore("staged");
    const rows = tx.objectStore("rows");
    if (batch.clearStaged) requests.push(staged.clear());
    for (const w of batch.staged ?? []) {
      if (w.row !== null) requests.push(staged.put(w.row, [w.table, w.key]));
    }
    for (const table of batch.swapStaged ?? []) {
      // The table's rows become its staged rows, which leave the staging store.
      const range = this.tableRange(table);
      requests.push(rows.delete(range));
      // Two bulk reads, not a cursor: a cursor costs one event-loop round trip per row
      // (10k rows: ~4 s in Chromium against ~1.5 s this way, bench/results/sdk-browser.md).
      const [keys, values] = await Promise.all([staged.getAllKeys(range), staged.getAll(range)]);
      for (let i = 0; i < keys.length; i++) requests.push(rows.put(values[i]!, keys[i]));
      requests.push(staged.delete(range));
    }
    for (const w of batch.rows ?? []) {
      requests.push(w.row === null ? rows.delete([w.table, w.key]) : rows.put(w.row, [w.table, w.key]));
    }
    const mutations = tx.objectStore("mutations");
    for (const id of batch.deleteMutations ?? []) requests.push(mutations.delete(id));
    for (const m of batch.putMutations ?? []) requests.push(mutations.put(m, m.id));
    if (batch.meta) {
      const store = tx.objectStore("meta");
      const meta = await store.get(META_KEY);
      if (!meta) throw new Error("The replica has no meta record");
      requests.push(store.put({ ...meta, ...batch.meta }, META_KEY));
    }
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = null;
    this.release?.();
    this.release = null;
  }
}
