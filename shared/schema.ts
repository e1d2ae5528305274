/**
 * The project schema JSON (DESIGN.md "Schema JSON"): zod schemas for the wire format and
 * `parseProjectSchema`, which turns untrusted JSON into a validated `ProjectSchema` or a
 * HEARTH_SCHEMA_INVALID error naming every problem by path (table, column, what is wrong).
 */
import { z } from "zod";
import { HearthError } from "./errors.ts";

export const COLUMN_TYPES = [
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
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export const POLICIES = ["public", "members", "owner", "service"] as const;
export type Policy = (typeof POLICIES)[number];

/** Names the server keeps for itself. */
export const OWNER_COLUMN = "owner_id";

// Identifiers: letters, digits, `_`; table names may be namespaced with dots
// (`com.example.todos`). Names starting with `_` or `sqlite_` are reserved.
const IDENT = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}(\.[A-Za-z][A-Za-z0-9_]{0,62}){0,7}$/;

export const ColumnNameSchema = z
  .string()
  .regex(IDENT, "must start with a letter and hold only letters, digits and _ (at most 63 characters)")
  .refine((s) => !s.toLowerCase().startsWith("sqlite_"), "names starting with sqlite_ are reserved");

export const TableNameSchema = z
  .string()
  .max(200, "must be at most 200 characters")
  .regex(
    TABLE_NAME,
    "must be letters, digits and _ starting with a letter, optionally namespaced with dots (com.example.todos)",
  )
  .refine((s) => !s.toLowerCase().startsWith("sqlite_"), "names starting with sqlite_ are reserved");

export const DefaultSchema = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.null(),
  z.record(z.string(), z.unknown()),
  z.array(z.unknown()),
]);

export const ColumnDefSchema = z
  .object({
    type: z.enum(COLUMN_TYPES, { error: `must be one of ${COLUMN_TYPES.join(", ")}` }),
    primaryKey: z.boolean().optional(),
    notNull: z.boolean().optional(),
    unique: z.boolean().optional(),
    /** "random" (uuid, text), "increment" (integer/bigint primary key), "now" (timestamp, date), or a literal */
    default: DefaultSchema.optional(),
    /** "table.column" */
    references: z.string().optional(),
    onDelete: z.enum(["cascade", "set null", "restrict", "no action"]).optional(),
    encrypted: z.boolean().optional(),
    description: z.string().max(1000).optional(),
    /** vector columns only: the number of float32 elements (docs/vectors.md) */
    dimensions: z.number().int().min(1).max(4096, "at most 4096 dimensions").optional(),
  })
  .strict();
export type ColumnDef = z.infer<typeof ColumnDefSchema>;

export const PolicySchema = z
  .object({
    read: z.enum(POLICIES, { error: `must be one of ${POLICIES.join(", ")}` }).optional(),
    write: z.enum(POLICIES, { error: `must be one of ${POLICIES.join(", ")}` }).optional(),
  })
  .strict();

export const TableDefSchema = z
  .object({
    columns: z.record(z.string(), ColumnDefSchema),
    indexes: z.array(z.array(z.string()).min(1, "an index needs at least one column")).optional(),
    policy: PolicySchema.optional(),
    description: z.string().max(1000).optional(),
  })
  .strict();
export type TableDef = z.infer<typeof TableDefSchema>;

/** Explicit destructive steps; without them a schema that drops or retypes is refused. */
export const MigrationStepSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("dropTable"), table: z.string() }).strict(),
  z.object({ op: z.literal("dropColumn"), table: z.string(), column: z.string() }).strict(),
  z
    .object({
      op: z.literal("retypeColumn"),
      table: z.string(),
      column: z.string(),
      type: z.enum(COLUMN_TYPES),
    })
    .strict(),
  z.object({ op: z.literal("dropIndex"), table: z.string(), columns: z.array(z.string()).min(1) }).strict(),
]);
export type MigrationStep = z.infer<typeof MigrationStepSchema>;

export const ProjectSchemaSchema = z
  .object({
    tables: z.record(z.string(), TableDefSchema),
    migrations: z.array(MigrationStepSchema).optional(),
  })
  .strict();
export type ProjectSchema = z.infer<typeof ProjectSchemaSchema>;

export interface SchemaIssue {
  path: string;
  message: string;
}

/** `tables.posts.columns.title.type` → `tables["posts"].columns["title"].type`-like readable path. */
function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join(".") || "(root)";
}

/**
 * Validates untrusted schema JSON: shape (zod), then the cross-field rules zod cannot
 * express (names, primary keys, defaults per type, references, indexes). Throws one
 * HEARTH_SCHEMA_INVALID listing every problem.
 */
export function parseProjectSchema(input: unknown): ProjectSchema {
  const parsed = ProjectSchemaSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: issuePath(i.path), message: i.message }));
    throw schemaInvalid(issues);
  }
  const issues = checkSchemaRules(parsed.data);
  if (issues.length > 0) throw schemaInvalid(issues);
  return parsed.data;
}

function schemaInvalid(issues: SchemaIssue[]): HearthError {
  const first = issues[0]!;
  const message =
    issues.length === 1
      ? `Invalid schema: ${first.path}: ${first.message}`
      : `Invalid schema: ${issues.length} problems, first: ${first.path}: ${first.message}`;
  return new HearthError("HEARTH_SCHEMA_INVALID", message, {
    details: issues.map((i) => `${i.path}: ${i.message}`).join("; "),
    hint: "See docs/api.md#schema for the schema JSON format.",
  });
}

const DEFAULT_KEYWORDS: Record<string, readonly ColumnType[]> = {
  random: ["uuid", "text"],
  increment: ["integer", "bigint"],
  now: ["timestamp", "date"],
};

/** Names sync and realtime use for file metadata (storage.objects, storage.buckets). */
export const RESERVED_TABLE_NAMES: readonly string[] = ["storage.objects", "storage.buckets"];

export function checkSchemaRules(schema: ProjectSchema): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const tableNames = Object.keys(schema.tables);
  if (tableNames.length > 500) issues.push({ path: "tables", message: "at most 500 tables per project" });
  // SQLite compares names case-insensitively: "Posts" and "posts" would be the same table.
  for (const [a, b] of sameIgnoringCase(tableNames)) {
    issues.push({
      path: `tables.${b}`,
      message: `table name clashes with "${a}" (names are case-insensitive)`,
    });
  }
  for (const [tableName, table] of Object.entries(schema.tables)) {
    const base = `tables.${tableName}`;
    const nameCheck = TableNameSchema.safeParse(tableName);
    if (!nameCheck.success)
      issues.push({ path: base, message: `table name ${nameCheck.error.issues[0]?.message}` });
    // Sync follows the files' metadata under these names (durable-objects/storage/changes.ts).
    if (RESERVED_TABLE_NAMES.includes(tableName.toLowerCase()))
      issues.push({ path: base, message: `table name "${tableName}" is reserved for file metadata` });
    const columns = Object.entries(table.columns);
    if (columns.length === 0)
      issues.push({ path: `${base}.columns`, message: "a table needs at least one column" });
    if (columns.length > 200)
      issues.push({ path: `${base}.columns`, message: "at most 200 columns per table" });
    const pk = columns.filter(([, c]) => c.primaryKey);
    const colNames = columns.map(([c]) => c);
    // The server adds owner_id itself for "owner" policies, so it clashes in any spelling.
    for (const [a, b] of sameIgnoringCase(
      colNames.includes(OWNER_COLUMN) ? colNames : [OWNER_COLUMN, ...colNames],
    )) {
      issues.push({
        path: `${base}.columns.${b}`,
        message: `column name clashes with "${a}" (names are case-insensitive)`,
      });
    }
    if (pk.length === 0) {
      issues.push({
        path: `${base}.columns`,
        message: 'a table needs a primary key: mark a column with "primaryKey": true',
      });
    }
    for (const [colName, col] of columns) {
      const cpath = `${base}.columns.${colName}`;
      const colCheck = ColumnNameSchema.safeParse(colName);
      if (!colCheck.success)
        issues.push({ path: cpath, message: `column name ${colCheck.error.issues[0]?.message}` });
      for (const issue of checkVectorColumn(col)) issues.push({ path: cpath, message: issue });
      if (col.primaryKey && (col.type === "json" || col.type === "bytes" || col.type === "float")) {
        issues.push({ path: `${cpath}.primaryKey`, message: `a ${col.type} column cannot be a primary key` });
      }
      if (col.encrypted && col.primaryKey) {
        issues.push({ path: `${cpath}.encrypted`, message: "an encrypted column cannot be a primary key" });
      }
      if (col.encrypted && col.type !== "text" && col.type !== "bytes") {
        issues.push({ path: `${cpath}.encrypted`, message: "only text and bytes columns can be encrypted" });
      }
      if (colName === OWNER_COLUMN && col.type !== "uuid" && col.type !== "text") {
        issues.push({
          path: cpath,
          message: `${OWNER_COLUMN} holds the owner's account id and must be uuid or text`,
        });
      }
      if (col.default !== undefined) {
        const issue = checkDefault(col);
        if (issue) issues.push({ path: `${cpath}.default`, message: issue });
      }
      if (col.default === "increment" && (!col.primaryKey || pk.length !== 1)) {
        issues.push({
          path: `${cpath}.default`,
          message: '"increment" is only allowed on a single-column integer or bigint primary key',
        });
      }
      if (col.references !== undefined) {
        const issue = checkReference(schema, col.references, col.type);
        if (issue) issues.push({ path: `${cpath}.references`, message: issue });
      }
      if (col.onDelete !== undefined && col.references === undefined) {
        issues.push({ path: `${cpath}.onDelete`, message: "onDelete needs references" });
      }
    }
    (table.indexes ?? []).forEach((index, i) => {
      const seen = new Set<string>();
      for (const c of index) {
        if (!(c in table.columns)) {
          issues.push({ path: `${base}.indexes.${i}`, message: `unknown column "${c}" in index` });
        }
        if (seen.has(c))
          issues.push({ path: `${base}.indexes.${i}`, message: `column "${c}" appears twice` });
        seen.add(c);
      }
    });
  }
  return issues;
}

/** Pairs [first, later] of names that differ only by case. */
function sameIgnoringCase(names: readonly string[]): [string, string][] {
  const seen = new Map<string, string>();
  const out: [string, string][] = [];
  for (const n of names) {
    const prev = seen.get(n.toLowerCase());
    if (prev !== undefined) out.push([prev, n]);
    else seen.set(n.toLowerCase(), n);
  }
  return out;
}

function checkDefault(col: ColumnDef): string | null {
  const d = col.default;
  if (typeof d === "string" && d in DEFAULT_KEYWORDS) {
    const allowed = DEFAULT_KEYWORDS[d]!;
    if (!allowed.includes(col.type)) {
      return `"${d}" is not a default for a ${col.type} column (it is for ${allowed.join(", ")})`;
    }
    return null;
  }
  if (d === null) return null;
  switch (col.type) {
    case "text":
    case "uuid":
    case "date":
    case "timestamp":
    case "bytes":
      return typeof d === "string" ? null : `a ${col.type} default must be a string`;
    case "integer":
    case "bigint":
      return typeof d === "number" && Number.isInteger(d) ? null : `a ${col.type} default must be an integer`;
    case "float":
      return typeof d === "number" ? null : "a float default must be a number";
    case "boolean":
      return typeof d === "boolean" ? null : "a boolean default must be true or false";
    case "json":
      return null;
    case "vector":
      return Array.isArray(d) &&
        d.length === col.dimensions &&
        d.every((x) => typeof x === "number" && Number.isFinite(x))
        ? null
        : `a vector default must be an array of ${col.dimensions} finite numbers`;
  }
}

/** `dimensions` belongs to vector columns, which need it; a vector is no key and no ciphertext. */
function checkVectorColumn(col: ColumnDef): string[] {
  if (col.type !== "vector") {
    return col.dimensions === undefined ? [] : ['"dimensions" is only for vector columns'];
  }
  const issues: string[] = [];
  if (col.dimensions === undefined) issues.push('a vector column needs "dimensions" (1 to 4096)');
  if (col.primaryKey || col.unique) issues.push("a vector column cannot be a primary key or unique");
  if (col.references !== undefined) issues.push("a vector column cannot reference another table");
  if (col.encrypted) issues.push("a vector column cannot be encrypted (the server must read it to rank)");
  return issues;
}

function checkReference(schema: ProjectSchema, ref: string, type: ColumnType): string | null {
  const dot = ref.lastIndexOf(".");
  if (dot <= 0) return `must be "table.column", got "${ref}"`;
  const table = ref.slice(0, dot);
  const column = ref.slice(dot + 1);
  const target = schema.tables[table];
  if (!target) return `references unknown table "${table}"`;
  const targetCol = target.columns[column];
  if (!targetCol) return `references unknown column "${column}" of table "${table}"`;
  if (!targetCol.primaryKey && !targetCol.unique) {
    return `"${ref}" must be a primary key or unique column to be referenced`;
  }
  const family = (t: ColumnType) => (t === "bigint" ? "integer" : t);
  if (family(targetCol.type) !== family(type)) {
    return `type ${type} does not match the referenced column's type ${targetCol.type}`;
  }
  return null;
}

/** Splits "table.column" at the last dot (table names may hold dots). */
export function splitReference(ref: string): { table: string; column: string } {
  const dot = ref.lastIndexOf(".");
  return { table: ref.slice(0, dot), column: ref.slice(dot + 1) };
}

export function tablePolicy(table: TableDef): { read: Policy; write: Policy } {
  return { read: table.policy?.read ?? "members", write: table.policy?.write ?? "members" };
}
