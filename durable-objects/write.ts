/**
 * The write path of the hot tier. Every function here runs inside the caller's
 * `transactionSync` after `beginWalTx`, so the rows and their WAL entries (written by
 * triggers) commit together or not at all. Values are cast per column type in JavaScript,
 * then a batch of rows travels as ONE bound JSON parameter read with json_each: the
 * 100-parameter limit of DO SQL never binds, and SQLite does the per-row work.
 */
import { HearthError } from "../shared/errors.ts";
import { MISSING, type RowBatch } from "../shared/rest/bodies.ts";
import { OWNER_COLUMN } from "../shared/schema.ts";
import { quoteIdent } from "./migrate.ts";
import type { Access } from "./policy.ts";
import { firstAlias, type Level, levelOrderSql, levelWhere, type PrimaryKey, pkFilter } from "./read.ts";

export type { PrimaryKey };

import { bytesToHex, type StorageValue, toStorage } from "../shared/values.ts";
import type { SqlExec } from "./cold/overlay.ts";
import type { ColumnInfo, SchemaIndex, TableInfo } from "./schema-index.ts";
import { SqlParams } from "./sql-where.ts";
import { mapSqliteError } from "./sqlite-errors.ts";

const ROWS_PER_STATEMENT = 2000;
/**
 * SQLite in a DO refuses a bound value of about 2 MB (SQLITE_TOOBIG): a batch's JSON
 * parameter is cut at 1 MiB as well as at ROWS_PER_STATEMENT rows.
 */
const BYTES_PER_STATEMENT = 1024 * 1024;

/** Row batches as JSON arrays within both statement limits (a single huge row goes alone). */
function* jsonChunks(values: unknown[][]): Generator<string> {
  let parts: string[] = [];
  let size = 2;
  for (const row of values) {
    const json = JSON.stringify(row);
    if (
      parts.length > 0 &&
      (parts.length >= ROWS_PER_STATEMENT || size + json.length + 1 > BYTES_PER_STATEMENT)
    ) {
      yield `[${parts.join(",")}]`;
      parts = [];
      size = 2;
    }
    parts.push(json);
    size += json.length + 1;
  }
  if (parts.length > 0) yield `[${parts.join(",")}]`;
}

function unknownColumn(table: TableInfo, column: string): HearthError {
  return new HearthError(
    "PGRST204",
    `Could not find the '${column}' column of '${table.name}' in the schema cache`,
    {
      hint: `Columns of ${table.name}: ${[...table.columns.keys()].join(", ")}`,
    },
  );
}

function defaultValue(col: ColumnInfo): StorageValue | typeof MISSING {
  const d = col.def.default;
  if (d === undefined || d === "increment") return MISSING;
  if (d === "random") return crypto.randomUUID();
  if (d === "now")
    return col.type === "date" ? new Date().toISOString().slice(0, 10) : new Date().toISOString();
  return toStorage(col.type, d, col.name);
}

function rowError(err: unknown, rowIndex: number, batchSize: number): unknown {
  if (err instanceof HearthError && batchSize > 1) {
    return new HearthError(err.code, err.message, {
      details: `${err.details ? `${err.details}; ` : ""}in row ${rowIndex + 1}`,
      hint: err.hint,
    });
  }
  return err;
}

/** Types stored as BLOBs: they travel as hex in JSON parameters and are unhex()-ed in SQL. */
function isBlob(type: string): boolean {
  return type === "bytes" || type === "vector";
}

/** A vector must have exactly its column's dimensions (the cast checks only 1..4096). */
function checkDimensions(col: ColumnInfo, v: StorageValue | typeof MISSING): void {
  if (v instanceof ArrayBuffer && v.byteLength !== (col.def.dimensions ?? 0) * 4) {
    throw new HearthError(
      "HEARTH_VECTOR_INVALID",
      `expected ${col.def.dimensions} dimensions, not ${v.byteLength / 4}`,
      {
        details: `column "${col.name}" holds vectors of ${col.def.dimensions} dimensions`,
        hint: "Send a vector as a JSON array of finite numbers, e.g. [0.1, 0.2, 0.3].",
      },
    );
  }
}

/** JSON-safe storage value for json_each: bytes travel as hex and are unhex()-ed in SQL. */
function jsonSafe(v: StorageValue): string | number | null {
  return v instanceof ArrayBuffer ? bytesToHex(v) : v;
}

export interface InsertOptions {
  access: Access;
  missingDefault: boolean;
  upsert?: { target: string[]; resolution: "merge-duplicates" | "ignore-duplicates" };
  /** return the written rows' primary keys (else an empty list) */
  returnKeys: boolean;
}

/** Inserts (or upserts) a batch; returns the primary keys of the rows written, in order, when asked. */
export function insertBatch(
  sql: SqlStorage,
  table: TableInfo,
  batch: RowBatch,
  opts: InsertOptions,
): PrimaryKey[] {
  for (const c of batch.columns) if (!table.columns.has(c)) throw unknownColumn(table, c);
  if (opts.upsert) {
    for (const c of opts.upsert.target) if (!table.columns.has(c)) throw unknownColumn(table, c);
  }
  const own = opts.access.kind === "own" ? opts.access.ownerId : null;
  const given = new Set(batch.columns);
  // Columns the server fills: defaults of absent columns, and the owner of owner-scoped rows.
  const defaulted = [...table.columns.values()].filter(
    (c) => !given.has(c.name) && c.def.default !== undefined && c.def.default !== "increment",
  );
  const columns = [...batch.columns.map((c) => table.columns.get(c)!), ...defaulted];
  const ownerIndex = own !== null ? columns.findIndex((c) => c.name === OWNER_COLUMN) : -1;
  if (own !== null && ownerIndex < 0) columns.push(table.columns.get(OWNER_COLUMN)!);
  const ownerAt = own !== null ? columns.findIndex((c) => c.name === OWNER_COLUMN) : -1;

  const values: (string | number | null)[][] = batch.rows.map((row, r) => {
    try {
      return columns.map((col, j) => {
        let v: StorageValue | typeof MISSING;
        if (j < batch.columns.length) {
          const raw = row[j];
          if (raw === MISSING || raw === undefined) v = opts.missingDefault ? defaultValue(col) : null;
          else v = toStorage(col.type, raw, col.name, batch.text === true);
          if (col.type === "vector") checkDimensions(col, v);
        } else v = defaultValue(col);
        if (j === ownerAt) {
          if (v !== null && v !== MISSING && v !== own) {
            throw new HearthError("42501", `${OWNER_COLUMN} must be the caller's own account id`, {
              status: 403,
            });
          }
          v = own;
        }
        return v === MISSING ? null : jsonSafe(v);
      });
    } catch (err) {
      throw rowError(err, r, batch.rows.length);
    }
  });
  const names = columns.map((c) => quoteIdent(c.name)).join(", ");
  const exprs = columns
    .map((c, j) => (isBlob(c.type) ? `unhex(value ->> ${j})` : `value ->> ${j}`))
    .join(", ");
  const pkCols = table.primaryKey.map((c) => quoteIdent(c)).join(", ");
  let conflict = "";
  if (opts.upsert) {
    const target = opts.upsert.target.map((c) => quoteIdent(c)).join(", ");
    if (opts.upsert.resolution === "ignore-duplicates") conflict = ` ON CONFLICT (${target}) DO NOTHING`;
    else {
      const targetSet = new Set(opts.upsert.target);
      const updates = batch.columns.filter((c) => !targetSet.has(c) && c !== OWNER_COLUMN);
      const sets = (updates.length > 0 ? updates : [opts.upsert.target[0]!])
        .map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`)
        .join(", ");
      const guard =
        own !== null
          ? ` WHERE ${quoteIdent(table.name)}.${quoteIdent(OWNER_COLUMN)} = excluded.${quoteIdent(OWNER_COLUMN)}`
          : "";
      conflict = ` ON CONFLICT (${target}) DO UPDATE SET ${sets}${guard}`;
    }
  }
  // RETURNING only when the caller needs the keys: collecting 100k keys costs ~10% of a bulk insert.
  const returning = opts.returnKeys ? ` RETURNING ${pkCols}` : "";
  const text =
    columns.length === 0
      ? `INSERT INTO ${quoteIdent(table.name)} DEFAULT VALUES${returning}`
      : `INSERT INTO ${quoteIdent(table.name)} (${names}) SELECT ${exprs} FROM json_each(?1) WHERE true${conflict}${returning}`;
  const keys: PrimaryKey[] = [];
  try {
    if (columns.length === 0) {
      for (let i = 0; i < values.length; i++) {
        for (const r of sql.exec(text).raw()) keys.push([...r]);
      }
    } else {
      for (const chunk of jsonChunks(values)) {
        for (const r of sql.exec(text, chunk).raw()) keys.push([...r]);
      }
    }
  } catch (err) {
    throw mapSqliteError(err);
  }
  return keys;
}

/** Primary keys of the rows a write's filters select (with order/limit when given). */
export function selectTargets(sql: SqlExec, schema: SchemaIndex, level: Level, limit?: number): PrimaryKey[] {
  const params = new SqlParams();
  const alias = firstAlias();
  const where = levelWhere(schema, level, alias, params);
  const pk = level.table.primaryKey.map((c) => `${alias}.${quoteIdent(c)}`).join(", ");
  let text = `SELECT ${pk} FROM ${quoteIdent(level.table.name)} AS ${alias} WHERE ${where}`;
  // PostgREST: a limited PATCH/DELETE takes the first rows in the requested order.
  if (limit !== undefined)
    text += ` ORDER BY ${levelOrderSql(schema, level, alias, params)} LIMIT ${params.add(limit)}`;
  return Array.from(sql.exec(text, ...params.values).raw(), (r) => [...r]);
}

/** Applies one patch object to the given rows; returns their (possibly new) keys. */
export function updateRows(
  sql: SqlStorage,
  table: TableInfo,
  keys: PrimaryKey[],
  patch: RowBatch,
  access: Access,
): PrimaryKey[] {
  for (const c of patch.columns) if (!table.columns.has(c)) throw unknownColumn(table, c);
  if (keys.length === 0 || patch.columns.length === 0) return keys;
  const row = patch.rows[0] ?? [];
  const params = new SqlParams();
  const sets = patch.columns.map((c, j) => {
    const col = table.columns.get(c)!;
    const raw = row[j];
    if (c === OWNER_COLUMN && access.kind === "own" && raw !== access.ownerId) {
      throw new HearthError("42501", `${OWNER_COLUMN} cannot be changed`, { status: 403 });
    }
    const v =
      raw === MISSING || raw === undefined ? null : toStorage(col.type, raw, col.name, patch.text === true);
    if (col.type === "vector") checkDimensions(col, v);
    return `${quoteIdent(c)} = ${isBlob(col.type) && v !== null ? `unhex(${params.add(jsonSafe(v))})` : params.add(v)}`;
  });
  const pk = table.primaryKey.map((c) => quoteIdent(c)).join(", ");
  // One statement per chunk of keys keeps the key list a single JSON parameter.
  const out: PrimaryKey[] = [];
  try {
    for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
      const p = new SqlParams();
      p.values.push(...params.values);
      const where = pkFilter(table, keys.slice(i, i + ROWS_PER_STATEMENT), quoteIdent(table.name), p);
      const text = `UPDATE ${quoteIdent(table.name)} SET ${sets.join(", ")} WHERE ${where} RETURNING ${pk}`;
      for (const r of sql.exec(text, ...p.values).raw()) out.push([...r]);
    }
  } catch (err) {
    throw mapSqliteError(err);
  }
  return out;
}

export function deleteRows(sql: SqlStorage, table: TableInfo, keys: PrimaryKey[]): number {
  let n = 0;
  try {
    for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
      const p = new SqlParams();
      const where = pkFilter(table, keys.slice(i, i + ROWS_PER_STATEMENT), quoteIdent(table.name), p);
      // Count RETURNING rows: rowsWritten would include the WAL rows the triggers add.
      n += Array.from(
        sql.exec(`DELETE FROM ${quoteIdent(table.name)} WHERE ${where} RETURNING 1`, ...p.values).raw(),
      ).length;
    }
  } catch (err) {
    throw mapSqliteError(err);
  }
  return n;
}
