/**
 * The engine's side of the replica: its meta and mutation queue mirrored in memory, and one
 * serial chain through which every change to them runs (frames from the server and local
 * writes alike), so the memory copy and the replica change in the same order. The memory copy
 * changes only after the replica's commit succeeded.
 */
import type { QueuedMutation, Replica, ReplicaMeta, Row } from "../replica/types.ts";
import { fold } from "./overlay.ts";
import type { TableKeys } from "./tables.ts";

export class Local {
  meta: ReplicaMeta = { clientId: "", nextMutationId: 1, cursor: null, tables: [] };
  private queue: QueuedMutation[] = [];
  /** called after every change of `mutations` (the engine's `pending` event) */
  onMutations: (() => void) | null = null;

  /** in id order: pending ones, then (interleaved) applied ones awaiting their change */
  get mutations(): QueuedMutation[] {
    return this.queue;
  }

  set mutations(next: QueuedMutation[]) {
    this.queue = next;
    this.onMutations?.();
  }
  readonly ready: Promise<void>;
  readonly followed: string[];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly replica: Replica,
    readonly keys: Map<string, TableKeys>,
  ) {
    this.followed = [...keys.keys()];
    this.ready = this.run(async () => {
      const contents = await replica.open();
      this.meta = contents.meta;
      this.mutations = contents.mutations;
    });
    // Reported to whoever awaits it (a query, a write, the connection), never unhandled.
    this.ready.catch(() => {});
  }

  /** Runs `fn` after everything run before it (a failure does not stop the chain). */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => {});
    return next;
  }

  /** The keys of a followed table; a TypeError for any other. */
  keysOf(table: string): TableKeys {
    const keys = this.keys.get(table);
    if (!keys) throw new TypeError(`${table} is not one of the synced tables (${this.followed.join(", ")})`);
    return keys;
  }

  /** The stored cursor when it covers exactly the followed tables, else null (pull a snapshot). */
  cursor(): number | null {
    const stored = new Set(this.meta.tables);
    const same = stored.size === this.followed.length && this.followed.every((t) => stored.has(t));
    return same ? this.meta.cursor : null;
  }

  pending(): QueuedMutation[] {
    return this.mutations.filter((m) => m.state === "pending");
  }

  find(id: number): QueuedMutation | undefined {
    return this.mutations.find((m) => m.id === id);
  }

  /** Applied mutations whose change the replica holds once it is at `cursor`. */
  settledBy(cursor: number): QueuedMutation[] {
    return this.mutations.filter((m) => m.state === "applied" && (m.lsn ?? 0) <= cursor);
  }

  remove(ids: Iterable<number>): void {
    const gone = new Set(ids);
    this.mutations = this.mutations.filter((m) => !gone.has(m.id));
  }

  replace(m: QueuedMutation): void {
    this.mutations = this.mutations.map((x) => (x.id === m.id ? m : x));
  }

  /** Confirmed rows of `table` with its queued mutations over them, by key. */
  async view(table: string): Promise<Map<string, Row>> {
    const keys = this.keysOf(table);
    // The queue first: a mutation leaves it only once the rows hold its change, so rows read
    // after it can be newer than the overlay but never miss what it covered.
    const overlay = this.mutations.filter((m) => m.table === table);
    const view = new Map(await this.replica.rows(table));
    fold(view, overlay, keys);
    return view;
  }
}
