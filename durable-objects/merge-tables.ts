/**
 * Consent applies an app's tables to the user's project as an additive migration. Tables the
 * project lacks are added. A table it already has (two apps sharing `com.example.todos`) is
 * merged into the union of both declarations when they are compatible:
 *  - the app's columns the table lacks are added, if they can be added to a table that has
 *    rows (nullable, or notNull with a literal default and no foreign key: migrate-diff.ts);
 *  - the app's indexes the table lacks are added;
 *  - the table's columns and indexes the app does not declare stay (never dropped), and a
 *    column both declare keeps the project's definition.
 * Everything else is a conflict that names the table and the column: a column both declare
 * with another type, nullability, uniqueness, foreign key, default or encryption; another
 * primary key; another policy. Other tables of the project (other apps' data) are carried
 * over untouched, and a conflict changes nothing.
 */
import type { ErrorCode } from "../shared/errors.ts";
import type { ColumnDef, ProjectSchema, TableDef } from "../shared/schema.ts";
import { tablePolicy } from "../shared/schema.ts";
import { renderDefault, sameForeignKey } from "./migrate-ddl.ts";
import { type EffColumn, type EffTable, effectiveTable, isNotNull, isUnique } from "./migrate-tables.ts";

export type MergeResult =
  | { ok: true; applied: string[]; version: number }
  | {
      ok: false;
      code: ErrorCode;
      message: string;
      details: string;
    };

/** JSON with object keys sorted, so two equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/**
 * The merged schema, and one entry per table that cannot be merged:
 * `com.example.todos (column title: type text in the project, integer in the app)`, the
 * table's problems separated by `; `.
 */
export function mergeTables(
  current: ProjectSchema | null,
  tables: Record<string, TableDef>,
): { schema: ProjectSchema; conflicts: string[] } {
  const merged: Record<string, TableDef> = { ...(current?.tables ?? {}) };
  const conflicts: string[] = [];
  for (const [name, def] of Object.entries(tables)) {
    const existing = merged[name];
    if (existing === undefined) {
      merged[name] = def;
      continue;
    }
    const result = mergeTable(name, existing, def);
    if ("problems" in result) conflicts.push(`${name} (${result.problems.join("; ")})`);
    else merged[name] = result.table;
  }
  return { schema: { tables: merged }, conflicts };
}

/** One table both declare: the union of the two, or why there is none. */
export function mergeTable(
  name: string,
  existing: TableDef,
  app: TableDef,
): { table: TableDef } | { problems: string[] } {
  const have = effectiveTable(name, existing);
  const want = effectiveTable(name, app);
  const problems: string[] = [];
  const pa = tablePolicy(existing);
  const pb = tablePolicy(app);
  if (pa.read !== pb.read || pa.write !== pb.write) {
    problems.push(
      `policy: read ${pa.read}, write ${pa.write} in the project, read ${pb.read}, write ${pb.write} in the app`,
    );
  }
  const pkHave = [...have.pk].sort();
  const pkWant = [...want.pk].sort();
  if (pkHave.join("\0") !== pkWant.join("\0")) {
    problems.push(`primary key (${have.pk.join(", ")}) in the project, (${want.pk.join(", ")}) in the app`);
  }
  const columns: Record<string, ColumnDef> = { ...existing.columns };
  for (const b of want.columns.values()) {
    const a = have.columns.get(b.name);
    if (a !== undefined) {
      const diff = columnDifference(have, a, want, b);
      if (diff !== null) problems.push(`column ${b.name}: ${diff}`);
      continue;
    }
    // owner_id comes with the "owner" policy; a policy mismatch is reported above.
    if (b.managed) continue;
    // A new primary key column is reported above as another primary key.
    if (want.pk.includes(b.name)) continue;
    const why = notAddable(b);
    if (why !== null) problems.push(`column ${b.name}: ${why}`);
    else columns[b.name] = b.def;
  }
  if (problems.length > 0) return { problems };
  const indexes = [...(existing.indexes ?? [])];
  const key = (cols: readonly string[]) => cols.join("\0");
  const known = new Set(indexes.map(key));
  for (const cols of app.indexes ?? []) {
    if (known.has(key(cols))) continue;
    known.add(key(cols));
    indexes.push(cols);
  }
  const table: TableDef = { ...existing, columns };
  if (indexes.length > 0) table.indexes = indexes;
  return { table };
}

const TEXTISH = new Set(["text", "uuid"]);

/** How a column both declare differs in a way that matters to the rows, or null. */
function columnDifference(have: EffTable, a: EffColumn, want: EffTable, b: EffColumn): string | null {
  // The server's owner_id is text; a declared one may be text or uuid (as migrate-diff.ts).
  if (a.managed || b.managed) {
    return a.def.type === b.def.type || (TEXTISH.has(a.def.type) && TEXTISH.has(b.def.type))
      ? null
      : `type ${a.def.type} in the project, ${b.def.type} in the app`;
  }
  const out: string[] = [];
  const both = (what: string, x: string, y: string) =>
    out.push(`${what}${x} in the project, ${y} in the app`);
  if (a.def.type !== b.def.type) both("type ", a.def.type, b.def.type);
  const nn = (t: EffTable, c: EffColumn) => (isNotNull(t, c) ? "notNull" : "nullable");
  if (nn(have, a) !== nn(want, b)) both("", nn(have, a), nn(want, b));
  const uq = (t: EffTable, c: EffColumn) => (isUnique(t, c) ? "unique" : "not unique");
  if (uq(have, a) !== uq(want, b)) both("", uq(have, a), uq(want, b));
  if (!sameForeignKey(a.def, b.def)) both("", foreignKey(a.def), foreignKey(b.def));
  if (canonical(a.def.default) !== canonical(b.def.default)) {
    both("default ", showDefault(a.def), showDefault(b.def));
  }
  if ((a.def.encrypted ?? false) !== (b.def.encrypted ?? false)) {
    both(
      "",
      a.def.encrypted ? "encrypted" : "not encrypted",
      b.def.encrypted ? "encrypted" : "not encrypted",
    );
  }
  return out.length > 0 ? out.join(", ") : null;
}

function foreignKey(def: ColumnDef): string {
  if (def.references === undefined) return "no foreign key";
  return `references ${def.references}${def.onDelete ? ` on delete ${def.onDelete}` : ""}`;
}

function showDefault(def: ColumnDef): string {
  return def.default === undefined ? "none" : JSON.stringify(def.default);
}

/**
 * Why a column the table lacks cannot be added to it with rows already stored, or null.
 * The same rules as a new column in planMigration (migrate-diff.ts `diffTable`), which
 * checks the merged schema again when it is applied.
 */
function notAddable(b: EffColumn): string | null {
  if (!b.def.notNull) return null;
  const r = renderDefault(b);
  if ("problem" in r) {
    return `new in the app and notNull, but ${r.problem}: the rows already stored would violate it`;
  }
  if (b.def.references !== undefined) {
    return `new in the app, notNull and references ${b.def.references}: SQLite cannot add such a column to a table`;
  }
  return null;
}
