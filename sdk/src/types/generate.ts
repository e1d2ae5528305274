/**
 * Schema JSON → a TypeScript `Database` type in the shape postgrest-js (and supabase-js)
 * expect: `public.Tables.<table>.{Row, Insert, Update, Relationships}`. Deterministic: tables
 * sorted by name, columns in declared order, so a regenerated file diffs only by what changed.
 */
import {
  type ColumnType,
  checkSchema,
  type HearthColumn,
  type HearthSchema,
  type HearthTable,
} from "./schema.ts";

export interface TypesOptions {
  /**
   * The type of `bigint` columns: `"number | string"` (default: the server answers numbers,
   * as it refuses integers beyond ±2^53, and writes accept digit strings), or `"number"`.
   */
  bigint?: "number | string" | "number";
}

const BASE: Record<ColumnType, string> = {
  text: "string",
  uuid: "string",
  timestamp: "string",
  date: "string",
  integer: "number",
  float: "number",
  bigint: "number | string",
  boolean: "boolean",
  json: "Json",
  bytes: "string",
  vector: "number[]",
};

/** What the server adds to a table with an `owner` policy (docs/api.md "owner_id"). */
const OWNER_ID: HearthColumn = {
  type: "text",
  description: "The owning account's id: set by the server on insert (owner policy).",
};

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function key(name: string): string {
  return IDENT.test(name) ? name : JSON.stringify(name);
}

function nullable(col: HearthColumn): boolean {
  return !col.notNull && !col.primaryKey;
}

function tsType(col: HearthColumn, opts: TypesOptions): string {
  const base = col.type === "bigint" ? (opts.bigint ?? BASE.bigint) : BASE[col.type];
  return nullable(col) ? `${base} | null` : base;
}

function columnsOf(table: HearthTable): [string, HearthColumn][] {
  const columns = Object.entries(table.columns);
  const owned = table.policy?.read === "owner" || table.policy?.write === "owner";
  if (owned && !columns.some(([name]) => name.toLowerCase() === "owner_id"))
    columns.push(["owner_id", OWNER_ID]);
  return columns;
}

/** Whether an insert may leave `name` out: it has a default, may be null, or is a rowid key. */
function optionalOnInsert(table: HearthTable, name: string, col: HearthColumn): boolean {
  if ("default" in col || nullable(col) || col === OWNER_ID) return true;
  const keys = Object.entries(table.columns).filter(([, c]) => c.primaryKey);
  // A single integer/bigint primary key is SQLite's rowid: left out, it gets an id.
  return keys.length === 1 && keys[0]![0] === name && (col.type === "integer" || col.type === "bigint");
}

function doc(col: HearthColumn, indent: string): string[] {
  const notes: string[] = [];
  if (col.description) notes.push(...col.description.split("\n"));
  if (col.type === "bytes")
    notes.push("`bytes`: `\\x` then hex digits (`\\xdeadbeef`), as PostgreSQL prints bytea.");
  if (col.type === "vector")
    notes.push(
      `\`vector\`${col.dimensions ? ` of ${col.dimensions} numbers` : ""}: a JSON array of float32 values; search it with \`.nearest()\`.`,
    );
  if (col.type === "bigint")
    notes.push("`bigint`: a number on reads (safe integers); a digit string is accepted on writes.");
  if (col.encrypted)
    notes.push("Encrypted: the server stores ciphertext only and refuses filters on this column.");
  if (notes.length === 0) return [];
  const lines = notes.map((n) => n.replaceAll("*/", "*\\/"));
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`.trimEnd()), `${indent} */`];
}

function relationships(schema: HearthSchema, name: string, table: HearthTable, indent: string): string[] {
  const out: string[] = [];
  for (const [column, col] of Object.entries(table.columns)) {
    if (!col.references) continue;
    const dot = col.references.lastIndexOf(".");
    const target = col.references.slice(0, dot);
    const targetColumn = col.references.slice(dot + 1);
    const keys = Object.values(table.columns).filter((c) => c.primaryKey);
    const oneToOne = col.unique === true || (col.primaryKey === true && keys.length === 1);
    if (!(target in schema.tables)) continue; // a dangling reference the server would refuse
    out.push(
      `${indent}  {`,
      `${indent}    foreignKeyName: ${JSON.stringify(`${name}_${column}_fkey`)};`,
      `${indent}    columns: [${JSON.stringify(column)}];`,
      `${indent}    isOneToOne: ${oneToOne};`,
      `${indent}    referencedRelation: ${JSON.stringify(target)};`,
      `${indent}    referencedColumns: [${JSON.stringify(targetColumn)}];`,
      `${indent}  },`,
    );
  }
  return out.length === 0
    ? [`${indent}Relationships: [];`]
    : [`${indent}Relationships: [`, ...out, `${indent}];`];
}

function tableType(schema: HearthSchema, name: string, table: HearthTable, opts: TypesOptions): string[] {
  const i = "      ";
  const columns = columnsOf(table);
  const block = (label: string, line: (name: string, col: HearthColumn) => string, docs: boolean) => [
    `${i}  ${label}: {`,
    ...columns.flatMap(([n, c]) => [...(docs ? doc(c, `${i}    `) : []), `${i}    ${line(n, c)}`]),
    `${i}  };`,
  ];
  return [
    ...(table.description ? doc({ type: "text", description: table.description }, i) : []),
    `${i}${key(name)}: {`,
    ...block("Row", (n, c) => `${key(n)}: ${tsType(c, opts)};`, true),
    ...block(
      "Insert",
      (n, c) => `${key(n)}${optionalOnInsert(table, n, c) ? "?" : ""}: ${tsType(c, opts)};`,
      false,
    ),
    ...block("Update", (n, c) => `${key(n)}?: ${tsType(c, opts)};`, false),
    ...relationships(schema, name, table, `${i}  `),
    `${i}};`,
  ];
}

/**
 * The TypeScript source of a `Database` type for a project's schema JSON (`GET {url}/schema`):
 * `Row`, `Insert` and `Update` per table, `Relationships` from `references`, and the helpers
 * `Tables<"t">`, `TablesInsert<"t">`, `TablesUpdate<"t">`. Pass it to `createClient<Database>`.
 *
 * @example
 * ```ts
 * import { writeFile } from "node:fs/promises";
 * import { schemaToTypeScript } from "@hearth/sdk";
 *
 * const schema = await (await hearth.fetch("/schema")).json();
 * await writeFile("src/database.ts", schemaToTypeScript(schema));
 * ```
 */
export function schemaToTypeScript(schemaJson: unknown, opts: TypesOptions = {}): string {
  const schema = checkSchema(schemaJson);
  const names = Object.keys(schema.tables).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = [
    "/**",
    " * Types of a Hearth project's tables, generated by `hearth types` from its schema JSON.",
    " * Do not edit: generate them again after a schema change.",
    " */",
    "",
    "export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];",
    "",
    "export type Database = {",
    "  public: {",
    names.length === 0 ? "    Tables: { [_ in never]: never };" : "    Tables: {",
    ...names.flatMap((n) => tableType(schema, n, schema.tables[n]!, opts)),
    ...(names.length === 0 ? [] : ["    };"]),
    "    Views: { [_ in never]: never };",
    "    Functions: { [_ in never]: never };",
    "    Enums: { [_ in never]: never };",
    "    CompositeTypes: { [_ in never]: never };",
    "  };",
    "};",
    "",
    'type PublicTables = Database["public"]["Tables"];',
    "/** A row of `T` as reads return it. */",
    'export type Tables<T extends keyof PublicTables> = PublicTables[T]["Row"];',
    "/** A row of `T` as an insert may send it. */",
    'export type TablesInsert<T extends keyof PublicTables> = PublicTables[T]["Insert"];',
    "/** The columns of `T` an update may set. */",
    'export type TablesUpdate<T extends keyof PublicTables> = PublicTables[T]["Update"];',
    "",
  ];
  return lines.join("\n");
}
