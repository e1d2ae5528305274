/**
 * Retries with exponential back-off and jitter, on 5xx, 429 and network errors only (a 4xx
 * other than 429 is the caller's mistake and would fail again). Reads (GET, HEAD) are retried
 * by default; writes only when the caller opts in, because a write whose answer was lost may
 * have committed, and sending it again would apply it twice unless it is idempotent.
 */
import { errorFromThrown, HearthError, isAbort } from "../errors.ts";

export interface RetryOptions {
  /** Retries after the first attempt (default 3); 0 turns retrying off. */
  attempts?: number;
  /** The first back-off step in ms (default 300); it doubles on each retry. */
  baseDelayMs?: number;
  /** The longest back-off step in ms (default 10,000). */
  maxDelayMs?: number;
  /**
   * Retry POST, PATCH, PUT and DELETE too (default false). Opt in only when your writes are
   * idempotent (upserts on a key, deletes by key, PATCH setting absolute values).
   */
  writes?: boolean;
  /** The longest `Retry-After` waited for, in ms (default 60,000); a longer one is not retried. */
  maxRetryAfterMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 300,
  maxDelayMs: 10_000,
  writes: false,
  maxRetryAfterMs: 60_000,
};

/** Seams for tests: how to wait and where randomness comes from. */
export interface RetryDeps {
  sleep: (ms: number, signal?: AbortSignal | null) => Promise<void>;
  random: () => number;
}

export function resolveRetry(opts: RetryOptions | false | undefined): RetryPolicy {
  if (opts === false) return { ...DEFAULT_RETRY, attempts: 0 };
  return { ...DEFAULT_RETRY, ...opts };
}

/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new DOMException("Aborted", "AbortError"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new DOMException("Aborted", "AbortError"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const DEPS: RetryDeps = { sleep, random: Math.random };

/** Back-off before retry number `retry` (0-based): half fixed, half random ("equal jitter"). */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return step / 2 + (random() * step) / 2;
}

/** `Retry-After` as ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or bad. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

export function isIdempotent(method: string): boolean {
  const m = method.toUpperCase();
  return m === "GET" || m === "HEAD" || m === "OPTIONS";
}

/** A body that can be sent again as it is (a stream cannot). */
function replayable(body: unknown): boolean {
  return body === undefined || body === null || !(body instanceof ReadableStream);
}

/**
 * `doFetch(url, init)` with retries per `policy`. Answers the last response (a 5xx or 429 too,
 * once retries are spent: its body carries the server's error); rejects with a `HearthError`
 * `HEARTH_NETWORK` when no answer ever came, or `HEARTH_ABORTED` when `init.signal` fired.
 */
export async function fetchWithRetry(
  doFetch: (url: string, init: RequestInit) => Promise<Response>,
  url: string,
  init: RequestInit,
  policy: RetryPolicy,
  deps: RetryDeps = DEPS,
): Promise<Response> {
  const method = init.method ?? "GET";
  const mayRetry = (isIdempotent(method) || policy.writes) && replayable(init.body);
  const maxRetries = mayRetry ? policy.attempts : 0;
  for (let retry = 0; ; retry++) {
    let res: Response;
    try {
      res = await doFetch(url, init);
    } catch (err) {
      if (init.signal?.aborted) throw abortError(err);
      if (isAbort(err) || retry >= maxRetries) throw errorFromThrown(err);
      await wait(deps, backoffMs(policy, retry, deps.random), init.signal);
      continue;
    }
    if (!isRetryableStatus(res.status) || retry >= maxRetries) return res;
    const after = retryAfterMs(res.headers.get("retry-after"));
    if (after !== null && after > policy.maxRetryAfterMs) return res;
    // Free the connection of the answer we drop.
    await res.body?.cancel().catch(() => {});
    await wait(deps, after ?? backoffMs(policy, retry, deps.random), init.signal);
  }
}

async function wait(deps: RetryDeps, ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  try {
    await deps.sleep(ms, signal);
  } catch (err) {
    throw abortError(err);
  }
}

/** The caller's signal fired: whatever the signal's reason, the code is HEARTH_ABORTED. */
function abortError(cause: unknown): HearthError {
  return new HearthError("HEARTH_ABORTED", "The request was aborted", { cause });
}
