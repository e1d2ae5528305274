/**
 * The query plan: what a PostgREST-dialect request asks for, as data. The parser
 * (shared/rest/parse-*.ts) turns a URL and headers into a plan without knowing the schema;
 * the DO checks it against the schema and compiles it to SQL with bound values. A plan
 * never holds SQL text.
 */

/** One step of a JSON path: `->key`, `->0`. */
export type JsonPathStep = { kind: "key"; key: string } | { kind: "index"; index: number };

/**
 * A column, optionally followed by a JSON path. `data->a->>b` is
 * `{column: "data", path: [{key a}, {key b}], asText: true}`; a plain column has `path: []`.
 */
export interface FieldRef {
  column: string;
  path: JsonPathStep[];
  /** The last arrow was `->>` (compare/return as text). False when `path` is empty. */
  asText: boolean;
}

export type AggregateFn = "count" | "sum" | "avg" | "min" | "max";

export type SelectItem =
  | { type: "star" }
  | {
      type: "field";
      field: FieldRef;
      alias?: string;
      /** `col::text` */
      cast?: string;
      /** `col.sum()` */
      aggregate?: AggregateFn;
      /** cast after the aggregate: `amount.sum()::text` */
      aggregateCast?: string;
    }
  /** `count()` with no column */
  | {
      type: "count";
      alias?: string;
      /** cast of the result: `count()::text` (added by the parser; optional) */
      aggregateCast?: string;
    }
  | {
      type: "embed";
      /** table name, FK column or FK name as written before `(` */
      relation: string;
      alias?: string;
      /** `rel!hint(...)` */
      hint?: string;
      /** `!inner` / `!left`; default is left */
      inner: boolean;
      /** `...rel(cols)` */
      spread: boolean;
      select: SelectItem[];
    };

export type FilterOp =
  | "eq"
  | "neq"
  | "gt"
  | "gte"
  | "lt"
  | "lte"
  | "like"
  | "ilike"
  | "match"
  | "imatch"
  | "in"
  | "is"
  | "isdistinct"
  | "cs"
  | "cd"
  | "ov"
  | "fts"
  | "plfts"
  | "phfts"
  | "wfts"
  | "sl"
  | "sr"
  | "nxr"
  | "nxl"
  | "adj";

export interface Filter {
  type: "filter";
  field: FieldRef;
  op: FilterOp;
  /** `not.` prefix */
  negate: boolean;
  /** `eq(any)` / `like(all)`: `values` holds the array elements */
  quantifier?: "any" | "all";
  /**
   * The raw text after the operator. For `in` and quantified ops, `values` holds the list
   * (quotes and backslash escapes already removed) and `value` is the raw text.
   * For `is`: lower-cased `null | not_null | true | false | unknown`.
   */
  value: string;
  values?: string[];
  /** full-text search config: `fts(english)` */
  language?: string;
}

export interface Logic {
  type: "and" | "or";
  negate: boolean;
  children: Condition[];
}

export type Condition = Filter | Logic;

export interface OrderTerm {
  field: FieldRef;
  /** `order=client(name).desc`: order by a column of an embedded to-one resource */
  relation?: string;
  direction: "asc" | "desc";
  /** absent: PostgreSQL's default (nulls last on asc, first on desc) */
  nulls?: "first" | "last";
}

/** Filters, order and paging that apply to one embedded level (`posts.order=...`). */
export interface Modifiers {
  where: Condition[];
  order: OrderTerm[];
  limit?: number;
  offset?: number;
}

export interface QueryPlan extends Modifiers {
  select: SelectItem[];
  /**
   * Modifiers of embedded resources, keyed by the embed path: the aliases (or relation
   * names) from the root joined by ".", e.g. "posts" or "posts.comments".
   */
  embedded: Record<string, Modifiers>;
  /** `columns=a,b` on writes */
  columns?: string[];
  /** `on_conflict=a,b` */
  onConflict?: string[];
}

export interface Prefer {
  return?: "minimal" | "representation" | "headers-only";
  count?: "exact" | "planned" | "estimated";
  resolution?: "merge-duplicates" | "ignore-duplicates";
  missing?: "default";
  handling?: "strict" | "lenient";
  maxAffected?: number;
  /** tx=commit|rollback is accepted and ignored, as PostgREST does without override */
  tx?: "commit" | "rollback";
  timezone?: string;
  /** unrecognised preference names, for `handling=strict` */
  invalid: string[];
}

/** A `Range: a-b` / `a-` request header, applied to GET only. */
export interface RangeRequest {
  offset: number;
  /** absent for `a-` */
  limit?: number;
}
