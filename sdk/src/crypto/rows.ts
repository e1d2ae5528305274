/**
 * Rows in and out of encryption, driven by the project's schema JSON: exactly the columns
 * marked `encrypted: true` are encrypted (null stays null, so whether a cell is empty is
 * visible to the server), bound to the row's primary key. And the guard the query builder
 * calls before it sends a filter or order to the server.
 */
import { type CipherContext, decryptValue, encryptValue } from "./cipher.ts";
import { HearthCryptoError } from "./errors.ts";

/**
 * The part of a project's schema JSON (DESIGN.md "Schema JSON") that encryption reads; the
 * whole schema (indexes, policies, defaults...) fits it as it is.
 */
export interface EncryptionSchema {
  tables: Record<string, { columns: Record<string, EncryptionColumn>; [other: string]: unknown }>;
  [other: string]: unknown;
}

export interface EncryptionColumn {
  type: string;
  encrypted?: boolean | undefined;
  primaryKey?: boolean | undefined;
  [other: string]: unknown;
}

export type Row = Record<string, unknown>;

export interface RowCryptoOptions {
  /**
   * The row's primary key when `row` does not hold it, e.g. a partial update whose filter
   * names the row: `{ id }`.
   */
  primaryKey?: Row;
}

function tableOf(schema: EncryptionSchema, table: string): Record<string, EncryptionColumn> {
  const columns = schema?.tables?.[table]?.columns;
  if (!columns || !Object.hasOwn(schema.tables, table)) {
    throw new HearthCryptoError("HEARTH_UNKNOWN_TABLE", `the schema has no table ${table}`, { table });
  }
  return columns;
}

/**
 * The encrypted columns of a table, in schema order.
 *
 * @example
 * encryptedColumns(schema, "com.example.todos"); // ["notes"]
 */
export function encryptedColumns(schema: EncryptionSchema, table: string): string[] {
  return Object.entries(tableOf(schema, table)).flatMap(([name, c]) => (c.encrypted ? [name] : []));
}

/** The column a filter or order names: `notes->>title` and `notes::text` are on `notes`. */
function baseColumn(name: string): string {
  return name.split(/->|::/, 1)[0]!.trim();
}

/**
 * Throws HEARTH_ENCRYPTED_FILTER when one of `columnNames` (filters or order keys of a query
 * on `table`) is encrypted end-to-end. Unknown tables and columns pass: the server answers
 * those. Filters on an embedded table are checked with that table's name.
 *
 * @example
 * assertNoEncryptedFilter(schema, "com.example.todos", ["done", "notes"]);
 * // HearthCryptoError HEARTH_ENCRYPTED_FILTER: column notes of com.example.todos is encrypted end-to-end: …
 */
export function assertNoEncryptedFilter(
  schema: EncryptionSchema,
  table: string,
  columnNames: Iterable<string>,
): void {
  const columns = Object.hasOwn(schema?.tables ?? {}, table) ? schema.tables[table]?.columns : undefined;
  if (!columns) return;
  for (const name of columnNames) {
    const column = baseColumn(name);
    if (Object.hasOwn(columns, column) && columns[column]?.encrypted) {
      throw new HearthCryptoError(
        "HEARTH_ENCRYPTED_FILTER",
        `column ${column} of ${table} is encrypted end-to-end: the server only holds ciphertext, so it cannot filter or order on it; filter on the client after reading`,
        { table, column },
      );
    }
  }
}

const INTEGER = /^[+-]?\d+$/;
const TRUE = new Set(["true", "t", "yes", "y", "on", "1"]);
const FALSE = new Set(["false", "f", "no", "n", "off", "0"]);

/** A timestamp as the server stores it (ISO-8601 UTC; no zone means UTC, as in shared/values.ts). */
function normalizeTimestamp(v: unknown): unknown {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? v : v.toISOString();
  if (typeof v !== "string") return v;
  let text = v.trim();
  if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}/.test(text)) {
    text = text.replace(" ", "T");
    if (!/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(text)) text += "Z";
    text = text.replace(/([+-]\d{2})$/, "$1:00");
  } else if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    text += "T00:00:00Z";
  }
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? v : new Date(ms).toISOString();
}

/**
 * A primary key value in the one spelling the server gives back for it, so that a key written
 * as `"5"` and read back as `5`, or a uuid written in upper case, binds the same.
 */
function normalizeKeyValue(type: string, v: unknown): unknown {
  switch (type) {
    case "integer":
    case "bigint":
      if (typeof v === "number" && Number.isInteger(v)) return String(v);
      if (typeof v === "bigint") return v.toString();
      if (typeof v === "string" && INTEGER.test(v.trim())) return BigInt(v.trim()).toString();
      return v;
    case "uuid":
      return typeof v === "string" ? v.trim().toLowerCase() : v;
    case "timestamp":
      return normalizeTimestamp(v);
    case "date": {
      if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v.trim())) return v.trim();
      const instant = normalizeTimestamp(v);
      return typeof instant === "string" ? instant.slice(0, 10) : v;
    }
    case "boolean":
      if (typeof v === "string") {
        const s = v.trim().toLowerCase();
        return TRUE.has(s) ? true : FALSE.has(s) ? false : v;
      }
      return v;
    default:
      return v;
  }
}

/** The normalised primary key of a row, or HEARTH_MISSING_PRIMARY_KEY. */
function primaryKeyOf(
  columns: Record<string, EncryptionColumn>,
  table: string,
  row: Row,
  given: Row | undefined,
  encrypted: string,
): Row {
  const keyColumns = Object.entries(columns).filter(([, c]) => c.primaryKey);
  if (keyColumns.length === 0) {
    throw new HearthCryptoError(
      "HEARTH_MISSING_PRIMARY_KEY",
      `table ${table} declares no primary key, and encrypted values are bound to their row's key`,
      { table, column: encrypted },
    );
  }
  const key: Row = {};
  for (const [name, c] of keyColumns) {
    const v = given && Object.hasOwn(given, name) ? given[name] : row[name];
    if (v === undefined || v === null) {
      throw new HearthCryptoError(
        "HEARTH_MISSING_PRIMARY_KEY",
        `column ${encrypted} of ${table} is encrypted and bound to the row's primary key, but the row has no ${name}: ` +
          "include the key columns (make ids on the client when inserting; select them when reading), or pass { primaryKey }",
        { table, column: encrypted },
      );
    }
    key[name] = normalizeKeyValue(c.type, v);
  }
  return key;
}

/** The encrypted columns present with a non-null value in `row`. */
function cellsToTransform(columns: Record<string, EncryptionColumn>, row: Row): [string, EncryptionColumn][] {
  return Object.entries(columns).filter(
    ([name, c]) => c.encrypted && Object.hasOwn(row, name) && row[name] !== null && row[name] !== undefined,
  );
}

async function transformRow(
  schema: EncryptionSchema,
  table: string,
  row: Row,
  options: RowCryptoOptions,
  transform: (column: EncryptionColumn, value: unknown, context: CipherContext) => Promise<unknown>,
): Promise<Row> {
  const columns = tableOf(schema, table);
  const cells = cellsToTransform(columns, row);
  if (cells.length === 0) return { ...row };
  const primaryKey = primaryKeyOf(columns, table, row, options.primaryKey, cells[0]![0]);
  const out: Row = { ...row };
  await Promise.all(
    cells.map(async ([name, c]) => {
      out[name] = await transform(c, row[name], { table, column: name, primaryKey });
    }),
  );
  return out;
}

/**
 * A copy of `row` with its encrypted columns encrypted (a `bytes` column gets the `\x…`
 * form, any other the `hearth:e1:…` text); other columns, null and absent cells unchanged.
 * The row (or `options.primaryKey`) must hold the full primary key.
 *
 * @example
 * const id = crypto.randomUUID();
 * await db.from("com.example.todos").insert(await encryptRow(key, schema, "com.example.todos", { id, title, notes }));
 */
export async function encryptRow(
  key: CryptoKey,
  schema: EncryptionSchema,
  table: string,
  row: Row,
  options: RowCryptoOptions = {},
): Promise<Row> {
  return transformRow(schema, table, row, options, (c, value, context) =>
    encryptValue(key, value, context, { format: c.type === "bytes" ? "bytes" : "text" }),
  );
}

/**
 * A copy of `row` with its encrypted columns decrypted; other columns unchanged. Throws
 * HearthCryptoError (with `table` and `column` set) when a cell does not decrypt.
 * Embedded rows of other tables are not touched: decrypt them with their own table's name.
 *
 * @example
 * const rows = await Promise.all(data.map((r) => decryptRow(key, schema, "com.example.todos", r)));
 */
export async function decryptRow(
  key: CryptoKey,
  schema: EncryptionSchema,
  table: string,
  row: Row,
  options: RowCryptoOptions = {},
): Promise<Row> {
  return transformRow(schema, table, row, options, (_c, value, context) => {
    if (typeof value !== "string" && !(value instanceof Uint8Array)) {
      throw new HearthCryptoError(
        "HEARTH_BAD_CIPHERTEXT",
        `column ${context.column} of ${table} is encrypted but holds a ${typeof value}, not a ciphertext`,
        { table, column: context.column },
      );
    }
    return decryptValue(key, value, context);
  });
}
