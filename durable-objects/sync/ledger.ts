/**
 * The exactly-once ledger of pushed mutations: `_hearth_sync_mutations`, one row per
 * (client id, mutation id) that was decided, applied or rejected. Invariants:
 * - Who writes: an applied mutation's row is inserted inside the write's own transaction
 *   (rest-handler `inTransaction`), so the row change, its WAL entries and this record
 *   commit together or not at all; a rejection is recorded on its own (nothing else wrote).
 * - The primary key makes a second record of the same mutation fail, which rolls the
 *   second write back: a mutation can never apply twice, even if two pushes raced.
 * - Bounded: `pruneLedger` (at WAL trims) drops records whose changes left the WAL, except
 *   each client's newest, which keeps the order guard (ids must increase) for CLIENT_TTL_MS.
 * - Survives freeze in the WAL tail archive (archive.ts).
 */
import type { ErrorBody } from "../../shared/errors.ts";

export const LEDGER_TABLE = "_hearth_sync_mutations";

const DDL = `CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  client_id TEXT NOT NULL,
  mutation_id INTEGER NOT NULL,
  status TEXT NOT NULL,
  lsn INTEGER,
  error TEXT,
  ts INTEGER NOT NULL,
  at_lsn INTEGER NOT NULL,
  PRIMARY KEY (client_id, mutation_id)
) WITHOUT ROWID`;

/** A client's newest record is kept at least this long, whatever the WAL retention. */
export const CLIENT_TTL_MS = 30 * 24 * 3600 * 1000;

export interface Decision {
  status: "applied" | "rejected";
  /** the LSN of the mutation's last change; null when it changed nothing */
  lsn: number | null;
  error: ErrorBody | null;
}

export function ensureLedger(sql: SqlStorage): void {
  sql.exec(DDL);
}

export function ledgerExists(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE name = ?", LEDGER_TABLE).toArray().length > 0;
}

export function lookupDecision(sql: SqlStorage, clientId: string, id: number): Decision | null {
  const r = sql
    .exec(
      `SELECT status, lsn, error FROM ${LEDGER_TABLE} WHERE client_id = ? AND mutation_id = ?`,
      clientId,
      id,
    )
    .toArray()[0];
  if (!r) return null;
  return {
    status: r.status === "applied" ? "applied" : "rejected",
    lsn: r.lsn === null ? null : Number(r.lsn),
    error: r.error === null ? null : (JSON.parse(String(r.error)) as ErrorBody),
  };
}

/** The client's newest decided mutation id, or null. */
export function lastMutationId(sql: SqlStorage, clientId: string): number | null {
  const r = sql
    .exec(`SELECT max(mutation_id) AS id FROM ${LEDGER_TABLE} WHERE client_id = ?`, clientId)
    .one();
  return r.id === null ? null : Number(r.id);
}

/** Inserts the decision; throws (rolling back the caller's transaction) if it exists. */
export function recordDecision(
  sql: SqlStorage,
  clientId: string,
  id: number,
  d: Decision,
  atLsn: number,
): void {
  sql.exec(
    `INSERT INTO ${LEDGER_TABLE} (client_id, mutation_id, status, lsn, error, ts, at_lsn) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    clientId,
    id,
    d.status,
    d.lsn,
    d.error === null ? null : JSON.stringify(d.error),
    Date.now(),
    atLsn,
  );
}

/**
 * Drops the records of mutations decided at or before `upToLsn` (their changes are no
 * longer in the WAL), keeping each client's newest unless it is older than CLIENT_TTL_MS.
 */
export function pruneLedger(sql: SqlStorage, upToLsn: number, now: number, ttlMs: number): void {
  if (!ledgerExists(sql)) return;
  sql.exec(
    `DELETE FROM ${LEDGER_TABLE} WHERE at_lsn <= ?1 AND (ts < ?2 OR mutation_id < (SELECT max(m.mutation_id) FROM ${LEDGER_TABLE} m WHERE m.client_id = ${LEDGER_TABLE}.client_id))`,
    upToLsn,
    now - Math.max(ttlMs, CLIENT_TTL_MS),
  );
}

/** Every record as a row of plain values (the freeze archive). */
export function ledgerRows(sql: SqlStorage): unknown[][] {
  if (!ledgerExists(sql)) return [];
  return [
    ...sql.exec(`SELECT client_id, mutation_id, status, lsn, error, ts, at_lsn FROM ${LEDGER_TABLE}`).raw(),
  ];
}

/** Puts archived records back (wake); `rows` is one JSON array of `ledgerRows` rows. */
export function insertLedgerRows(sql: SqlStorage, json: string): void {
  ensureLedger(sql);
  sql.exec(
    `INSERT OR IGNORE INTO ${LEDGER_TABLE} (client_id, mutation_id, status, lsn, error, ts, at_lsn)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 FROM json_each(?)`,
    json,
  );
}
