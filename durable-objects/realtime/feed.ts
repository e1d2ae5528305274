/**
 * The change feed: after each committed write the ProjectDO pumps the WAL entries past the
 * last delivered LSN to its listeners (realtime channels, sync sockets), in LSN order, in
 * batches. One pump runs at a time; a write during a pump makes it go round again. Before
 * each batch the listeners re-check tokens that are due (async), so no event reaches a
 * subscriber whose access ended more than RECHECK_MS ago.
 */
import { lastLsn } from "../cold/flush.ts";
import type { SchemaIndex } from "../schema-index.ts";
import { FileVisibility } from "../storage/changes.ts";
import { vectorsToWire } from "../vectors/wal-wire.ts";
import { readWal, type WalEntry } from "../wal.ts";

export interface FeedListener {
  /** true when it has subscribers (the pump skips reading the WAL otherwise) */
  readonly active: boolean;
  refresh(now: number): Promise<void>;
  /** `files`: who sees the batch's file entries (bucket policies read once per batch) */
  deliver(entries: WalEntry[], schema: SchemaIndex | null, files: FileVisibility): void;
}

const BATCH = 1000;

export class ChangeFeed {
  private delivered = 0;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly listeners: FeedListener[],
    private readonly schema: () => SchemaIndex | null,
  ) {}

  /** Nothing before `lsn` is delivered (start-up, wake, a new first subscriber). */
  startAt(lsn: number): void {
    this.delivered = lsn;
  }

  get deliveredLsn(): number {
    return this.delivered;
  }

  /** Delivers what was committed since the last pump; resolves when caught up. */
  pump(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        const active = this.listeners.filter((l) => l.active);
        if (active.length === 0) {
          // No one listens: skip to the end of the WAL.
          this.delivered = Math.max(this.delivered, lastLsn(this.sql));
          break;
        }
        await Promise.all(active.map((l) => l.refresh(Date.now())));
        const entries = readWal(this.sql, this.delivered, BATCH);
        if (entries.length === 0) break;
        this.delivered = entries[entries.length - 1]!.lsn;
        const schema = this.schema();
        vectorsToWire(entries, schema);
        const files = new FileVisibility(this.sql);
        for (const l of active) {
          try {
            l.deliver(entries, schema, files);
          } catch (err) {
            console.error("change feed listener failed", err);
          }
        }
      }
    } while (this.again);
  }
}
