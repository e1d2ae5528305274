/**
 * A replica held in memory (Node, Workers, tests), optionally persisted through an injected
 * `load`/`save` pair (a JSON file in Node, KV or Durable Object storage in a Worker). A commit
 * resolves only after a save that includes it: a queued mutation is on disk before the write
 * that queued it returns. Saves never overlap; commits made during a save share the next one.
 * When a save fails the commit rejects, and the memory keeps the batch (the next save writes it).
 */
import {
  newMeta,
  type QueuedMutation,
  type Replica,
  type ReplicaBatch,
  type ReplicaContents,
  type ReplicaMeta,
  type Row,
  type RowWrite,
} from "./types.ts";

export interface ReplicaPersistence {
  /** the text `save` last stored, or null when there is none yet */
  load(): Promise<string | null> | string | null;
  save(json: string): Promise<void> | void;
}

export interface MemoryReplicaOptions {
  persist?: ReplicaPersistence;
}

type Tables = Map<string, Map<string, Row>>;

interface Stored {
  version: 1;
  meta: ReplicaMeta;
  rows: Record<string, [string, Row][]>;
  staged: Record<string, [string, Row][]>;
  mutations: QueuedMutation[];
}

const FORMAT = 1;

function toRecord(tables: Tables): Record<string, [string, Row][]> {
  const out: Record<string, [string, Row][]> = {};
  for (const [name, rows] of tables) out[name] = [...rows];
  return out;
}

function fromRecord(rec: Record<string, [string, Row][]>): Tables {
  return new Map(Object.entries(rec).map(([name, rows]) => [name, new Map(rows)]));
}

function write(tables: Tables, w: RowWrite): void {
  let rows = tables.get(w.table);
  if (!rows) {
    rows = new Map();
    tables.set(w.table, rows);
  }
  if (w.row === null) rows.delete(w.key);
  else rows.set(w.key, structuredClone(w.row));
}

/**
 * @example
 * // Node: keep the replica in a JSON file (write to a temporary file, then rename over).
 * import { readFile, rename, writeFile } from "node:fs/promises";
 * const replica = new MemoryReplica({
 *   persist: {
 *     load: () => readFile("replica.json", "utf8").catch(() => null),
 *     save: async (json) => {
 *       await writeFile("replica.json.tmp", json);
 *       await rename("replica.json.tmp", "replica.json");
 *     },
 *   },
 * });
 */
export class MemoryReplica implements Replica {
  private meta: ReplicaMeta | null = null;
  private tables: Tables = new Map();
  private staged: Tables = new Map();
  private mutations = new Map<number, QueuedMutation>();
  /** bumped by every commit; `saved` is the version the last completed save holds */
  private version = 0;
  private saved = 0;
  private saving: Promise<void> | null = null;

  constructor(private readonly options: MemoryReplicaOptions = {}) {}

  async open(): Promise<ReplicaContents> {
    if (!this.meta) {
      const text = this.options.persist ? await this.options.persist.load() : null;
      if (text) this.restore(JSON.parse(text) as Stored);
      else {
        this.meta = newMeta();
        this.version++;
        await this.persist();
      }
    }
    return {
      meta: { ...this.state().meta },
      mutations: [...this.mutations.values()].sort((a, b) => a.id - b.id).map((m) => structuredClone(m)),
    };
  }

  private restore(stored: Stored): void {
    if (stored.version !== FORMAT) throw new Error(`Unknown replica format ${String(stored.version)}`);
    this.meta = stored.meta;
    this.tables = fromRecord(stored.rows);
    this.staged = fromRecord(stored.staged);
    this.mutations = new Map(stored.mutations.map((m) => [m.id, m]));
  }

  private state(): { meta: ReplicaMeta } {
    if (!this.meta) throw new Error("The replica is not open");
    return { meta: this.meta };
  }

  async rows(table: string): Promise<[string, Row][]> {
    return [...(this.tables.get(table) ?? [])].map(([k, row]) => [k, structuredClone(row)]);
  }

  async row(table: string, key: string): Promise<Row | undefined> {
    const row = this.tables.get(table)?.get(key);
    return row === undefined ? undefined : structuredClone(row);
  }

  async commit(batch: ReplicaBatch): Promise<void> {
    const { meta } = this.state();
    if (batch.clearStaged) this.staged = new Map();
    for (const w of batch.staged ?? []) write(this.staged, w);
    for (const table of batch.swapStaged ?? []) {
      this.tables.set(table, this.staged.get(table) ?? new Map());
      this.staged.delete(table);
    }
    for (const w of batch.rows ?? []) write(this.tables, w);
    for (const id of batch.deleteMutations ?? []) this.mutations.delete(id);
    for (const m of batch.putMutations ?? []) this.mutations.set(m.id, structuredClone(m));
    if (batch.meta) Object.assign(meta, structuredClone(batch.meta));
    this.version++;
    await this.persist();
  }

  /** Resolves once a save holding the current version completed. */
  private async persist(): Promise<void> {
    const persist = this.options.persist;
    if (!persist) return;
    const want = this.version;
    while (this.saved < want) {
      if (!this.saving) {
        const version = this.version;
        const json = JSON.stringify(this.snapshot());
        // Started from a resolved promise: a `save` that throws at once still clears `saving`.
        const saving: Promise<void> = Promise.resolve()
          .then(() => persist.save(json))
          .then(() => {
            this.saved = Math.max(this.saved, version);
          })
          .finally(() => {
            if (this.saving === saving) this.saving = null;
          });
        this.saving = saving;
      }
      await this.saving;
    }
  }

  private snapshot(): Stored {
    return {
      version: FORMAT,
      meta: this.state().meta,
      rows: toRecord(this.tables),
      staged: toRecord(this.staged),
      mutations: [...this.mutations.values()],
    };
  }

  async close(): Promise<void> {
    if (this.saving) await this.saving.catch(() => {});
  }
}
