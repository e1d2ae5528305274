/**
 * The local replica: what a sync engine keeps on the device (docs: sdk/docs/offline.md).
 * Rows of the followed tables as the server last sent them (by primary key), the sync cursor,
 * the queue of mutations not yet settled, and the client id. Every change to it is one
 * `commit(batch)`, applied all or nothing: a cursor is never stored without the rows it covers,
 * and a write is never acknowledged before its mutation is stored.
 */

/** A row as the REST API reads it: column → JSON value. */
export type Row = Record<string, unknown>;

export type MutationOp = "insert" | "upsert" | "update" | "delete";

/** A local write, kept until the server decided it and its change came back (docs/sync.md, Push). */
export interface QueuedMutation {
  /** increasing per client id; the server applies each (client id, id) once */
  id: number;
  op: MutationOp;
  table: string;
  /** insert and upsert: the columns sent */
  row?: Row;
  /** update and delete: exactly the primary key */
  pk?: Row;
  /** update: only the columns it changes (last writer wins per column) */
  values?: Row;
  /** with a codec: `row` or `values` as pushed (encrypted when the write was made) */
  wire?: Row;
  /**
   * `pending`: not decided yet, pushed (again) when online. `applied`: applied or duplicate,
   * kept in the optimistic overlay until the replica's cursor reaches `lsn`.
   */
  state: "pending" | "applied";
  /** applied: the LSN of its change (null: it changed nothing) */
  lsn?: number | null;
  /** ms since the epoch when it was queued */
  queuedAt: number;
}

export interface ReplicaMeta {
  /** this installation's id for pushes (a random UUID, created once) */
  clientId: string;
  /** the id the next mutation gets */
  nextMutationId: number;
  /** the LSN through which the rows of `tables` hold every change; null: pull a snapshot */
  cursor: number | null;
  /** the tables the cursor covers */
  tables: string[];
}

/** An upsert (row) or a delete (null) of the row with `key` (replica/keys.ts) in `table`. */
export interface RowWrite {
  table: string;
  key: string;
  row: Row | null;
}

/** One atomic change to the replica; its parts apply in the order listed here. */
export interface ReplicaBatch {
  /** a new snapshot starts: forget the rows an earlier, unfinished one staged */
  clearStaged?: boolean;
  /** snapshot rows, kept aside until the snapshot is complete */
  staged?: RowWrite[];
  /** the snapshot is complete: these tables' rows become exactly their staged rows */
  swapStaged?: string[];
  /** upserts and deletes, in order */
  rows?: RowWrite[];
  deleteMutations?: number[];
  putMutations?: QueuedMutation[];
  meta?: Partial<Omit<ReplicaMeta, "clientId">>;
}

export interface ReplicaContents {
  meta: ReplicaMeta;
  /** in id order */
  mutations: QueuedMutation[];
}

/** Storage of a sync engine: MemoryReplica (Node, Workers) or IndexedDbReplica (browsers). */
export interface Replica {
  /** Opens the store (creating the client id on first use) and reads what the engine keeps in memory. */
  open(): Promise<ReplicaContents>;
  /** The confirmed rows of `table` as [key, row] pairs (no pending overlay). */
  rows(table: string): Promise<[string, Row][]>;
  row(table: string, key: string): Promise<Row | undefined>;
  /** Applies `batch` atomically; resolves once it is durable. */
  commit(batch: ReplicaBatch): Promise<void>;
  close(): Promise<void>;
}

export function newMeta(clientId: string = crypto.randomUUID()): ReplicaMeta {
  return { clientId, nextMutationId: 1, cursor: null, tables: [] };
}
