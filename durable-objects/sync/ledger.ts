/**
 * The exactly-once ledger of pushed mutations, per writer: a writer is a principal's
 * identity (`ownerOf`) plus the client id it chose, so one principal can never read or
 * affect another's records, even with the same client id. Two tables:
 * - `_hearth_sync_mutations`: one row per (owner, client id, mutation id) that was decided,
 *   applied or rejected, with its answer.
 * - `_hearth_sync_clients`: one row per (owner, client id): its newest decided id (the order
 *   rule: ids must increase) and `pruned_through`, the highest id whose record is gone. Ids
 *   at or below it were decided (or can no longer be): a re-push of one is answered
 *   "expired", never applied again.
 * Invariants:
 * - Who writes: an applied mutation's record is inserted inside the write's own transaction
 *   (rest-handler `inTransaction`), so the row change, its WAL entries and this record
 *   commit together or not at all; a rejection is recorded on its own (nothing else wrote),
 *   its two statements in one synchronous step (one implicit transaction).
 * - The primary key makes a second record of the same mutation fail, which rolls the
 *   second write back: a mutation can never apply twice, even if two pushes raced.
 * - Records of a writer are pruned as a prefix of its ids (decisions are serial per writer,
 *   so `at_lsn` rises with the id): every id above `pruned_through` that was decided still
 *   has its record, so "no record, below the newest" means "never decided" (order rule).
 * - Bounded: `pruneLedger` (at WAL trims) drops records whose changes left the WAL, except
 *   each writer's newest, which stays for CLIENT_TTL_MS; a writer silent that long (with
 *   no record left) is forgotten.
 * - Survives freeze in the WAL tail archive (archive.ts, ledger-archive.ts), which may
 *   fold the oldest records into `pruned_through` to bound its size.
 */
import type { ErrorBody } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";

export const LEDGER_TABLE = "_hearth_sync_mutations";
export const CLIENTS_TABLE = "_hearth_sync_clients";

/**
 * The owner of the client ids of a table written before records were scoped by principal:
 * their ids are answered "expired" to every principal (nobody knows whose they were)
 * until the row ages out like any other.
 */
export const LEGACY_OWNER = "*";

const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  owner TEXT NOT NULL,
  client_id TEXT NOT NULL,
  mutation_id INTEGER NOT NULL,
  status TEXT NOT NULL,
  lsn INTEGER,
  error TEXT,
  ts INTEGER NOT NULL,
  at_lsn INTEGER NOT NULL,
  PRIMARY KEY (owner, client_id, mutation_id)
) WITHOUT ROWID`;

const CLIENTS_DDL = `CREATE TABLE IF NOT EXISTS ${CLIENTS_TABLE} (
  owner TEXT NOT NULL,
  client_id TEXT NOT NULL,
  last_id INTEGER NOT NULL,
  pruned_through INTEGER NOT NULL DEFAULT -1,
  ts INTEGER NOT NULL,
  PRIMARY KEY (owner, client_id)
) WITHOUT ROWID`;

/** A writer's newest record is kept at least this long, whatever the WAL retention. */
export const CLIENT_TTL_MS = 30 * 24 * 3600 * 1000;

/** Record columns, in the order of `ledgerRows` and the archive. */
export const LEDGER_COLUMNS = "owner, client_id, mutation_id, status, lsn, error, ts, at_lsn";
/** Client columns, in the order of the archive. */
export const CLIENT_COLUMNS = "owner, client_id, last_id, pruned_through, ts";

export interface Decision {
  status: "applied" | "rejected";
  /** the LSN of the mutation's last change; null when it changed nothing */
  lsn: number | null;
  error: ErrorBody | null;
}

/**
 * Whose ledger a push writes: the identity behind the credential, never the key or token
 * (a refreshed token, a second device or a rotated key is the same writer). An app acting
 * for an account is its own writer, apart from the account, and stays the same across
 * grants of the same app (a grant revoked and given again must not reopen applied ids).
 * Every anon-key client shares one owner: its client ids must be unguessable.
 */
export function ownerOf(p: Principal): string {
  const enc = encodeURIComponent;
  switch (p.role) {
    case "service":
    case "anon":
      return p.role;
    case "authenticated":
      return `user:${enc(p.userId)}`;
    case "app":
      return `app:${enc(p.clientId)}:${enc(p.userId)}`;
  }
}

function tableExists(sql: SqlStorage, name: string): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}

/**
 * Creates both tables. A ledger of the first version (keyed by client id alone) becomes
 * legacy watermarks: each of its client ids answers "expired" up to its newest id, so a
 * mutation it recorded is never applied again, whoever pushes it.
 */
export function ensureLedger(sql: SqlStorage): void {
  if (tableExists(sql, CLIENTS_TABLE)) return;
  if (tableExists(sql, LEDGER_TABLE)) {
    const scoped = sql
      .exec(`SELECT 1 FROM pragma_table_info('${LEDGER_TABLE}') WHERE name = 'owner'`)
      .toArray().length;
    if (!scoped) {
      sql.exec(CLIENTS_DDL);
      sql.exec(
        `INSERT INTO ${CLIENTS_TABLE} (${CLIENT_COLUMNS})
         SELECT ?, client_id, max(mutation_id), max(mutation_id), max(ts) FROM ${LEDGER_TABLE} GROUP BY client_id`,
        LEGACY_OWNER,
      );
      sql.exec(`DROP TABLE ${LEDGER_TABLE}`);
    }
  }
  sql.exec(LEDGER_DDL);
  sql.exec(CLIENTS_DDL);
}

export function ledgerExists(sql: SqlStorage): boolean {
  return tableExists(sql, LEDGER_TABLE) || tableExists(sql, CLIENTS_TABLE);
}

export function lookupDecision(
  sql: SqlStorage,
  owner: string,
  clientId: string,
  id: number,
): Decision | null {
  const r = sql
    .exec(
      `SELECT status, lsn, error FROM ${LEDGER_TABLE} WHERE owner = ? AND client_id = ? AND mutation_id = ?`,
      owner,
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

export interface ClientState {
  /** the newest decided id, or null before the first decision */
  lastId: number | null;
  /** ids at or below this have no record any more (-1: none pruned) */
  prunedThrough: number;
}

/** Where a writer stands (legacy watermarks of the same client id count too). */
export function clientState(sql: SqlStorage, owner: string, clientId: string): ClientState {
  const r = sql
    .exec(
      `SELECT max(CASE WHEN owner = ?1 THEN last_id END) AS last, max(pruned_through) AS pruned
       FROM ${CLIENTS_TABLE} WHERE client_id = ?2 AND owner IN (?1, ?3)`,
      owner,
      clientId,
      LEGACY_OWNER,
    )
    .one();
  return {
    lastId: r.last === null ? null : Number(r.last),
    prunedThrough: r.pruned === null ? -1 : Number(r.pruned),
  };
}

/** Inserts the decision; throws (rolling back the caller's transaction) if it exists. */
export function recordDecision(
  sql: SqlStorage,
  owner: string,
  clientId: string,
  id: number,
  d: Decision,
  atLsn: number,
): void {
  const now = Date.now();
  sql.exec(
    `INSERT INTO ${LEDGER_TABLE} (${LEDGER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    owner,
    clientId,
    id,
    d.status,
    d.lsn,
    d.error === null ? null : JSON.stringify(d.error),
    now,
    atLsn,
  );
  sql.exec(
    `INSERT INTO ${CLIENTS_TABLE} (owner, client_id, last_id, ts) VALUES (?, ?, ?, ?)
     ON CONFLICT (owner, client_id) DO UPDATE SET last_id = max(last_id, excluded.last_id), ts = excluded.ts`,
    owner,
    clientId,
    id,
    now,
  );
}

/**
 * Drops the records of mutations decided at or before `upToLsn` (their changes are no
 * longer in the WAL), keeping each writer's newest unless it is older than CLIENT_TTL_MS,
 * and raises each writer's `pruned_through` to the highest id dropped. A writer older than
 * that with no record left is forgotten.
 */
export function pruneLedger(sql: SqlStorage, upToLsn: number, now: number, ttlMs: number): void {
  if (!ledgerExists(sql)) return;
  ensureLedger(sql);
  const old = now - Math.max(ttlMs, CLIENT_TTL_MS);
  const goes = `m.at_lsn <= ?1 AND (m.ts < ?2 OR m.mutation_id < c.last_id)`;
  sql.exec(
    `UPDATE ${CLIENTS_TABLE} AS c SET pruned_through = d.top FROM (
       SELECT m.owner, m.client_id, max(m.mutation_id) AS top
       FROM ${LEDGER_TABLE} m JOIN ${CLIENTS_TABLE} c USING (owner, client_id)
       WHERE ${goes} GROUP BY m.owner, m.client_id
     ) AS d
     WHERE c.owner = d.owner AND c.client_id = d.client_id AND d.top > c.pruned_through`,
    upToLsn,
    old,
  );
  sql.exec(
    `DELETE FROM ${LEDGER_TABLE} AS m WHERE EXISTS (
       SELECT 1 FROM ${CLIENTS_TABLE} c WHERE c.owner = m.owner AND c.client_id = m.client_id AND ${goes})`,
    upToLsn,
    old,
  );
  sql.exec(
    `DELETE FROM ${CLIENTS_TABLE} AS c WHERE ts < ? AND NOT EXISTS (
       SELECT 1 FROM ${LEDGER_TABLE} m WHERE m.owner = c.owner AND m.client_id = c.client_id)`,
    old,
  );
}
