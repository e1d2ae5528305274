/**
 * WAL retention: how far back a sync cursor can be served from the WAL. A flush trims the
 * WAL (cold/flush.ts calls `trimWal` in the transaction that drops the flushed rows), and so
 * does the alarm when nothing flushes (`trimIdleWal`: projects whose changes are files); the
 * entries kept are the union of the newest `changes` and those younger than `ms`, always
 * a suffix of the log, so "every LSN above the floor is present" holds and a cursor at or
 * above the floor catches up exactly. A freeze keeps the tail (archive.ts).
 */
import { pruneLedger } from "./ledger.ts";

export interface WalRetention {
  /** the newest entries always kept */
  changes: number;
  /** entries younger than this are kept too (0: no age rule) */
  ms: number;
}

export const DEFAULT_WAL_RETENTION: WalRetention = { changes: 10_000, ms: 0 };

/**
 * The highest LSN that may be missing from the WAL: a cursor below it cannot catch up from
 * the WAL (resync). LSNs have no gaps (AUTOINCREMENT in the writing transaction; rollbacks
 * undo the sequence too), and trims remove a prefix, so the floor is the first entry - 1.
 */
export function walFloor(sql: SqlStorage): number {
  const r = sql.exec("SELECT min(lsn) AS first FROM _hearth_wal").one();
  if (r.first !== null) return Number(r.first) - 1;
  // Empty: everything up to the high-water mark is gone (cold/flush.ts lastLsn, inlined:
  // flush.ts imports this module).
  const seq = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = '_hearth_wal'").toArray()[0];
  return seq ? Number(seq.seq) : 0;
}

/**
 * Removes the entries outside the retention (a prefix: up to the first entry the age rule
 * keeps), and the exactly-once records of mutations whose changes went with them.
 * Returns the new floor's candidate (the last LSN removed, or 0).
 */
export function trimWal(sql: SqlStorage, retention: WalRetention, last: number, now: number): number {
  let cut = last - Math.max(0, retention.changes);
  if (cut <= 0) return 0;
  if (retention.ms > 0) {
    // Transactions commit one after another, so ts rises with the LSN: the first young
    // entry is found from the head without an index on ts.
    const young = sql
      .exec(
        "SELECT lsn FROM _hearth_wal WHERE lsn <= ? AND ts >= ? ORDER BY lsn LIMIT 1",
        cut,
        now - retention.ms,
      )
      .toArray()[0];
    if (young) cut = Number(young.lsn) - 1;
  }
  if (cut <= 0) return 0;
  sql.exec("DELETE FROM _hearth_wal WHERE lsn <= ?", cut);
  pruneLedger(sql, cut, now, retention.ms);
  return cut;
}

/**
 * The alarm's trim, under the same rules as a flush's: a project whose changes never flush
 * (files only: `_storage.*` entries are not hot rows) would otherwise keep every entry. It
 * never cuts past `delivered` (the change feed's position: entries realtime and live sync
 * sockets have not been sent stay), and does nothing while the WAL holds no more than the
 * retained count. Returns the LSN it cut through, or 0.
 */
export function trimIdleWal(
  storage: DurableObjectStorage,
  retention: WalRetention,
  delivered: number,
  now: number,
): number {
  const sql = storage.sql;
  const seq = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = '_hearth_wal'").toArray()[0];
  const last = Math.min(seq ? Number(seq.seq) : 0, delivered);
  if (last - walFloor(sql) <= Math.max(0, retention.changes)) return 0;
  return storage.transactionSync(() => trimWal(sql, retention, last, now));
}
