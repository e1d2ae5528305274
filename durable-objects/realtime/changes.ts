/**
 * What one subscriber may see of one WAL entry. The table's read policy (and an app's
 * scopes) decide, row by row, as REST reads do: a row the subscriber could not read never
 * reaches it, as a new row, an old row or a delete. An update that moves a row into or out
 * of what it may read arrives as an INSERT or a DELETE.
 */
import { HearthError } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";
import { type ColumnLookup, matches, type WireRow } from "../../shared/rest/evaluate.ts";
import { parseQuery } from "../../shared/rest/parse-query.ts";
import type { Condition } from "../../shared/rest/plan.ts";
import { type ColumnType, OWNER_COLUMN } from "../../shared/schema.ts";
import { readAccess } from "../policy.ts";
import type { TableInfo } from "../schema-index.ts";
import type { WalEntry, WalOp } from "../wal.ts";

export interface VisibleChange {
  type: WalOp;
  record: WireRow | null;
  old: WireRow | null;
}

/** null when the subscriber may not read the table at all (policy or scope). */
export function tableAccess(principal: Principal, table: TableInfo): ReturnType<typeof readAccess> | null {
  try {
    return readAccess(principal, table);
  } catch (err) {
    if (err instanceof HearthError) return null;
    throw err;
  }
}

export function visibleChange(principal: Principal, table: TableInfo, entry: WalEntry): VisibleChange | null {
  const access = tableAccess(principal, table);
  if (access === null) return null;
  const sees = (row: WireRow | null): row is WireRow =>
    row !== null && (access.kind === "all" || row[OWNER_COLUMN] === access.ownerId);
  const seesNew = sees(entry.new);
  const seesOld = sees(entry.old);
  if (seesNew && seesOld) return { type: entry.op, record: entry.new, old: entry.old };
  if (seesNew) return { type: "INSERT", record: entry.new, old: null };
  if (seesOld) return { type: "DELETE", record: null, old: entry.old };
  return null;
}

/** PostgreSQL type names, as realtime-js expects them in `columns` (it converts by them). */
const PG_TYPES: Record<ColumnType, string> = {
  text: "text",
  integer: "int4",
  bigint: "int8",
  float: "float8",
  boolean: "bool",
  timestamp: "timestamptz",
  date: "date",
  uuid: "uuid",
  json: "jsonb",
  bytes: "bytea",
  vector: "vector",
};

export function pgColumns(table: TableInfo): { name: string; type: string }[] {
  return [...table.columns.values()].map((c) => ({ name: c.name, type: PG_TYPES[c.type] }));
}

export function columnLookup(table: TableInfo): ColumnLookup {
  return (name) => {
    const col = table.columns.get(name);
    return col ? { type: col.type, encrypted: col.def.encrypted === true } : undefined;
  };
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\" && quoted) i++;
    else if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "(") depth++;
    else if (!quoted && ch === ")") depth--;
    else if (!quoted && depth === 0 && ch === "," && /^[\w.]+=/.test(text.slice(i + 1))) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function columnsOf(c: Condition, out: string[]): string[] {
  if (c.type === "filter") out.push(c.field.column);
  else for (const child of c.children) columnsOf(child, out);
  return out;
}

function badFilter(filter: string, why: string): HearthError {
  return new HearthError("HEARTH_BAD_FILTER", `Invalid realtime filter "${filter}": ${why}`, {
    hint: 'Filters are PostgREST filters on the table\'s own columns, e.g. "status=eq.paid" or "id=in.(1,2)".',
  });
}

/**
 * A postgres_changes filter (`status=eq.paid`, `id=in.(1,2)`, `or=(a.eq.1,b.gt.2)`, several
 * joined by commas) → conditions evaluated by the same code as REST filters.
 */
export function parseRealtimeFilter(table: TableInfo, filter: string): Condition[] {
  const params = new URLSearchParams();
  for (const part of splitTopLevel(filter)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw badFilter(filter, 'expected "column=operator.value"');
    params.append(part.slice(0, eq), part.slice(eq + 1));
  }
  let conditions: Condition[];
  try {
    const plan = parseQuery(params);
    if (
      plan.order.length > 0 ||
      plan.limit !== undefined ||
      plan.offset !== undefined ||
      Object.keys(plan.embedded).length > 0 ||
      params.has("select") ||
      params.has("columns") ||
      params.has("on_conflict")
    ) {
      throw badFilter(filter, "only filters are allowed (no select, order, limit or embedded paths)");
    }
    conditions = plan.where;
  } catch (err) {
    if (err instanceof HearthError && err.code !== "HEARTH_BAD_FILTER") throw badFilter(filter, err.message);
    throw err;
  }
  for (const c of conditions) {
    for (const column of columnsOf(c, [])) {
      if (!table.columns.has(column))
        throw badFilter(filter, `column "${column}" of ${table.name} does not exist`);
    }
  }
  // Values that cannot be cast to the column's type, and encrypted columns, fail now.
  try {
    matches(conditions, {}, columnLookup(table));
  } catch (err) {
    if (err instanceof HearthError) throw badFilter(filter, err.message);
    throw err;
  }
  return conditions;
}
