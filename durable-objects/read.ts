/**
 * The read path of the hot tier: a query plan → one SELECT per embedding level, stitched
 * in JavaScript. Parent filtering on embeds (`!inner`, `rel=is.null`) and ordering by a
 * to-one embed are correlated subqueries, so limit and count stay exact in SQL.
 */
import { HearthError } from "../shared/errors.ts";
import type { Filter, OrderTerm } from "../shared/rest/plan.ts";
import { OWNER_COLUMN } from "../shared/schema.ts";
import { fromStorage } from "../shared/values.ts";
import type { SqlExec } from "./cold/overlay.ts";
import { quoteIdent } from "./migrate.ts";
import type { Embed, Level } from "./read-plan.ts";
import type { SchemaIndex, TableInfo } from "./schema-index.ts";
import { compileField, compileWhere, SqlParams, type WhereContext } from "./sql-where.ts";

/** PostgREST's db-max-rows: the most rows one level of one response holds. */
export const MAX_ROWS = 10_000;

export type Row = Record<string, unknown>;

export { buildLevel, type Embed, type Level } from "./read-plan.ts";

// Table aliases restart at t1 for every statement, so the same request shape yields the same
// SQL text and hits SQLite's prepared-statement cache. Statements are built synchronously,
// one at a time, so a module-level counter is safe.
let aliasCounter = 0;
export function firstAlias(): string {
  aliasCounter = 1;
  return "t1";
}
function nextAlias(): string {
  aliasCounter += 1;
  return `t${aliasCounter}`;
}

function accessSql(level: Level, alias: string, params: SqlParams): string {
  return level.access.kind === "own"
    ? `${alias}.${quoteIdent(OWNER_COLUMN)} = ${params.add(level.access.ownerId)}`
    : "1";
}

/** Correlated EXISTS over an embed's rows (its own filters and policy included). */
function existsSql(schema: SchemaIndex, embed: Embed, parentAlias: string, params: SqlParams): string {
  const alias = nextAlias();
  const child = embed.level;
  const corr = embed.rel.foreignColumns
    .map((c, i) => `${alias}.${quoteIdent(c)} = ${parentAlias}.${quoteIdent(embed.rel.columns[i]!)}`)
    .join(" AND ");
  const where = levelWhere(schema, child, alias, params);
  return `EXISTS (SELECT 1 FROM ${quoteIdent(child.table.name)} AS ${alias} WHERE ${corr} AND ${where})`;
}

/** WHERE of one level: its filters, embed-based filters, `!inner` embeds and the policy. */
export function levelWhere(schema: SchemaIndex, level: Level, alias: string, params: SqlParams): string {
  const ctx: WhereContext = {
    schema,
    table: level.table,
    alias,
    params,
    embedFilter: (f: Filter) => {
      const embed = level.embeds.find((e) => e.key === f.field.column && f.field.path.length === 0);
      if (!embed) return null;
      if (f.op !== "is" || (f.value !== "null" && f.value !== "not_null")) {
        throw new HearthError(
          "PGRST120",
          `Only is.null or not.is.null filters are allowed on embedded resources ('${f.field.column}')`,
        );
      }
      const exists = existsSql(schema, embed, alias, params);
      return f.value === "null" ? `NOT ${exists}` : exists;
    },
  };
  const parts = [compileWhere(ctx, level.mods.where), accessSql(level, alias, params)];
  for (const embed of level.embeds) if (embed.inner) parts.push(existsSql(schema, embed, alias, params));
  return parts.filter((p) => p !== "1").join(" AND ") || "1";
}

/**
 * ORDER BY text (without the keywords); `then` are the tie-breakers for stable paging: the
 * primary key for plain reads, the grouping columns for aggregates. "" when there is none.
 */
/** ORDER BY text of a level (its order terms, then the primary key), for a limited write. */
export function levelOrderSql(schema: SchemaIndex, level: Level, alias: string, params: SqlParams): string {
  return orderSql(schema, level, alias, params, level.mods.order);
}

function orderSql(
  schema: SchemaIndex,
  level: Level,
  alias: string,
  params: SqlParams,
  order: OrderTerm[],
  then?: string[],
): string {
  const terms = order.map((term) => {
    let expr: string;
    if (term.relation) {
      const embed = level.embeds.find((e) => e.key === term.relation);
      if (!embed) {
        throw new HearthError("PGRST108", `'${term.relation}' is not an embedded resource in this request`);
      }
      if (embed.rel.kind !== "many-to-one") {
        throw new HearthError("PGRST118", `A related order on '${term.relation}' is not possible`, {
          details: `'${level.table.name}' and '${term.relation}' do not form a many-to-one or one-to-one relationship`,
        });
      }
      const sub = nextAlias();
      const field = compileField({ schema, table: embed.level.table, alias: sub, params }, term.field);
      const corr = embed.rel.foreignColumns
        .map((c, i) => `${sub}.${quoteIdent(c)} = ${alias}.${quoteIdent(embed.rel.columns[i]!)}`)
        .join(" AND ");
      expr = `(SELECT ${field.sql} FROM ${quoteIdent(embed.level.table.name)} AS ${sub} WHERE ${corr})`;
    } else {
      expr = compileField({ schema, table: level.table, alias, params }, term.field).sql;
    }
    const nulls = term.nulls ?? (term.direction === "asc" ? "last" : "first");
    return `${expr} ${term.direction.toUpperCase()} NULLS ${nulls.toUpperCase()}`;
  });
  if (then) terms.push(...then);
  else for (const pk of level.table.primaryKey) terms.push(`${alias}.${quoteIdent(pk)} ASC`);
  return terms.join(", ");
}

interface SelectSql {
  columns: string[];
  /** the plain columns of an aggregated level (empty when nothing is aggregated) */
  groupBy: string[];
  aggregated: boolean;
}

function selectSql(schema: SchemaIndex, level: Level, alias: string, params: SqlParams): SelectSql {
  const aggregated = level.fields.some((f) => f.aggregate);
  const groupBy: string[] = [];
  const columns = level.fields.map((f, i) => {
    let sql = f.field ? compileField({ schema, table: level.table, alias, params }, f.field).sql : "*";
    if (f.cast) sql = `CAST(${sql} AS ${f.cast.sql})`;
    if (f.aggregate) {
      sql = `${f.aggregate}(${sql})`;
      if (f.aggregateCast) sql = `CAST(${sql} AS ${f.aggregateCast.sql})`;
    } else if (aggregated) groupBy.push(sql);
    return `${sql} AS "f${i}"`;
  });
  level.embeds.forEach((e, i) => {
    columns.push(`${alias}.${quoteIdent(e.rel.columns[0]!)} AS "k${i}"`);
  });
  return { columns, groupBy, aggregated };
}

function convertRow(schema: SchemaIndex, level: Level, raw: Row): Row {
  const out: Row = {};
  level.fields.forEach((f, i) => {
    const v = raw[`f${i}`];
    if (f.aggregateCast) out[f.key] = f.aggregateCast.convert(v ?? null);
    else if (f.aggregate && f.aggregate !== "min" && f.aggregate !== "max") out[f.key] = v ?? null;
    else if (f.cast) out[f.key] = f.cast.convert(v ?? null);
    else if (!f.field) out[f.key] = v ?? null;
    else if (f.field.path.length === 0) {
      out[f.key] = fromStorage(schema.column(level.table, f.field.column).type, v);
    } else if (f.field.asText) out[f.key] = v ?? null;
    else out[f.key] = v === null || v === undefined ? null : JSON.parse(String(v));
  });
  return out;
}

export type PrimaryKey = unknown[];

/** WHERE text selecting exactly the given primary keys (one JSON parameter). */
export function pkFilter(table: TableInfo, keys: PrimaryKey[], alias: string, params: SqlParams): string {
  if (keys.length === 0) return "0";
  if (table.primaryKey.length === 1) {
    return `${alias}.${quoteIdent(table.primaryKey[0]!)} IN (SELECT value FROM json_each(${params.add(JSON.stringify(keys.map((k) => k[0])))}))`;
  }
  const tuple = `json_array(${table.primaryKey.map((c) => `${alias}.${quoteIdent(c)}`).join(", ")})`;
  return `${tuple} IN (SELECT json(value) FROM json_each(${params.add(JSON.stringify(keys))}))`;
}

export interface ReadOptions {
  limit?: number;
  offset?: number;
  /**
   * Read exactly these rows (the representation of a write): no row cap, and rows come
   * back in the order of `keys`, as PostgREST returns written rows in body order.
   */
  keys?: PrimaryKey[];
}

/** Runs the root SELECT and every embed; returns wire-form rows. */
export function runLevel(sql: SqlExec, schema: SchemaIndex, level: Level, opts: ReadOptions): Row[] {
  const params = new SqlParams();
  const alias = firstAlias();
  let where = levelWhere(schema, level, alias, params);
  const select = selectSql(schema, level, alias, params);
  const columns = select.columns;
  let tail: string;
  if (opts.keys) {
    where += ` AND ${pkFilter(level.table, opts.keys, alias, params)}`;
    level.table.primaryKey.forEach((c, i) => {
      columns.push(`${alias}.${quoteIdent(c)} AS "p${i}"`);
    });
    tail = "";
  } else {
    const limit = Math.min(opts.limit ?? MAX_ROWS, MAX_ROWS);
    const order = orderSql(
      schema,
      level,
      alias,
      params,
      level.mods.order,
      select.aggregated ? select.groupBy : undefined,
    );
    tail =
      (select.groupBy.length > 0 ? ` GROUP BY ${select.groupBy.join(", ")}` : "") +
      (order ? ` ORDER BY ${order}` : "") +
      ` LIMIT ${params.add(limit)} OFFSET ${params.add(opts.offset ?? 0)}`;
  }
  const text = `SELECT ${columns.join(", ") || "1"} FROM ${quoteIdent(level.table.name)} AS ${alias} WHERE ${where}${tail}`;
  let raws = sql.exec(text, ...params.values).toArray() as Row[];
  if (opts.keys) {
    const byKey = new Map(
      raws.map((r) => [JSON.stringify(level.table.primaryKey.map((_, i) => r[`p${i}`])), r]),
    );
    raws = opts.keys.map((k) => byKey.get(JSON.stringify(k))).filter((r): r is Row => r !== undefined);
  }
  const rows = raws.map((r) => convertRow(schema, level, r));
  for (const [i, embed] of level.embeds.entries()) {
    attachEmbed(
      sql,
      schema,
      embed,
      raws.map((r) => r[`k${i}`]),
      rows,
    );
  }
  return rows;
}

function attachEmbed(sql: SqlExec, schema: SchemaIndex, embed: Embed, keys: unknown[], rows: Row[]): void {
  const child = embed.level;
  const distinct = [...new Set(keys.filter((k) => k !== null && k !== undefined))];
  const byKey = new Map<unknown, Row[]>();
  if (distinct.length > 0) {
    const params = new SqlParams();
    const alias = firstAlias();
    const fk = `${alias}.${quoteIdent(embed.rel.foreignColumns[0]!)}`;
    const where = `${fk} IN (SELECT value FROM json_each(${params.add(JSON.stringify(distinct))})) AND ${levelWhere(schema, child, alias, params)}`;
    const select = selectSql(schema, child, alias, params);
    // An aggregated embed (`posts(count())`) groups per parent too.
    const groupBy = select.aggregated ? [...select.groupBy, fk] : [];
    const order = orderSql(
      schema,
      child,
      alias,
      params,
      child.mods.order,
      select.aggregated ? groupBy : undefined,
    );
    const text =
      `SELECT ${[...select.columns, `${fk} AS "corr"`].join(", ")} FROM ${quoteIdent(child.table.name)} AS ${alias}` +
      ` WHERE ${where}${groupBy.length > 0 ? ` GROUP BY ${groupBy.join(", ")}` : ""}${order ? ` ORDER BY ${order}` : ""}`;
    const raws = sql.exec(text, ...params.values).toArray() as Row[];
    const childRows = raws.map((r) => convertRow(schema, child, r));
    for (const [i, e] of child.embeds.entries()) {
      attachEmbed(
        sql,
        schema,
        e,
        raws.map((r) => r[`k${i}`]),
        childRows,
      );
    }
    raws.forEach((r, i) => {
      const list = byKey.get(r.corr) ?? [];
      list.push(childRows[i]!);
      byKey.set(r.corr, list);
    });
  }
  const toOne = embed.rel.kind === "many-to-one";
  rows.forEach((row, i) => {
    let matches = byKey.get(keys[i]) ?? [];
    if (!toOne) {
      const offset = child.mods.offset ?? 0;
      matches = matches.slice(offset, child.mods.limit !== undefined ? offset + child.mods.limit : undefined);
    }
    if (embed.hidden) return;
    if (embed.spread) {
      for (const f of child.fields) {
        row[f.key] = toOne ? (matches[0]?.[f.key] ?? null) : matches.map((m) => m[f.key]);
      }
      for (const e of child.embeds) {
        if (!e.hidden) row[e.key] = toOne ? (matches[0]?.[e.key] ?? null) : matches.map((m) => m[e.key]);
      }
    } else {
      row[embed.key] = toOne ? (matches[0] ?? null) : matches;
    }
  });
}

/** `count=exact`: all rows the filters (and policy, and `!inner`) let through. */
export function countLevel(sql: SqlExec, schema: SchemaIndex, level: Level): number {
  const params = new SqlParams();
  const alias = firstAlias();
  const where = levelWhere(schema, level, alias, params);
  const from = `FROM ${quoteIdent(level.table.name)} AS ${alias} WHERE ${where}`;
  if (!level.fields.some((f) => f.aggregate)) {
    // The select list is not part of a plain count (its JSON paths would bind unused values).
    return Number(sql.exec(`SELECT count(*) AS n ${from}`, ...params.values).one().n);
  }
  const select = selectSql(schema, level, alias, params);
  // With aggregates the response has one row per group (one row when nothing is grouped).
  if (select.aggregated && select.groupBy.length === 0) return 1;
  const text = select.aggregated
    ? `SELECT count(*) AS n FROM (SELECT 1 ${from} GROUP BY ${select.groupBy.join(", ")})`
    : `SELECT count(*) AS n ${from}`;
  const row = sql.exec(text, ...params.values).one();
  return Number(row.n);
}
