/**
 * `createSync`: a local-first replica of some tables, kept in sync through `{url}/sync/v1`
 * (docs/sync.md; guide: sdk/docs/offline.md). Reads answer from the replica with the queued
 * writes laid over it; writes are stored in the replica's queue before they count as made,
 * and pushed when online; live queries re-run on every local or remote change of their table.
 */
import type { QueuedMutation, Row } from "../replica/types.ts";
import { DEFAULT_BACKOFF } from "./backoff.ts";
import type { WebSocketConstructor } from "./connection.ts";
import { SyncConfigError, SyncError, type SyncMutationError } from "./errors.ts";
import { Emitter } from "./events.ts";
import { Feed } from "./feed.ts";
import { READ_ONLY_TABLES, type WritableTable } from "./files.ts";
import { type LiveOptions, LiveQueries } from "./live.ts";
import { Local } from "./local.ts";
import { fold } from "./overlay.ts";
import { DEFAULT_LIMITS } from "./protocol.ts";
import { type QueryOptions, runQuery, sameRows } from "./query.ts";
import { type TableKeys, tableKeys } from "./tables.ts";
import type {
  MutationPromise,
  MutationResult,
  RowCodec,
  SyncEvents,
  SyncOptions,
  SyncStatus,
} from "./types.ts";

type Waiter = { resolve(r: MutationResult): void; reject(e: SyncMutationError): void };
type Fields = Pick<QueuedMutation, "op" | "row" | "pk" | "values">;

/** A row type per table name (e.g. generated from the project's schema). */
export type Tables = Record<string, Row>;

export class SyncEngine<DB extends Tables = Tables> {
  /** resolves once the replica is open */
  readonly ready: Promise<void>;
  private readonly local: Local;
  private readonly feed: Feed;
  private readonly events = new Emitter<SyncEvents>();
  private readonly lives = new LiveQueries();
  private readonly waiters = new Map<number, Waiter>();
  private readonly codec: RowCodec | null;
  /** the last write to enter the queue (writes enter in call order) */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(options: SyncOptions) {
    const keys = tableKeys(options.tables);
    if (keys.size > DEFAULT_LIMITS.tablesPerSocket) {
      throw new SyncConfigError(`A sync follows at most ${DEFAULT_LIMITS.tablesPerSocket} tables`);
    }
    const Socket = options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined);
    if (!Socket)
      throw new SyncConfigError("No WebSocket here: pass { WebSocket } (in Node 20, the `ws` package)");
    const { token, getToken } = options;
    if (token === undefined && !getToken) throw new SyncConfigError("Pass a token or getToken");
    this.local = new Local(options.replica, keys);
    let pending = 0;
    this.local.onMutations = () => {
      const now = this.pendingCount;
      if (now === pending) return;
      pending = now;
      this.events.emit("pending", now);
    };
    this.codec = options.codec ?? null;
    this.ready = this.local.ready;
    if (options.onRejected) this.events.on("rejected", options.onRejected);
    if (options.onExpired) this.events.on("expired", options.onExpired);
    if (options.onStatus) this.events.on("status", options.onStatus);
    if (options.onError) this.events.on("error", options.onError);
    this.feed = new Feed(
      {
        local: this.local,
        events: this.events,
        changed: (tables, source) => this.changed(tables, source),
        answered: (id, outcome) => this.answered(id, outcome),
      },
      {
        url: options.url,
        token: async () => (getToken ? getToken() : token!),
        WebSocket: Socket,
        codec: this.codec,
        backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
        timing: {
          pingIntervalMs: options.pingIntervalMs ?? 20_000,
          pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
        },
        ...(options.network === undefined ? {} : { network: options.network }),
      },
    );
    if (options.connect !== false) this.start();
  }

  get status(): SyncStatus {
    return this.feed.status;
  }

  /** This installation's client id (after `ready`). */
  get clientId(): string {
    return this.local.meta.clientId;
  }

  /** Mutations not yet answered by the server. */
  get pendingCount(): number {
    return this.local.pending().length;
  }

  /** Connects (again), e.g. after `stop()` or a 4001 once the user signed in again. */
  start(): void {
    this.feed.start();
  }

  /** Goes offline: reads and writes keep working on the replica; writes queue. */
  stop(): void {
    this.feed.stop();
  }

  /** Stops and closes the replica once every started write is stored. */
  async close(): Promise<void> {
    this.feed.stop();
    this.lives.clear();
    await this.local.run(() => this.local.replica.close());
  }

  on<K extends keyof SyncEvents & string>(type: K, listener: (value: SyncEvents[K]) => void): () => void {
    return this.events.on(type, listener);
  }

  /**
   * Resolves when the engine is live and every queued write was answered and its change
   * arrived: the replica then holds the server's state.
   */
  settled(): Promise<void> {
    return this.feed.idle();
  }

  /**
   * Rows of `table` from the replica, queued writes included: no network.
   * @example
   * const open = await sync.query("todos", { where: (t) => !t.done, orderBy: "title", limit: 20 });
   */
  async query<K extends keyof DB & string>(table: K, options: QueryOptions<DB[K]> = {}): Promise<DB[K][]> {
    this.keysOf(table); // an unknown table fails before waiting for the replica
    await this.ready;
    const view = await this.local.view(table);
    return runQuery([...view.values()] as DB[K][], options);
  }

  /**
   * One row by primary key (an object of its key columns, or the value of a one-column key).
   * @example
   * const todo = await sync.get("todos", 7);
   */
  async get<K extends keyof DB & string>(table: K, pk: unknown): Promise<DB[K] | undefined> {
    const keys = this.keysOf(table);
    await this.ready;
    const key = keys.ofPk(keys.pkOf(pk));
    const row = await this.local.replica.row(table, key);
    const view = new Map(row ? [[key, row]] : []);
    fold(
      view,
      this.local.mutations.filter((m) => m.table === table),
      keys,
    );
    return view.get(key) as DB[K] | undefined;
  }

  /**
   * Calls `callback` with the query's rows now and after every change that alters them,
   * local or from the server. Returns the unsubscribe. The query's errors go to `onError`
   * (else to the engine's `error` event): a table the engine does not follow fails at once
   * with `HEARTH_SYNC_UNKNOWN_TABLE`, a run that throws with `HEARTH_SYNC_CLIENT`.
   * @example
   * const stop = sync.live("todos", { orderBy: "title" }, (todos) => render(todos), {
   *   onError: (e) => showError(e.message),
   * });
   */
  live<K extends keyof DB & string>(
    table: K,
    options: QueryOptions<DB[K]>,
    callback: (rows: DB[K][]) => void,
    { onError }: LiveOptions = {},
  ): () => void {
    let last: DB[K][] | null = null;
    let active = true;
    const failed = (err: unknown) => {
      if (!active) return;
      const error = toSyncError(err);
      if (!onError) return this.events.emit("error", error);
      try {
        onError(error);
      } catch (thrown) {
        console.error("hearth sync: a live query's onError threw", thrown);
      }
    };
    if (!this.local.keys.has(table)) {
      // Nothing to watch: the query would never answer.
      const error = SyncError.unknownTable(table, this.local.followed);
      queueMicrotask(() => failed(error));
      return () => {
        active = false;
      };
    }
    const unsubscribe = this.lives.add(
      table,
      async () => {
        let rows: DB[K][];
        try {
          rows = await this.query(table, options);
        } catch (err) {
          last = null; // the next answer is delivered, even if it equals the one before
          throw err;
        }
        if (!active || (last && sameRows(last, rows))) return;
        last = rows;
        callback(rows);
      },
      failed,
    );
    return () => {
      active = false;
      unsubscribe();
    };
  }

  /**
   * Inserts a row: visible at once, pushed when online. Give it its key (a client-made UUID)
   * to update or delete it before the server answered.
   * @example
   * await sync.insert("todos", { id: crypto.randomUUID(), title: "milk" }).queued;
   */
  insert<K extends WritableTable<DB>>(table: K, row: Partial<DB[K]>): MutationPromise {
    return this.write(table, () => ({ op: "insert", row: rowOf(row) }));
  }

  /**
   * Inserts, or merges the columns given into the row with the same key.
   * @example
   * sync.upsert("settings", { id: "theme", value: "dark" });
   */
  upsert<K extends WritableTable<DB>>(table: K, row: Partial<DB[K]>): MutationPromise {
    return this.write(table, () => ({ op: "upsert", row: rowOf(row) }));
  }

  /**
   * Changes only the columns given (last writer wins per column, in the server's order).
   * @example
   * sync.update("todos", todo.id, { done: true });
   */
  update<K extends WritableTable<DB>>(table: K, pk: unknown, values: Partial<DB[K]>): MutationPromise {
    return this.write(table, (keys) => {
      const v = rowOf(values);
      if (Object.keys(v).length === 0) throw new TypeError("An update needs at least one column");
      return { op: "update", pk: keys.pkOf(pk), values: v };
    });
  }

  /**
   * Deletes the row with this key (a delete wins over earlier updates).
   * @example
   * sync.delete("todos", todo.id);
   */
  delete<K extends WritableTable<DB>>(table: K, pk: unknown): MutationPromise {
    return this.write(table, (keys) => ({ op: "delete", pk: keys.pkOf(pk) }));
  }

  private write(table: string, build: (keys: TableKeys) => Fields): MutationPromise {
    let waiter!: Waiter;
    const outcome = new Promise<MutationResult>((resolve, reject) => {
      waiter = { resolve, reject };
    });
    // Writes enter the queue in the order they were made, each after its encryption.
    const queued = this.writes.then(async () => {
      if (READ_ONLY_TABLES.includes(table)) throw SyncError.readOnly(table);
      const keys = this.keysOf(table);
      await this.local.ready;
      const fields = build(keys);
      const wire = await this.encrypt(table, fields);
      return this.local.run(async () => {
        const id = this.local.meta.nextMutationId;
        const m: QueuedMutation = {
          id,
          table,
          state: "pending",
          queuedAt: Date.now(),
          ...fields,
          ...(wire ? { wire } : {}),
        };
        await this.local.replica.commit({ putMutations: [m], meta: { nextMutationId: id + 1 } });
        this.local.meta = { ...this.local.meta, nextMutationId: id + 1 };
        this.local.mutations = [...this.local.mutations, m];
        this.waiters.set(id, waiter);
        this.changed([table], "local");
        this.feed.push();
        return id;
      });
    });
    this.writes = queued.catch(() => {});
    queued.catch((err) => waiter.reject(err));
    // A write nobody awaits must not end as an unhandled rejection: events report it.
    outcome.catch(() => {});
    queued.catch(() => {});
    return Object.assign(outcome, { queued });
  }

  /** With a codec: the row or changed columns as they will be pushed. */
  private async encrypt(table: string, fields: Fields): Promise<Row | null> {
    const codec = this.codec;
    if (!codec) return null;
    if (fields.op === "update") return codec.encrypt(table, fields.values!, { primaryKey: fields.pk! });
    if (fields.op === "delete") return null;
    return codec.encrypt(table, fields.row!, {});
  }

  /** The keys of a followed table; `HEARTH_SYNC_UNKNOWN_TABLE` for any other. */
  private keysOf(table: string): TableKeys {
    const keys = this.local.keys.get(table);
    if (!keys) throw SyncError.unknownTable(table, this.local.followed);
    return keys;
  }

  private answered(id: number, outcome: MutationResult | SyncMutationError): void {
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.waiters.delete(id);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }

  private changed(tables: Iterable<string>, source: "local" | "remote"): void {
    const list = [...tables];
    this.lives.notify(list);
    this.events.emit("change", { tables: list, source });
  }
}

function rowOf(row: unknown): Row {
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    throw new TypeError("A row is an object of column values");
  }
  return structuredClone(row as Row);
}

function toSyncError(err: unknown): SyncError {
  if (err instanceof SyncError) return err;
  return SyncError.client(err instanceof Error ? err.message : String(err), null, err);
}

/**
 * Starts syncing `tables` into `replica` (see sdk/docs/offline.md).
 * @example
 * import WebSocket from "ws"; // Node 20 only; browsers and Workers have one
 * const sync = createSync({
 *   url: "http://127.0.0.1:8787/p/<project>",
 *   token: anonKey,
 *   tables: ["todos"],
 *   replica: new IndexedDbReplica({ name: "todos-app" }),
 *   WebSocket,
 * });
 * sync.live("todos", { orderBy: "title" }, render);
 * sync.insert("todos", { id: crypto.randomUUID(), title: "milk" });
 */
export function createSync<DB extends Tables = Tables>(options: SyncOptions): SyncEngine<DB> {
  return new SyncEngine<DB>(options);
}
