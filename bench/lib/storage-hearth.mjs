/**
 * What the storage bench's sections share: how its Hearth servers are configured, a
 * parallel-safe HTTP call, the admin calls (flush, freeze, stats) and waiting for workerd to
 * evict every ProjectDO.
 */
import { setTimeout as delay } from "node:timers/promises";
import { expectStatus, keyHeaders } from "./hearth.mjs";
import { openDurableObjects } from "./local-state.mjs";

/**
 * Flushes and freezes happen only when the bench asks. start.mjs passes the Worker only its
 * own three `--var`s; wrangler hands the process environment to the Worker (as secrets) only
 * with CLOUDFLARE_INCLUDE_PROCESS_ENV.
 */
export const HEARTH_ENV = {
  CLOUDFLARE_INCLUDE_PROCESS_ENV: "true",
  HEARTH_FREEZE_AFTER_SECONDS: "0",
  HEARTH_FLUSH_AGE_SECONDS: "86400",
  HEARTH_FLUSH_ROWS: "1000000000",
  HEARTH_FLUSH_BYTES: "1000000000000",
};
const EVICT_TIMEOUT_MS = 90_000;
/** Same deadline as `request` in hearth.mjs: a request that hangs fails its step, not the run. */
const REQUEST_TIMEOUT_MS = 120_000;
export const KiB = 1024;

export const kib = (b) => (Number.isFinite(b) ? `${(b / KiB).toFixed(1)} KiB` : "–");
/** Milliseconds since `t0` (a `process.hrtime.bigint()`). */
export const elapsed = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Runs `fn(item, i)` over `items`, `concurrency` at a time; resolves the results in order. */
export async function pool(items, concurrency, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** fetch (parallel-safe, unlike the single kept-alive socket of `request`) → `{status, body, ms}`. */
export async function call(url, { method = "GET", headers = {}, body } = {}) {
  const t0 = process.hrtime.bigint();
  try {
    const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    return { status: res.status, body: text, ms: elapsed(t0) };
  } catch (err) {
    // undici says only "fetch failed"; the reason (ECONNRESET, ECONNREFUSED...) is in its cause.
    const cause = err?.cause?.code ?? err?.cause?.message ?? "";
    throw new Error(`${method} ${url} failed after ${elapsed(t0).toFixed(0)} ms: ${err.message} ${cause}`);
  }
}

/**
 * Runs `fn`; an error it throws comes back with the server's state appended (whether it
 * exited, the tail of its output), which a refused connection alone does not tell.
 */
export async function withServerContext(server, fn) {
  try {
    return await fn();
  } catch (err) {
    const exited = server.exited();
    const state = exited ? `the server exited (${JSON.stringify(exited)})` : "the server is still running";
    throw new Error(
      `${err?.message ?? err}\n${state}; its output ends with:\n${server.output().slice(-3000)}`,
    );
  }
}

export const adminCall = async (project, op, what) =>
  JSON.parse(
    expectStatus(
      await call(`${project.url}/admin/v1/${op}`, {
        method: op === "stats" ? "GET" : "POST",
        headers: keyHeaders(project.serviceKey),
      }),
      200,
      what ?? op,
    ).body,
  );

/** Waits until workerd has closed every ProjectDO database (evicted them); resolves the ms waited. */
export async function waitEvicted(stateDir) {
  const t0 = Date.now();
  while (openDurableObjects(stateDir) > 0) {
    if (Date.now() - t0 > EVICT_TIMEOUT_MS) {
      throw new Error(
        `${openDurableObjects(stateDir)} Durable Objects still open after ${EVICT_TIMEOUT_MS / 1000} s`,
      );
    }
    await delay(1_000);
  }
  return Date.now() - t0;
}
