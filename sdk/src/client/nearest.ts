/**
 * `.from(table).nearest(column, vector, options)`: the k nearest rows by a vector column,
 * through `POST {url}/rest/v1/rpc/vector_search` (docs/vectors.md). Typed from the
 * `Database` type: `column` must be one of the table's vector columns (`number[]`), and the
 * rows come back with `_distance`.
 */
import { errorFromResponse, errorFromThrown, type HearthError } from "../errors.ts";

export type VectorMetric = "cosine" | "l2" | "dot";

export interface NearestOptions {
  /** How many rows, 1..1000 (default 10). */
  k?: number;
  /** `cosine` (1 − cosine similarity, default), `l2` (Euclidean distance) or `dot` (negated inner product). */
  metric?: VectorMetric;
  /** PostgREST filters as a query string, applied before ranking: `"lang=eq.en&year=gte.2020"`. */
  filter?: string;
  /** PostgREST select (columns, renames, embeds); default `*`. */
  select?: string;
  /** Rank every row instead of using the segments' approximate indexes. */
  exact?: boolean;
  /** Lists of each approximate index to scan (more: slower, better recall). */
  probes?: number;
}

/** The names of `Row`'s vector columns (typed `number[]`, nullable or not). */
export type VectorColumn<Row> = {
  [K in keyof Row]-?: NonNullable<Row[K]> extends readonly number[] ? K : never;
}[keyof Row] &
  string;

export type NearestRow<Row> = Row & { _distance: number };

export type NearestResponse<Row> =
  | { data: NearestRow<Row>[]; error: null; status: number }
  | { data: null; error: HearthError; status: number };

export interface Nearest<Row> {
  /**
   * The `k` rows nearest to `vector` by `column`, nearest first, each with `_distance`.
   * Policies apply as for a read of the table. Resolves `{ data, error, status }`; never rejects.
   *
   * @example
   * ```ts
   * const { data, error } = await hearth
   *   .from("docs")
   *   .nearest("embedding", queryVector, { k: 5, metric: "cosine", filter: "lang=eq.en" });
   * // data: [{ id: 7, title: "…", embedding: [...], _distance: 0.0123 }, ...]
   * ```
   */
  nearest<C extends VectorColumn<Row>>(
    column: C,
    vector: readonly number[] | Float32Array,
    options?: NearestOptions,
  ): Promise<NearestResponse<Row>>;
}

/** Sends the search body (JSON) to the project's `rpc/vector_search` with the client's credentials. */
export type PostSearch = (init: RequestInit) => Promise<Response>;

/** `qb` (one table's query builder) with a `nearest` method (non-enumerable, per instance). */
export function withNearest<T extends object>(qb: T, table: string, post: PostSearch): T {
  const nearest: Nearest<unknown>["nearest"] = async (column, vector, options = {}) => {
    const body = {
      table,
      column,
      vector: Array.from(vector),
      ...(options.k !== undefined ? { k: options.k } : {}),
      ...(options.metric !== undefined ? { metric: options.metric } : {}),
      ...(options.filter !== undefined ? { filter: options.filter } : {}),
      ...(options.select !== undefined ? { select: options.select } : {}),
      ...(options.exact !== undefined ? { exact: options.exact } : {}),
      ...(options.probes !== undefined ? { probes: options.probes } : {}),
    };
    let res: Response;
    try {
      // a POST: the client's retry policy retries it only when writes are retried (retry.ts)
      res = await post({
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      return { data: null, error: errorFromThrown(err), status: 0 };
    }
    if (!res.ok) return { data: null, error: await errorFromResponse(res), status: res.status };
    return { data: (await res.json()) as NearestRow<unknown>[], error: null, status: res.status };
  };
  Object.defineProperty(qb, "nearest", { configurable: true, writable: true, value: nearest });
  return qb;
}

// Hearth's query builders have `nearest` (client.ts adds it to each one `from` returns).
// The types of postgrest-js's builder are extended here; a builder made by postgrest-js or
// supabase-js itself has no such method at run time.
declare module "@supabase/postgrest-js" {
  interface PostgrestQueryBuilder<ClientOptions, Schema, Relation$1, RelationName, Relationships>
    extends Nearest<RowOf<Relation$1>> {}
}

type RowOf<Relation> = Relation extends { Row: infer Row } ? Row : Record<string, unknown>;
