/**
 * A project's schema JSON as `GET {url}/schema` answers it (docs/api.md "Schema"), typed for
 * the SDK. The server validates it with zod; the SDK checks only what it relies on.
 */

export type ColumnType =
  | "text"
  | "integer"
  | "bigint"
  | "float"
  | "boolean"
  | "timestamp"
  | "date"
  | "uuid"
  | "json"
  | "bytes"
  | "vector";

export const COLUMN_TYPES: readonly ColumnType[] = [
  "text",
  "integer",
  "bigint",
  "float",
  "boolean",
  "timestamp",
  "date",
  "uuid",
  "json",
  "bytes",
  "vector",
];

export type Policy = "public" | "members" | "owner" | "service";

export interface HearthColumn {
  type: ColumnType;
  /** `vector` columns: how many numbers each value holds */
  dimensions?: number;
  primaryKey?: boolean;
  notNull?: boolean;
  unique?: boolean;
  /** `"random"`, `"increment"`, `"now"`, or a literal (any JSON value, `null` included). */
  default?: unknown;
  /** `"table.column"`, split at the last dot (table names may be namespaced). */
  references?: string;
  onDelete?: "cascade" | "set null" | "restrict" | "no action";
  /** The server stores client-side ciphertext only and refuses filters on it. */
  encrypted?: boolean;
  description?: string;
}

export interface HearthTable {
  columns: Record<string, HearthColumn>;
  indexes?: string[][];
  policy?: { read?: Policy; write?: Policy };
  description?: string;
}

export interface HearthSchema {
  tables: Record<string, HearthTable>;
}

/** `schema` checked just enough to generate from it; a TypeError names the first problem. */
export function checkSchema(schema: unknown): HearthSchema {
  const fail = (path: string, what: string): never => {
    throw new TypeError(`Hearth schema: ${path} ${what}`);
  };
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(schema) || !isObject(schema.tables)) return fail("tables", "must be an object of tables");
  for (const [table, def] of Object.entries(schema.tables)) {
    if (!isObject(def) || !isObject(def.columns))
      fail(`tables.${table}.columns`, "must be an object of columns");
    const columns = (def as { columns: Record<string, unknown> }).columns;
    for (const [name, col] of Object.entries(columns)) {
      const path = `tables.${table}.columns.${name}`;
      if (!isObject(col)) fail(path, "must be an object");
      const type = (col as { type?: unknown }).type;
      if (!COLUMN_TYPES.includes(type as ColumnType)) {
        fail(`${path}.type`, `must be one of ${COLUMN_TYPES.join(" ")} (got ${JSON.stringify(type)})`);
      }
    }
  }
  return schema as unknown as HearthSchema;
}
