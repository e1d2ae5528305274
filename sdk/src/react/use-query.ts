/**
 * `useQuery(table, options)`: live rows from the sync engine's replica when the provider has
 * one (re-rendered on every local write, rollback and server change), otherwise one REST
 * query when the component mounts or its options change (not live).
 */
import type { PostgrestFilterBuilder } from "@supabase/postgrest-js";
import { useEffect, useRef, useState } from "react";
import type { HearthClient } from "../client/client.ts";
import type { Row } from "../replica/types.ts";
import type { SyncEngine } from "../sync/engine.ts";
import type { OrderBy } from "../sync/query.ts";
import { useHearth } from "./context.ts";

/** postgrest-js's builder after `select`, on any table (its full typing is too deep to carry here). */
// biome-ignore lint/suspicious/noExplicitAny: the builder of any table
export type RestSelect = PostgrestFilterBuilder<any, any, any, any[], string, unknown, "GET">;

export interface UseQueryOptions<T extends Row = Row> {
  /** sync mode: a predicate run on the replica's rows (REST mode: use `filter`) */
  where?: (row: T) => boolean;
  /** both modes: PostgreSQL's order (nulls last going up, first going down) */
  orderBy?: OrderBy<T> | OrderBy<T>[];
  /** both modes */
  limit?: number;
  /** REST mode: the columns (and embeds) to select, default `*`; the replica holds whole rows */
  select?: string;
  /** REST mode: filters on postgrest-js's builder, e.g. `(q) => q.eq("done", false)` */
  filter?: (query: RestSelect) => RestSelect;
  /**
   * Values that `where` or `filter` read: the query runs again when they change (compared as
   * JSON). The functions themselves are not compared: each run uses the latest ones.
   */
  deps?: unknown[];
}

export interface QueryState<T> {
  /** the rows; null until the first answer (kept while a new answer loads) */
  data: T[] | null;
  loading: boolean;
  /**
   * REST: the query's `HearthError`. Sync: the live query's `SyncError`, such as
   * `HEARTH_SYNC_UNKNOWN_TABLE`, or `HEARTH_SYNC_CLIENT` with what a `where` threw as `cause`.
   * Null once an answer came.
   */
  error: Error | null;
}

/**
 * The rows of `table`. With a sync engine in the provider: from the replica, live (re-renders
 * after a local write, a rollback or a change from the server; no network needed). Without
 * one: a REST query through `client.from(table).select()`, run again only when `table` or the
 * options change, so not live.
 *
 * @example
 * ```ts
 * function OpenTodos() {
 *   const { data, loading, error } = useQuery<Todo>("com.example.todos", {
 *     where: (t) => !t.done, // sync mode
 *     filter: (q) => q.eq("done", false), // REST mode
 *     orderBy: "title",
 *   });
 *   if (error) return `Failed: ${error.message}`;
 *   return loading && !data ? "…" : data!.map((t) => t.title).join(", ");
 * }
 * ```
 */
export function useQuery<T extends Row = Row>(
  table: string,
  options: UseQueryOptions<T> = {},
): QueryState<T> {
  const { client, sync } = useHearth();
  const [state, setState] = useState<QueryState<T>>({ data: null, loading: true, error: null });
  const latest = useRef(options);
  latest.current = options;
  const key = optionsKey(options);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` stands for the options (functions read through `latest`)
  useEffect(() => {
    setState((s) => (s.loading && s.error === null ? s : { ...s, loading: true, error: null }));
    const deliver = (next: Partial<QueryState<T>>) => setState((s) => ({ ...s, loading: false, ...next }));
    return sync
      ? liveQuery(sync, table, latest, deliver)
      : restQuery(client, table, latest.current as UseQueryOptions, deliver);
  }, [client, sync, table, key]);

  return state;
}

function optionsKey(o: UseQueryOptions<never>): string {
  return JSON.stringify([o.orderBy ?? null, o.limit ?? null, o.select ?? null, o.deps ?? null]);
}

function liveQuery<T extends Row>(
  sync: SyncEngine,
  table: string,
  latest: { current: UseQueryOptions<T> },
  deliver: (next: Partial<QueryState<T>>) => void,
): () => void {
  const { where, orderBy, limit, filter } = latest.current;
  if (filter && !where) {
    deliver({ error: new TypeError("useQuery: `filter` is for REST mode; with a sync engine pass `where`") });
    return () => {};
  }
  // The latest `where` at each run, so `deps` can change what it reads without a new subscription.
  const current = (row: Row) => latest.current.where?.(row as T) ?? true;
  // The unsubscribe stops both callbacks, so nothing is delivered after unmount.
  return sync.live(
    table,
    {
      ...(where ? { where: current } : {}),
      ...(orderBy !== undefined ? { orderBy: orderBy as OrderBy } : {}),
      ...(limit !== undefined ? { limit } : {}),
    },
    (rows) => deliver({ data: rows as T[], error: null }),
    // A table the engine does not follow, a `where` that threw: this query's error, kept until
    // an answer comes (the next change runs the query again).
    { onError: (error) => deliver({ error }) },
  );
}

function restQuery<T extends Row>(
  // biome-ignore lint/suspicious/noExplicitAny: any project's client
  client: HearthClient<any>,
  table: string,
  options: UseQueryOptions,
  deliver: (next: Partial<QueryState<T>>) => void,
): () => void {
  const { where, filter, orderBy, limit, select } = options;
  if (where && !filter) {
    deliver({
      error: new TypeError(
        "useQuery: `where` runs on a sync engine's replica; without one, filter the REST query with `filter`",
      ),
    });
    return () => {};
  }
  let active = true;
  const controller = new AbortController();
  let query = client.from(table).select(select ?? "*") as unknown as RestSelect;
  if (filter) query = filter(query);
  const orders = orderBy === undefined ? [] : Array.isArray(orderBy) ? orderBy : [orderBy];
  for (const o of orders) {
    const spec = typeof o === "string" ? { column: o } : o;
    query = query.order(spec.column, {
      ascending: spec.ascending ?? true,
      ...(spec.nullsFirst !== undefined ? { nullsFirst: spec.nullsFirst } : {}),
    });
  }
  if (limit !== undefined) query = query.limit(limit);
  query.abortSignal(controller.signal).then(
    ({ data, error }) => {
      if (!active) return;
      deliver(error ? { error: error as Error } : { data: (data ?? []) as T[], error: null });
    },
    (err: unknown) => {
      if (active) deliver({ error: err instanceof Error ? err : new Error(String(err)) });
    },
  );
  return () => {
    active = false;
    controller.abort();
  };
}
