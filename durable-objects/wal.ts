/**
 * The write-ahead log: `_hearth_wal`, one row (one LSN) per changed row, written by SQLite
 * triggers on every user table inside the same transaction as the change itself, so a
 * committed change always has its WAL entry (cascaded deletes included) and an aborted
 * one never does. Rows are stored in wire form (booleans true/false, json as JSON, bytes
 * as "\x.." hex), ready for realtime, sync and flush.
 */

import { quoteIdent } from "./migrate.ts";
import type { ColumnInfo, TableInfo } from "./schema-index.ts";

export const WAL_DDL = [
  // muted = 1 while rows move between tiers without changing (promotion, flush): the WAL
  // triggers skip them.
  `CREATE TABLE IF NOT EXISTS _hearth_state (id INTEGER PRIMARY KEY CHECK (id = 1), tx INTEGER NOT NULL, ts INTEGER NOT NULL, muted INTEGER NOT NULL DEFAULT 0)`,
  `INSERT OR IGNORE INTO _hearth_state (id, tx, ts) VALUES (1, 0, 0)`,
  // AUTOINCREMENT: an LSN is never reused, even after the WAL is trimmed to nothing.
  // No CHECK on op and no index on tx: only the triggers write here, and each costs ~25%
  // of a bulk insert (measured, docs/gotchas.md).
  `CREATE TABLE IF NOT EXISTS _hearth_wal (
     lsn INTEGER PRIMARY KEY AUTOINCREMENT,
     tx INTEGER NOT NULL,
     ts INTEGER NOT NULL,
     tbl TEXT NOT NULL,
     op TEXT NOT NULL,
     pk TEXT NOT NULL,
     new TEXT,
     old TEXT
   )`,
];

export type WalOp = "INSERT" | "UPDATE" | "DELETE";

export interface WalEntry {
  lsn: number;
  tx: number;
  ts: number;
  table: string;
  op: WalOp;
  pk: unknown[];
  new: Record<string, unknown> | null;
  old: Record<string, unknown> | null;
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function wireExpr(ref: string, col: ColumnInfo): string {
  const v = `${ref}.${quoteIdent(col.name)}`;
  switch (col.type) {
    case "boolean":
      return `CASE ${v} WHEN 1 THEN json('true') WHEN 0 THEN json('false') ELSE NULL END`;
    case "json":
      return `json(${v})`;
    case "bytes":
    case "vector": // float32 bytes; SQL cannot print them as a JSON array
      return `CASE WHEN ${v} IS NULL THEN NULL ELSE '\\x' || lower(hex(${v})) END`;
    default:
      return v;
  }
}

/** json_object over every column, built in chunks to stay under SQLite's argument limit. */
function rowJson(ref: "NEW" | "OLD", table: TableInfo): string {
  const cols = [...table.columns.values()];
  const CHUNK = 40;
  let expr = `json_object(${cols
    .slice(0, CHUNK)
    .map((c) => `${sqlString(c.name)}, ${wireExpr(ref, c)}`)
    .join(", ")})`;
  for (let i = CHUNK; i < cols.length; i += CHUNK) {
    const args = cols
      .slice(i, i + CHUNK)
      .map((c) => `${sqlString(`$."${c.name}"`)}, ${wireExpr(ref, c)}`)
      .join(", ");
    expr = `json_insert(${expr}, ${args})`;
  }
  return expr;
}

function triggerName(op: string, table: string): string {
  return quoteIdent(`_hearth_wal_${op}_${table}`);
}

export function dropWalTriggerStatements(table: string): string[] {
  return ["i", "u", "d"].map((op) => `DROP TRIGGER IF EXISTS ${triggerName(op, table)}`);
}

/** Drops and re-creates the three WAL triggers of a table (after any migration). */
export function walTriggerStatements(table: TableInfo): string[] {
  const t = quoteIdent(table.name);
  const pk = (ref: string) =>
    `json_array(${table.primaryKey.map((c) => `${ref}.${quoteIdent(c)}`).join(", ")})`;
  const when = "WHEN (SELECT muted FROM _hearth_state WHERE id = 1) = 0";
  const head = `INSERT INTO _hearth_wal (tx, ts, tbl, op, pk, new, old) VALUES ((SELECT tx FROM _hearth_state WHERE id = 1), (SELECT ts FROM _hearth_state WHERE id = 1), ${sqlString(table.name)}`;
  return [
    ...dropWalTriggerStatements(table.name),
    `CREATE TRIGGER ${triggerName("i", table.name)} AFTER INSERT ON ${t} ${when} BEGIN ${head}, 'INSERT', ${pk("NEW")}, ${rowJson("NEW", table)}, NULL); END`,
    `CREATE TRIGGER ${triggerName("u", table.name)} AFTER UPDATE ON ${t} ${when} BEGIN ${head}, 'UPDATE', ${pk("NEW")}, ${rowJson("NEW", table)}, ${rowJson("OLD", table)}); END`,
    `CREATE TRIGGER ${triggerName("d", table.name)} AFTER DELETE ON ${t} ${when} BEGIN ${head}, 'DELETE', ${pk("OLD")}, NULL, ${rowJson("OLD", table)}); END`,
  ];
}

/** Version of the trigger text above; ProjectState re-creates older triggers at start-up. */
export const WAL_TRIGGER_VERSION = 2;

/** Adds `_hearth_state.muted` to a DO created before it existed. */
export function upgradeWalState(sql: SqlStorage): void {
  const cols = sql.exec("PRAGMA table_info(_hearth_state)").toArray();
  if (!cols.some((c) => c.name === "muted")) {
    sql.exec("ALTER TABLE _hearth_state ADD COLUMN muted INTEGER NOT NULL DEFAULT 0");
  }
}

export interface WalTx {
  tx: number;
  /** the last LSN before this transaction wrote anything */
  lsnBefore: number;
}

/** Starts a write transaction's WAL group; call inside transactionSync before writing. */
export function beginWalTx(sql: SqlStorage): WalTx {
  const row = sql
    .exec("UPDATE _hearth_state SET tx = tx + 1, ts = ? WHERE id = 1 RETURNING tx", Date.now())
    .one();
  const last = sql.exec("SELECT max(lsn) AS lsn FROM _hearth_wal").one();
  return { tx: Number(row.tx), lsnBefore: Number(last.lsn ?? 0) };
}

/** Rows changed so far by the transaction, per operation (a range scan on the LSN). */
export function walCountsOf(sql: SqlStorage, tx: WalTx): Record<WalOp, number> {
  const counts: Record<WalOp, number> = { INSERT: 0, UPDATE: 0, DELETE: 0 };
  for (const r of sql.exec(
    "SELECT op, count(*) AS n FROM _hearth_wal WHERE lsn > ? GROUP BY op",
    tx.lsnBefore,
  )) {
    counts[r.op as WalOp] = Number(r.n);
  }
  return counts;
}

export function readWal(sql: SqlStorage, afterLsn: number, limit: number): WalEntry[] {
  return sql
    .exec(
      "SELECT lsn, tx, ts, tbl, op, pk, new, old FROM _hearth_wal WHERE lsn > ? ORDER BY lsn LIMIT ?",
      afterLsn,
      limit,
    )
    .toArray()
    .map((r) => ({
      lsn: Number(r.lsn),
      tx: Number(r.tx),
      ts: Number(r.ts),
      table: String(r.tbl),
      op: r.op as WalOp,
      pk: JSON.parse(String(r.pk)),
      new: r.new === null ? null : JSON.parse(String(r.new)),
      old: r.old === null ? null : JSON.parse(String(r.old)),
    }));
}

export function walRange(sql: SqlStorage): { first: number | null; last: number | null; entries: number } {
  const r = sql.exec("SELECT min(lsn) AS first, max(lsn) AS last, count(*) AS n FROM _hearth_wal").one();
  return {
    first: r.first === null ? null : Number(r.first),
    last: r.last === null ? null : Number(r.last),
    entries: Number(r.n),
  };
}
