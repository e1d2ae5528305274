/**
 * The query builder is postgrest-js's, unchanged in what it sends. Two things are swapped in,
 * per builder instance (never on postgrest-js's prototypes, which other clients in the same
 * page share): requests go through the client's `send` (credentials, project URL, retries),
 * and a failure comes back as a `HearthError` with the server's code and the HTTP status.
 *
 * postgrest-js's own retry is turned off so the two policies never stack; `.retry(false)` on a
 * query still turns ours off for that query.
 */
import { PostgrestBuilder } from "@supabase/postgrest-js";
import { errorFromBody, errorFromThrown, type HearthError } from "../errors.ts";

/** Sends one request of a query; `retry` is false after `.retry(false)`. */
export type Send = (url: string, init: RequestInit, retry: boolean) => Promise<Response>;

/** The fields of a postgrest-js builder that this module reads or replaces (JS-visible, TS-protected). */
interface BuilderState {
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  shouldThrowOnError: boolean;
  retryEnabled?: boolean;
}

interface Outcome {
  error: unknown;
  status: number;
  [field: string]: unknown;
}

type Then = (
  onfulfilled?: ((v: never) => unknown) | null,
  onrejected?: ((e: unknown) => unknown) | null,
) => Promise<unknown>;
const postgrestThen = PostgrestBuilder.prototype.then as unknown as (
  this: BuilderState,
  onfulfilled: (v: Outcome) => unknown,
) => Promise<unknown>;

function hearthThen(send: Send): Then {
  return function (this: BuilderState, onfulfilled, onrejected) {
    // A copy runs the request, so awaiting the same builder twice behaves the same both times.
    const run = Object.assign(Object.create(Object.getPrototypeOf(this)), this) as BuilderState;
    const throwOnError = this.shouldThrowOnError;
    const retry = this.retryEnabled !== false;
    let failure: HearthError | null = null;
    let requestId: string | null = null;
    run.shouldThrowOnError = false;
    run.retryEnabled = false;
    run.fetch = async (input, init) => {
      try {
        const res = await send(String(input), init ?? {}, retry);
        requestId = res.headers.get("x-request-id");
        return res;
      } catch (err) {
        failure = errorFromThrown(err);
        throw failure;
      }
    };
    return postgrestThen
      .call(run, (res: Outcome) => {
        if (res.error === null || res.error === undefined) return res;
        const error = failure ?? errorFromBody(res.status, res.error, requestId);
        if (throwOnError) throw error;
        return { ...res, error };
      })
      .then(onfulfilled as ((v: unknown) => unknown) | null | undefined, onrejected);
  };
}

const BUILDING_METHODS = ["select", "insert", "upsert", "update", "delete"] as const;

/** `qb` (a postgrest-js query builder) whose requests go through `send` and fail as `HearthError`. */
export function withHearth<T extends object>(qb: T, send: Send): T {
  const then = hearthThen(send);
  const target = qb as unknown as Record<string, (...args: unknown[]) => object>;
  for (const name of BUILDING_METHODS) {
    const build = target[name]!;
    Object.defineProperty(qb, name, {
      configurable: true,
      writable: true,
      value: (...args: unknown[]) => {
        const builder = build.apply(qb, args);
        // Non-enumerable, so the per-request copy in hearthThen falls back to the prototype's.
        // biome-ignore lint/suspicious/noThenProperty: the builder is a thenable; this replaces its then
        Object.defineProperty(builder, "then", { configurable: true, writable: true, value: then });
        return builder;
      },
    });
  }
  return qb;
}
