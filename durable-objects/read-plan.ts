/**
 * Checking a read plan: the query plan's select tree resolved against the schema (columns,
 * relationships, casts, aggregates) and the caller's read policy, level by level. The
 * result (`Level`) is what durable-objects/read.ts compiles to SQL.
 */
import { HearthError } from "../shared/errors.ts";
import type { Principal } from "../shared/principal.ts";
import type { AggregateFn, FieldRef, Modifiers, QueryPlan, SelectItem } from "../shared/rest/plan.ts";
import { type Access, readAccess } from "./policy.ts";
import type { Relationship, SchemaIndex, TableInfo } from "./schema-index.ts";

export interface Cast {
  sql: string;
  convert: (v: unknown) => unknown;
}

export interface OutputField {
  key: string;
  /** null for `count()` (every row) */
  field: FieldRef | null;
  cast?: Cast;
  aggregate?: AggregateFn;
  aggregateCast?: Cast;
}

export interface Embed {
  key: string;
  path: string;
  rel: Relationship;
  inner: boolean;
  spread: boolean;
  /** `rel()`: used to filter, absent from the output */
  hidden: boolean;
  level: Level;
}

export interface Level {
  table: TableInfo;
  access: Access;
  path: string;
  fields: OutputField[];
  embeds: Embed[];
  mods: Modifiers;
}

const CASTS: Record<string, { sql: string; convert: (v: unknown) => unknown }> = {
  text: { sql: "TEXT", convert: (v) => (v === null ? null : String(v)) },
  varchar: { sql: "TEXT", convert: (v) => (v === null ? null : String(v)) },
  int: { sql: "INTEGER", convert: (v) => v },
  int4: { sql: "INTEGER", convert: (v) => v },
  int8: { sql: "INTEGER", convert: (v) => v },
  integer: { sql: "INTEGER", convert: (v) => v },
  bigint: { sql: "INTEGER", convert: (v) => v },
  float: { sql: "REAL", convert: (v) => v },
  float8: { sql: "REAL", convert: (v) => v },
  real: { sql: "REAL", convert: (v) => v },
  numeric: { sql: "REAL", convert: (v) => v },
};

function castOf(name: string): Cast {
  const cast = CASTS[name.toLowerCase()];
  if (!cast) {
    throw new HearthError("42704", `type "${name}" does not exist`, {
      hint: `Supported casts: ${Object.keys(CASTS).join(", ")}, json`,
    });
  }
  return cast;
}

/** Aggregates group by every plain column; embeds inside an aggregated level are not supported. */
function checkAggregates(level: Level): void {
  if (!level.fields.some((f) => f.aggregate)) return;
  if (level.embeds.some((e) => !e.hidden)) {
    throw new HearthError("HEARTH_UNSUPPORTED", "Aggregates cannot be combined with embedded resources yet", {
      hint: "Aggregate the embedded table on its own endpoint, e.g. /posts?select=author_id,count().",
    });
  }
}

/** Checks a plan against the schema and the caller's read policies, level by level. */
export function buildLevel(
  schema: SchemaIndex,
  principal: Principal,
  table: TableInfo,
  select: SelectItem[],
  plan: QueryPlan,
  path = "",
): Level {
  const access = readAccess(principal, table);
  const mods: Modifiers = path === "" ? plan : (plan.embedded[path] ?? { where: [], order: [] });
  const level: Level = { table, access, path, fields: [], embeds: [], mods };
  for (const item of select) {
    if (item.type === "star") {
      for (const col of table.columns.values()) {
        level.fields.push({ key: col.name, field: { column: col.name, path: [], asText: false } });
      }
    } else if (item.type === "field") {
      schema.column(table, item.field.column);
      const lastKey = [...item.field.path].reverse().find((s) => s.kind === "key");
      const out: OutputField = {
        // PostgREST: an aggregate's key is the function name unless aliased.
        key: item.alias ?? item.aggregate ?? (lastKey?.kind === "key" ? lastKey.key : item.field.column),
        field: item.field,
      };
      if (item.cast && item.cast !== "json" && item.cast !== "jsonb") out.cast = castOf(item.cast);
      if (item.aggregate) out.aggregate = item.aggregate;
      if (item.aggregateCast) out.aggregateCast = castOf(item.aggregateCast);
      level.fields.push(out);
    } else if (item.type === "count") {
      const out: OutputField = { key: item.alias ?? "count", field: null, aggregate: "count" };
      if (item.aggregateCast) out.aggregateCast = castOf(item.aggregateCast);
      level.fields.push(out);
    } else {
      const rel = schema.relationship(table.name, item.relation, item.hint);
      const key = item.alias ?? item.relation;
      const childPath = path === "" ? key : `${path}.${key}`;
      const child = buildLevel(
        schema,
        principal,
        schema.table(rel.foreignTable),
        item.select,
        plan,
        childPath,
      );
      level.embeds.push({
        key,
        path: childPath,
        rel,
        inner: item.inner,
        spread: item.spread,
        hidden: item.select.length === 0,
        level: child,
      });
    }
  }
  for (const key of Object.keys(plan.embedded)) {
    const parent = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
    if (parent === path && !level.embeds.some((e) => e.path === key)) {
      throw new HearthError(
        "PGRST108",
        `'${key.slice(key.lastIndexOf(".") + 1)}' is not an embedded resource in this request`,
        {
          hint: `Verify that '${key}' is included in the 'select' query parameter.`,
        },
      );
    }
  }
  checkAggregates(level);
  return level;
}
