/**
 * Live queries: each re-runs when a table it reads changes (a local write, a rollback, a
 * frame from the server). Runs of one query never overlap: changes during a run make one
 * more run after it, however many they were.
 */
import type { SyncError } from "./errors.ts";

type Runner = () => Promise<void>;

/** The fourth argument of `live`. */
export interface LiveOptions {
  /**
   * Errors of this query: a table the engine does not follow (`HEARTH_SYNC_UNKNOWN_TABLE`, at
   * once), and runs that fail (`HEARTH_SYNC_CLIENT`, with what was thrown as `cause`: a `where`
   * or the callback, a replica that did not open). Given, they go here and not to the engine's
   * `error` event. The query keeps running: the next change runs it again.
   */
  onError?: (error: SyncError) => void;
}

class LiveQuery {
  active = true;
  private running = false;
  private again = false;

  constructor(
    private readonly run: Runner,
    private readonly failed: (err: unknown) => void,
  ) {}

  async refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        try {
          await this.run();
        } catch (err) {
          this.failed(err);
        }
      } while (this.again && this.active);
    } finally {
      this.running = false;
    }
  }
}

export class LiveQueries {
  private readonly byTable = new Map<string, Set<LiveQuery>>();

  /** Runs `run` now and whenever `table` changes, until the returned function is called. */
  add(table: string, run: Runner, failed: (err: unknown) => void): () => void {
    const query = new LiveQuery(run, failed);
    let set = this.byTable.get(table);
    if (!set) {
      set = new Set();
      this.byTable.set(table, set);
    }
    set.add(query);
    void query.refresh();
    return () => {
      query.active = false;
      set.delete(query);
    };
  }

  notify(tables: Iterable<string>): void {
    for (const table of tables) {
      for (const query of this.byTable.get(table) ?? []) void query.refresh();
    }
  }

  clear(): void {
    for (const set of this.byTable.values()) for (const q of set) q.active = false;
    this.byTable.clear();
  }
}
