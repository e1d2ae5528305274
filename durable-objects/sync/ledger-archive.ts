/**
 * The exactly-once ledger (ledger.ts) as the freeze archive (archive.ts) reads and restores
 * it. Reading is bounded: the newest records that fit a byte budget are kept, in keyset
 * pages; the older ones are folded into their writer's `pruned_through`, exactly as a trim
 * would prune them (a prefix of each writer's ids), so their ids answer "expired" after the
 * wake, never "not applied".
 */
import {
  CLIENT_COLUMNS,
  CLIENTS_TABLE,
  ensureLedger,
  LEDGER_COLUMNS,
  LEDGER_TABLE,
  ledgerExists,
} from "./ledger.ts";

/** Puts archived rows back (wake): `json` is one JSON array of rows in LEDGER_COLUMNS order. */
export function insertLedgerRows(sql: SqlStorage, json: string): void {
  ensureLedger(sql);
  sql.exec(
    `INSERT OR IGNORE INTO ${LEDGER_TABLE} (${LEDGER_COLUMNS})
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
     FROM json_each(?)`,
    json,
  );
}

/** Puts archived writers back (wake): `json` is one JSON array of rows in CLIENT_COLUMNS order. */
export function insertClientRows(sql: SqlStorage, json: string): void {
  ensureLedger(sql);
  sql.exec(
    `INSERT INTO ${CLIENTS_TABLE} (${CLIENT_COLUMNS})
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?) WHERE true
     ON CONFLICT (owner, client_id) DO UPDATE SET
       last_id = max(last_id, excluded.last_id),
       pruned_through = max(pruned_through, excluded.pruned_through),
       ts = max(ts, excluded.ts)`,
    json,
  );
}

/** Records folded into their writer's `pruned_through` by an archive: (at_lsn, id) at or before this. */
export interface Fold {
  atLsn: number;
  id: number;
}

/** SQL for "record `m` is folded": ?1 and ?2 bind the fold point (null: nothing is). */
const FOLDED = "(?1 IS NOT NULL AND (m.at_lsn < ?1 OR (m.at_lsn = ?1 AND m.mutation_id <= ?2)))";

const foldParams = (f: Fold | null): SqlStorageValue[] => [f?.atLsn ?? null, f?.id ?? null];

/**
 * The newest decisions whose archived rows (`size` of each) fit in `bytes`: the fold point
 * below which the rest go (null: all fit). Decisions are taken newest first, so each
 * writer keeps a suffix of its ids, as `pruneLedger` would leave it.
 */
export function ledgerFoldPoint(
  sql: SqlStorage,
  bytes: number,
  size: (row: unknown[]) => number,
): Fold | null {
  if (!ledgerExists(sql)) return null;
  ensureLedger(sql);
  let total = 0;
  for (const row of sql
    .exec(`SELECT ${LEDGER_COLUMNS} FROM ${LEDGER_TABLE} ORDER BY at_lsn DESC, mutation_id DESC`)
    .raw()) {
    total += size(row);
    if (total > bytes) return { atLsn: Number(row[7]), id: Number(row[2]) };
  }
  return null;
}

/** Records past the fold point, in key order after `after` (keyset pages for the archive). */
export function ledgerPage(
  sql: SqlStorage,
  fold: Fold | null,
  after: unknown[] | null,
  limit: number,
): unknown[][] {
  if (!ledgerExists(sql)) return [];
  ensureLedger(sql);
  const cols = LEDGER_COLUMNS.split(", ")
    .map((c) => `m.${c}`)
    .join(", ");
  const where = after ? "(m.owner, m.client_id, m.mutation_id) > (?3, ?4, ?5)" : "true";
  return [
    ...sql
      .exec(
        `SELECT ${cols} FROM ${LEDGER_TABLE} m WHERE NOT ${FOLDED} AND ${where}
         ORDER BY m.owner, m.client_id, m.mutation_id LIMIT ${limit}`,
        ...foldParams(fold),
        ...((after ?? []) as SqlStorageValue[]),
      )
      .raw(),
  ];
}

/** Writers in key order after `after`, `pruned_through` raised over the folded records. */
export function clientPage(
  sql: SqlStorage,
  fold: Fold | null,
  after: unknown[] | null,
  limit: number,
): unknown[][] {
  if (!ledgerExists(sql)) return [];
  ensureLedger(sql);
  const where = after ? "(c.owner, c.client_id) > (?3, ?4)" : "true";
  return [
    ...sql
      .exec(
        `SELECT c.owner, c.client_id, c.last_id, max(c.pruned_through, coalesce((
           SELECT max(m.mutation_id) FROM ${LEDGER_TABLE} m
           WHERE m.owner = c.owner AND m.client_id = c.client_id AND ${FOLDED}), -1)), c.ts
         FROM ${CLIENTS_TABLE} c WHERE ${where} ORDER BY c.owner, c.client_id LIMIT ${limit}`,
        ...foldParams(fold),
        ...((after ?? []) as SqlStorageValue[]),
      )
      .raw(),
  ];
}
