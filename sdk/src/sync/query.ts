/**
 * Local queries over a table's view: a predicate, an order (PostgreSQL's: nulls last going up,
 * first going down) and a limit. Plus `sameRows`, so a live query stays quiet when a change
 * left its answer as it was.
 */
import type { Row } from "../replica/types.ts";

export type OrderBy<T extends Row = Row> =
  | (keyof T & string)
  | { column: keyof T & string; ascending?: boolean; nullsFirst?: boolean };

export interface QueryOptions<T extends Row = Row> {
  where?: (row: T) => boolean;
  orderBy?: OrderBy<T> | OrderBy<T>[];
  limit?: number;
}

function compareValues(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  if (typeof a !== typeof b) return typeof a < typeof b ? -1 : 1;
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function comparator<T extends Row>(orders: OrderBy<T>[]): (a: T, b: T) => number {
  const specs = orders.map((o) => {
    const spec = typeof o === "string" ? { column: o } : o;
    const ascending = spec.ascending ?? true;
    return { column: spec.column, ascending, nullsFirst: spec.nullsFirst ?? !ascending };
  });
  return (a, b) => {
    for (const { column, ascending, nullsFirst } of specs) {
      const x = a[column];
      const y = b[column];
      const xNull = x === null || x === undefined;
      const yNull = y === null || y === undefined;
      if (xNull || yNull) {
        if (xNull && yNull) continue;
        return xNull === nullsFirst ? -1 : 1;
      }
      const c = compareValues(x, y);
      if (c !== 0) return ascending ? c : -c;
    }
    return 0;
  };
}

export function runQuery<T extends Row>(rows: T[], options: QueryOptions<T> = {}): T[] {
  const { where, orderBy, limit } = options;
  let out = where ? rows.filter((r) => where(r)) : rows;
  if (orderBy !== undefined) out = out.sort(comparator(Array.isArray(orderBy) ? orderBy : [orderBy]));
  return limit === undefined ? out : out.slice(0, Math.max(0, limit));
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => k in b && same((a as Row)[k], (b as Row)[k]));
}

/** The same rows with the same values, in the same order. */
export function sameRows(a: readonly Row[], b: readonly Row[]): boolean {
  return a.length === b.length && a.every((row, i) => same(row, b[i]));
}
