/**
 * Aggregates over hot ∪ cold without moving cold rows into SQL: partial aggregates per
 * group are computed over the segments' column vectors in JavaScript and in SQL for the
 * hot tier, then merged, ordered and paged here as SQLite would (`select=kind,amount.sum(),
 * count()`). Used for the plain shape (one table, plain columns, sum/avg/min/max/count,
 * filters on its own columns, order on grouping columns); anything else takes the general
 * overlay path, which gives the same answers more slowly.
 */
import { compareValues } from "../../shared/collate.ts";
import type { OrderTerm } from "../../shared/rest/plan.ts";
import { fromStorage } from "../../shared/values.ts";
import { quoteIdent } from "../migrate.ts";
import { firstAlias, type Level, levelWhere, MAX_ROWS, type Row } from "../read.ts";
import type { SchemaIndex } from "../schema-index.ts";
import { SqlParams } from "../sql-where.ts";
import { segmentColumns, selectedRows } from "./cold-read.ts";
import type { ColdView } from "./cold-store.ts";
import { compileConditions } from "./fast-filter.ts";

interface Acc {
  /** Neumaier-compensated sum, as SQLite's sum() */
  sum: number;
  comp: number;
  allInt: boolean;
  count: number;
  min: unknown;
  max: unknown;
}

interface Group {
  keys: unknown[];
  rows: number;
  accs: Acc[];
}

function newAcc(): Acc {
  return { sum: 0, comp: 0, allInt: true, count: 0, min: null, max: null };
}

/** SQLite's order with NULLs first (its ASC default). */
function order(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return compareValues(a, b);
}

function add(acc: Acc, v: unknown): void {
  if (v === null || v === undefined) return;
  acc.count++;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) acc.allInt = false;
    const t = acc.sum + v;
    acc.comp += Math.abs(acc.sum) >= Math.abs(v) ? acc.sum - t + v : v - t + acc.sum;
    acc.sum = t;
    // numbers against numbers directly (compareValues' order on them)
    const { min, max } = acc;
    if (min === null || (typeof min === "number" ? v < min : order(v, min) < 0)) acc.min = v;
    if (max === null || (typeof max === "number" ? v > max : order(v, max) > 0)) acc.max = v;
    return;
  }
  acc.allInt = false;
  if (acc.min === null || order(v, acc.min) < 0) acc.min = v;
  if (acc.max === null || order(v, acc.max) > 0) acc.max = v;
}

function merge(into: Acc, from: Acc): void {
  if (from.count === 0) return;
  into.count += from.count;
  into.allInt &&= from.allInt;
  const t = into.sum + from.sum;
  into.comp +=
    (Math.abs(into.sum) >= Math.abs(from.sum) ? into.sum - t + from.sum : from.sum - t + into.sum) +
    from.comp;
  into.sum = t;
  if (into.min === null || order(from.min, into.min) < 0) into.min = from.min;
  if (into.max === null || order(from.max, into.max) > 0) into.max = from.max;
}

/** Whether the fast path answers this level exactly. */
export function aggregateFastPath(level: Level): boolean {
  if (!level.fields.some((f) => f.aggregate)) return false;
  if (level.embeds.length > 0) return false;
  for (const f of level.fields) {
    if (f.cast || f.aggregateCast) return false;
    if (f.field && f.field.path.length > 0) return false;
    if (f.field && !level.table.columns.has(f.field.column)) return false;
  }
  const own = (c: Level["mods"]["where"][number]): boolean =>
    c.type === "filter" ? level.table.columns.has(c.field.column) : c.children.every(own);
  if (!level.mods.where.every(own)) return false;
  // No SQL runs after this path on cold rows: the filters must compile exactly.
  if (compileConditions(level.table, level.mods.where) === null) return false;
  const groups = new Set(level.fields.filter((f) => !f.aggregate && f.field).map((f) => f.field!.column));
  return level.mods.order.every(
    (o: OrderTerm) => !o.relation && o.field.path.length === 0 && groups.has(o.field.column),
  );
}

/** Rows (wire form) of an aggregated level over hot ∪ cold, plus the number of groups. */
export function aggregateRows(
  sql: SqlStorage,
  schema: SchemaIndex,
  view: ColdView,
  level: Level,
  paging: { offset?: number; limit?: number },
): { rows: Row[]; groups: number } {
  const table = level.table;
  const groupFields = level.fields.map((f, i) => ({ f, i })).filter(({ f }) => !f.aggregate);
  const aggFields = level.fields.map((f, i) => ({ f, i })).filter(({ f }) => f.aggregate);
  const groups = new Map<string, Group>();
  const groupOf = (keys: unknown[]): Group => {
    const id = JSON.stringify(keys);
    let g = groups.get(id);
    if (!g) {
      g = { keys, rows: 0, accs: aggFields.map(() => newAcc()) };
      groups.set(id, g);
    }
    return g;
  };
  // One group column (the common shape): groups found by the value itself, no key string per
  // row (a Map tells 1 from "1" as JSON does).
  const byValue = new Map<unknown, Group>();
  const groupOfValue = (v: unknown): Group => {
    // bytes are objects: equal contents are one group only by their JSON key
    if (v !== null && typeof v === "object") return groupOf([v]);
    let g = byValue.get(v);
    if (!g) {
      g = groupOf([v]);
      byValue.set(v, g);
    }
    return g;
  };

  // Cold: over the vectors, the rows each segment selects (live, filtered) column at a time.
  const select = selectedRows(view, level);
  for (const seg of view.segments.get(table.name) ?? []) {
    const cols = segmentColumns(table, seg);
    const gcols = groupFields.map(({ f }) => cols(f.field!.column));
    const acols = aggFields.map(({ f }) => (f.field ? cols(f.field.column) : null));
    const ungrouped = gcols.length === 0 ? groupOf([]) : null;
    const one = gcols.length === 1 ? gcols[0]! : null;
    const rows = select(seg);
    for (let k = 0; k < rows.length; k++) {
      const i = rows[k]!;
      const g = ungrouped ?? (one ? groupOfValue(one[i] ?? null) : groupOf(gcols.map((c) => c[i] ?? null)));
      g.rows++;
      for (let a = 0; a < acols.length; a++) {
        const c = acols[a];
        if (c) add(g.accs[a]!, c[i]);
      }
    }
  }

  // Hot: partial aggregates in SQL.
  if (view.includeHot) {
    const params = new SqlParams();
    const alias = firstAlias();
    const where = levelWhere(schema, level, alias, params);
    const gsql = groupFields.map(({ f }) => `${alias}.${quoteIdent(f.field!.column)}`);
    const parts = [...gsql, "count(*)"];
    for (const { f } of aggFields) {
      if (!f.field) parts.push("count(*)", "NULL", "NULL", "NULL", "1");
      else {
        const c = `${alias}.${quoteIdent(f.field.column)}`;
        parts.push(
          `count(${c})`,
          `sum(${c})`,
          `min(${c})`,
          `max(${c})`,
          `sum(CASE WHEN typeof(${c}) = 'real' THEN 1 ELSE 0 END) = 0`,
        );
      }
    }
    const text = `SELECT ${parts.join(", ")} FROM ${quoteIdent(table.name)} AS ${alias} WHERE ${where}${gsql.length > 0 ? ` GROUP BY ${gsql.join(", ")}` : ""}`;
    for (const r of sql.exec(text, ...params.values).raw()) {
      const keys = r.slice(0, gsql.length);
      const rows = Number(r[gsql.length]);
      if (rows === 0 && gsql.length === 0 && groups.size > 0) continue;
      const g = groupOf(keys.map((k) => k ?? null));
      g.rows += rows;
      aggFields.forEach(({ f }, a) => {
        const at = gsql.length + 1 + a * 5;
        if (!f.field) return;
        const count = Number(r[at]);
        if (count === 0) return;
        merge(g.accs[a]!, {
          count,
          sum: Number(r[at + 1]),
          comp: 0,
          allInt: Number(r[at + 4]) === 1,
          min: r[at + 2],
          max: r[at + 3],
        });
      });
    }
  }
  // No rows at all: one row of empty aggregates when nothing is grouped (as SQL).
  if (groups.size === 0 && groupFields.length === 0) groupOf([]);

  const list = [...groups.values()];
  const terms = level.mods.order.map((o) => ({
    at: groupFields.findIndex(({ f }) => f.field!.column === o.field.column),
    desc: o.direction === "desc",
    nullsFirst: (o.nulls ?? (o.direction === "asc" ? "last" : "first")) === "first",
  }));
  list.sort((x, y) => {
    for (const t of terms) {
      const a = x.keys[t.at];
      const b = y.keys[t.at];
      const an = a === null || a === undefined;
      const bn = b === null || b === undefined;
      if (an !== bn) return an ? (t.nullsFirst ? -1 : 1) : t.nullsFirst ? 1 : -1;
      const c = order(a, b);
      if (c !== 0) return t.desc ? -c : c;
    }
    for (let k = 0; k < x.keys.length; k++) {
      const c = order(x.keys[k], y.keys[k]); // SQLite's ASC: NULLs first
      if (c !== 0) return c;
    }
    return 0;
  });
  const offset = paging.offset ?? 0;
  const limit = Math.min(paging.limit ?? MAX_ROWS, MAX_ROWS);
  const rows = list.slice(offset, offset + limit).map((g) => {
    const out: Row = {};
    groupFields.forEach(({ f }, k) => {
      out[f.key] = fromStorage(schema.column(table, f.field!.column).type, g.keys[k]);
    });
    aggFields.forEach(({ f }, a) => {
      const acc = g.accs[a]!;
      let v: unknown;
      switch (f.aggregate) {
        case "count":
          v = f.field ? acc.count : g.rows;
          break;
        case "sum":
          v = acc.count === 0 ? null : acc.allInt ? acc.sum : acc.sum + acc.comp;
          break;
        case "avg":
          v = acc.count === 0 ? null : (acc.sum + acc.comp) / acc.count;
          break;
        case "min":
          v = acc.count === 0 ? null : fromStorage(schema.column(table, f.field!.column).type, acc.min);
          break;
        case "max":
          v = acc.count === 0 ? null : fromStorage(schema.column(table, f.field!.column).type, acc.max);
          break;
      }
      out[f.key] = v;
    });
    // keys in the order of the select
    const ordered: Row = {};
    for (const f of level.fields) ordered[f.key] = out[f.key];
    return ordered;
  });
  return { rows, groups: list.length };
}
