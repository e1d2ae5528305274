/**
 * Compiles plan conditions (shared/rest/plan.ts) to SQLite WHERE text. Identifiers come
 * only from the schema (quoted); every value is a bound parameter (`?N`). Large `in`
 * lists are one JSON parameter read with json_each, so the 100-parameter limit of DO SQL
 * holds whatever the request.
 */
import { HearthError } from "../shared/errors.ts";
import type { Condition, FieldRef, Filter } from "../shared/rest/plan.ts";
import { castValue, type ExprKind } from "../shared/values.ts";
import { quoteIdent } from "./migrate.ts";
import type { SchemaIndex, TableInfo } from "./schema-index.ts";

export const MAX_BOUND_PARAMS = 100;

export class SqlParams {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    if (this.values.length >= MAX_BOUND_PARAMS) {
      throw new HearthError("HEARTH_BAD_REQUEST", "The query has too many values to bind (at most 100).", {
        hint: "Use in.(...) lists instead of many separate filters.",
      });
    }
    this.values.push(value);
    return `?${this.values.length}`;
  }
}

export { castValue, type ExprKind };

export interface CompiledField {
  sql: string;
  kind: ExprKind;
  column: string;
}

export function jsonPath(field: FieldRef): string {
  let path = "$";
  for (const step of field.path) {
    if (step.kind === "index") path += step.index < 0 ? `[#${step.index}]` : `[${step.index}]`;
    else {
      if (step.key.includes('"')) {
        throw new HearthError("PGRST100", `JSON keys with a double quote are not supported: ${step.key}`);
      }
      path += `."${step.key}"`;
    }
  }
  return path;
}

export interface WhereContext {
  schema: SchemaIndex;
  table: TableInfo;
  alias: string;
  params: SqlParams;
  /** Handles a filter whose column is an embedded resource (`rel=is.null`), or returns null. */
  embedFilter?: (filter: Filter) => string | null;
}

export function compileField(ctx: WhereContext, field: FieldRef): CompiledField {
  const col = ctx.schema.column(ctx.table, field.column);
  const ref = `${ctx.alias}.${quoteIdent(col.name)}`;
  if (field.path.length === 0) return { sql: ref, kind: col.type, column: col.name };
  if (col.type !== "json") {
    throw new HearthError("42883", `operator does not exist: ${col.type} ->`, {
      hint: `JSON paths (-> and ->>) apply to json columns; "${col.name}" is ${col.type}.`,
    });
  }
  const path = ctx.params.add(jsonPath(field));
  if (field.asText) {
    // PostgreSQL's ->> yields text; SQLite's yields typed values and 1/0 for booleans.
    return {
      sql: `(CASE json_type(${ref}, ${path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(json_extract(${ref}, ${path}) AS TEXT) END)`,
      kind: "json-text",
      column: col.name,
    };
  }
  return { sql: `(${ref} -> ${path})`, kind: "json-value", column: col.name };
}

function encrypted(ctx: WhereContext, f: Filter): void {
  const col = ctx.table.columns.get(f.field.column);
  // Whether a value is present is not secret; is.null / not.is.null stay allowed.
  if (col?.def.encrypted && !(f.op === "is" && (f.value === "null" || f.value === "not_null"))) {
    throw new HearthError("HEARTH_UNSUPPORTED", `Cannot filter on encrypted column "${f.field.column}"`, {
      details: "Encrypted columns hold client-side ciphertext; the server never sees their values.",
      hint: "Filter on another column, or decrypt and filter on the client.",
    });
  }
}

/** `*` means `%` in PostgREST patterns; GLOB gives the case-sensitive LIKE PostgreSQL has. */
export function likeToGlob(pattern: string): string {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "\\" && i + 1 < pattern.length) {
      const next = pattern[++i]!;
      out += next === "*" || next === "?" || next === "[" ? `[${next}]` : next;
    } else if (ch === "*" || ch === "%") out += "*";
    else if (ch === "_") out += "?";
    else if (ch === "?" || ch === "[") out += `[${ch}]`;
    else out += ch;
  }
  return out;
}

function textOf(f: CompiledField): string {
  return f.kind === "text" || f.kind === "json-text" || f.kind === "uuid" ? f.sql : `CAST(${f.sql} AS TEXT)`;
}

const CMP: Record<string, string> = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=" };

function arrayValues(value: string): unknown[] {
  const t = value.trim();
  if (t.startsWith("[")) {
    const v = JSON.parse(t);
    if (Array.isArray(v)) return v;
  }
  if (t.startsWith("{") && t.endsWith("}") && !t.includes(":")) {
    const inner = t.slice(1, -1).trim();
    return inner === "" ? [] : inner.split(",").map((s) => s.trim().replace(/^"(.*)"$/, "$1"));
  }
  throw new Error("not an array");
}

function containment(ctx: WhereContext, f: Filter, field: CompiledField): string {
  if (field.kind !== "json" && field.kind !== "json-value") {
    throw new HearthError(
      "42883",
      `operator ${f.op} applies to json columns; "${field.column}" is ${field.kind}`,
    );
  }
  let needle: unknown;
  try {
    needle =
      f.value.trim().startsWith("{") && f.value.includes(":") ? JSON.parse(f.value) : arrayValues(f.value);
  } catch {
    throw new HearthError("22P02", `invalid input syntax for ${f.op}: "${f.value.slice(0, 80)}"`, {
      hint: 'Use a JSON array ["a","b"], an array literal {a,b}, or a JSON object {"k":1}.',
    });
  }
  const p = ctx.params.add(JSON.stringify(needle));
  const hay = field.sql;
  const isObject = needle !== null && typeof needle === "object" && !Array.isArray(needle);
  // Elements of one set that are missing from the other: none means containment.
  const missing = (inner: string, outer: string, byKey: boolean) =>
    byKey
      ? `NOT EXISTS (SELECT 1 FROM json_each(${inner}) n WHERE NOT EXISTS (SELECT 1 FROM json_each(${outer}) h WHERE h.key = n.key AND h.type = n.type AND h.value IS n.value))`
      : `NOT EXISTS (SELECT 1 FROM json_each(${inner}) n WHERE NOT EXISTS (SELECT 1 FROM json_each(${outer}) h WHERE h.type = n.type AND h.value IS n.value))`;
  // As jsonb's @>: an object contains an object, an array an array (scalars: never here).
  // A missing value (SQL NULL) gives NULL, so not.cs does not select it either.
  const shape = isObject ? "'object'" : "'array'";
  let body: string;
  if (f.op === "cs") body = `json_type(${hay}) = ${shape} AND ${missing(p, hay, isObject)}`;
  else if (f.op === "cd") body = `json_type(${hay}) = ${shape} AND ${missing(hay, p, isObject)}`;
  else if (isObject) body = "0";
  else {
    body = `json_type(${hay}) = 'array' AND EXISTS (SELECT 1 FROM json_each(${hay}) h JOIN json_each(${p}) n ON h.type = n.type AND h.value IS n.value)`;
  }
  return `(CASE WHEN ${hay} IS NULL THEN NULL ELSE (${body}) END)`;
}

function compileFilter(ctx: WhereContext, f: Filter): string {
  const special = ctx.embedFilter?.(f);
  if (special != null) return f.negate ? `NOT (${special})` : special;
  encrypted(ctx, f);
  const field = compileField(ctx, f.field);
  let sql: string;
  switch (f.op) {
    case "eq":
    case "neq":
    case "gt":
    case "gte":
    case "lt":
    case "lte":
    case "like":
    case "ilike": {
      const one = (v: string) => {
        if (f.op === "like") return `${textOf(field)} GLOB ${ctx.params.add(likeToGlob(v))}`;
        if (f.op === "ilike")
          return `${textOf(field)} LIKE ${ctx.params.add(v.replaceAll("*", "%"))} ESCAPE '\\'`;
        return `${field.sql} ${CMP[f.op]} ${ctx.params.add(castValue(field.kind, v, field.column))}`;
      };
      if (f.quantifier) {
        const values = f.values ?? [];
        if (values.length === 0) sql = f.quantifier === "any" ? "0" : "1";
        else sql = `(${values.map(one).join(f.quantifier === "any" ? " OR " : " AND ")})`;
      } else sql = one(f.value);
      break;
    }
    case "in": {
      const values = f.values ?? [];
      if (values.length === 0) {
        sql = "0";
        break;
      }
      const cast = values.map((v) => castValue(field.kind, v, field.column));
      sql = `${field.sql} IN (SELECT value FROM json_each(${ctx.params.add(JSON.stringify(cast))}))`;
      break;
    }
    case "is":
      switch (f.value) {
        case "null":
        case "unknown":
          sql = `${field.sql} IS NULL`;
          break;
        case "not_null":
          sql = `${field.sql} IS NOT NULL`;
          break;
        case "true":
        case "false":
          if (field.kind !== "boolean") {
            throw new HearthError(
              "42883",
              `is.${f.value} applies to boolean columns; "${field.column}" is ${field.kind}`,
            );
          }
          sql = `${field.sql} IS ${f.value === "true" ? 1 : 0}`;
          break;
        default:
          throw new HearthError("PGRST100", `failed to parse filter (is.${f.value})`, {
            details: "is accepts null, not_null, true, false or unknown",
          });
      }
      break;
    case "isdistinct":
      sql = `${field.sql} IS NOT ${ctx.params.add(castValue(field.kind, f.value, field.column))}`;
      break;
    case "cs":
    case "cd":
    case "ov":
      sql = containment(ctx, f, field);
      break;
    default:
      throw new HearthError(
        "HEARTH_UNSUPPORTED",
        `The filter operator "${f.op}" is not supported by Hearth`,
        {
          hint: "Supported: eq neq gt gte lt lte like ilike in is isdistinct cs cd ov, with not. and or/and trees.",
        },
      );
  }
  return f.negate ? `NOT (${sql})` : sql;
}

export function compileCondition(ctx: WhereContext, c: Condition): string {
  if (c.type === "filter") return compileFilter(ctx, c);
  if (c.children.length === 0) {
    throw new HearthError("PGRST100", `failed to parse logic tree: ${c.type}=() is empty`);
  }
  const inner = c.children
    .map((child) => compileCondition(ctx, child))
    .join(c.type === "and" ? " AND " : " OR ");
  return c.negate ? `NOT (${inner})` : `(${inner})`;
}

/** AND of conditions; "1" when there are none. */
export function compileWhere(ctx: WhereContext, conditions: Condition[]): string {
  if (conditions.length === 0) return "1";
  return conditions.map((c) => compileCondition(ctx, c)).join(" AND ");
}
