/**
 * `useMutation(table)`: writes through the sync engine when the provider has one (optimistic:
 * visible at once, rolled back if the server rejects them), otherwise through REST.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { HearthClient } from "../client/client.ts";
import type { Row } from "../replica/types.ts";
import type { SyncEngine } from "../sync/engine.ts";
import { useHearth } from "./context.ts";

/**
 * A write the server refused, a `HearthError` with the server's `code` and `message` (sync: a
 * `SyncMutationError`, with `outcome` "rejected" or "expired"); or a `TypeError`
 * for a write that could not be made (an update without columns).
 */
export type MutationError = Error & { code?: string; details?: string | null; hint?: string | null };

export interface MutationOptions {
  /** REST mode: the key column when `update`/`remove` get a bare value (default `id`) */
  primaryKey?: string;
}

export interface Mutation<T extends Row = Row> {
  /** resolves when the server applied it; rejects with the `MutationError` (also kept in `error`) */
  insert(row: Partial<T>): Promise<void>;
  upsert(row: Partial<T>): Promise<void>;
  /** `key`: the primary key's value, or an object of its columns */
  update(key: unknown, values: Partial<T>): Promise<void>;
  remove(key: unknown): Promise<void>;
  /** true while a write made here has not been answered by the server */
  pending: boolean;
  /** the rejection of the last write answered; null once a later one succeeded, or after `reset()` */
  error: MutationError | null;
  reset(): void;
}

/**
 * Writes to `table`. With a sync engine the change shows in `useQuery` at once and is pushed
 * when online (`pending` stays true until the server answered, offline included); a rejection
 * rolls it back. Without one, each call is a REST request. Not awaiting a call is fine: a
 * rejection lands in `error`, never as an unhandled rejection.
 *
 * @example
 * ```ts
 * function AddTodo() {
 *   const { insert, pending, error } = useMutation<Todo>("com.example.todos");
 *   const add = () => insert({ id: crypto.randomUUID(), title: "Buy milk", done: false });
 *   return [pending ? "saving…" : null, error ? `${error.code}: ${error.message}` : null];
 * }
 * ```
 */
export function useMutation<T extends Row = Row>(table: string, options: MutationOptions = {}): Mutation<T> {
  const { client, sync } = useHearth();
  const [inFlight, setInFlight] = useState(0);
  const [error, setError] = useState<MutationError | null>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const primaryKey = options.primaryKey ?? "id";

  const track = useCallback((start: () => PromiseLike<unknown>): Promise<void> => {
    setInFlight((n) => n + 1);
    const done = (err: MutationError | null) => {
      if (!mounted.current) return;
      setInFlight((n) => n - 1);
      setError(err);
    };
    const run = (async () => start())().then(
      () => done(null),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        done(e);
        throw e;
      },
    );
    run.catch(() => {}); // the caller may not await: `error` reports it
    return run;
  }, []);

  const writes = useMemo(
    () => (sync ? syncWrites(sync, table) : restWrites(client, table, primaryKey)),
    [client, sync, table, primaryKey],
  );
  const reset = useCallback(() => setError(null), []);

  return {
    insert: useCallback((row) => track(() => writes.insert(row)), [track, writes]),
    upsert: useCallback((row) => track(() => writes.upsert(row)), [track, writes]),
    update: useCallback((key, values) => track(() => writes.update(key, values)), [track, writes]),
    remove: useCallback((key) => track(() => writes.remove(key)), [track, writes]),
    pending: inFlight > 0,
    error,
    reset,
  };
}

interface Writes {
  insert(row: Row): PromiseLike<unknown>;
  upsert(row: Row): PromiseLike<unknown>;
  update(key: unknown, values: Row): PromiseLike<unknown>;
  remove(key: unknown): PromiseLike<unknown>;
}

function syncWrites(sync: SyncEngine, table: string): Writes {
  return {
    insert: (row) => sync.insert(table, row),
    upsert: (row) => sync.upsert(table, row),
    update: (key, values) => sync.update(table, key, values),
    remove: (key) => sync.delete(table, key),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: any project's client
function restWrites(client: HearthClient<any>, table: string, primaryKey: string): Writes {
  // postgrest-js answers `{ error }`; throwOnError makes it the rejection `track` records.
  const match = (key: unknown) =>
    typeof key === "object" && key !== null ? (key as Record<string, unknown>) : { [primaryKey]: key };
  return {
    insert: (row) => client.from(table).insert(row).throwOnError(),
    upsert: (row) => client.from(table).upsert(row).throwOnError(),
    update: (key, values) => client.from(table).update(values).match(match(key)).throwOnError(),
    remove: (key) => client.from(table).delete().match(match(key)).throwOnError(),
  };
}
