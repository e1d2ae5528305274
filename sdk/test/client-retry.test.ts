/**
 * The retry policy: what is retried (5xx, 429, network errors), what never is (4xx), how long
 * it waits (exponential back-off with jitter, or Retry-After), and that writes are retried only
 * when the caller opted in. Unit level through `fetchWithRetry` with a recorded sleep, then
 * end to end through `createClient(...).from()` with a scripted fetch.
 */
import { describe, expect, it } from "vitest";
import {
  backoffMs,
  DEFAULT_RETRY,
  fetchWithRetry,
  type RetryDeps,
  resolveRetry,
  retryAfterMs,
} from "../src/client/retry.ts";
import { createClient, HearthError } from "../src/index.ts";
import { fakeFetch, json, networkError, PROJECT } from "./fixtures/fake-fetch.ts";

function recordingDeps(random = 0.5): RetryDeps & { waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms), random: () => random };
}

const policy = resolveRetry({});

describe("fetchWithRetry", () => {
  it("retries a 503 and answers the 200 that follows", async () => {
    const f = fakeFetch(
      json(503, { code: "HEARTH_STORAGE_UNAVAILABLE", message: "R2" }),
      json(200, [{ id: 1 }]),
    );
    const deps = recordingDeps();
    const res = await fetchWithRetry(f.fetch, `${PROJECT}/rest/v1/t`, { method: "GET" }, policy, deps);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ id: 1 }]);
    expect(f.calls).toHaveLength(2);
    expect(deps.waits).toHaveLength(1);
  });

  it("never retries a 4xx other than 429", async () => {
    for (const status of [400, 401, 403, 404, 409, 416]) {
      const f = fakeFetch(json(status, { code: "X", message: "no" }));
      const deps = recordingDeps();
      const res = await fetchWithRetry(f.fetch, `${PROJECT}/rest/v1/t`, { method: "GET" }, policy, deps);
      expect(res.status).toBe(status);
      expect(f.calls).toHaveLength(1);
      expect(deps.waits).toEqual([]);
    }
  });

  it("waits exactly Retry-After on a 429 (seconds and HTTP date)", async () => {
    const f = fakeFetch(json(429, {}, { "retry-after": "7" }), json(200, []));
    const deps = recordingDeps();
    await fetchWithRetry(f.fetch, `${PROJECT}/rest/v1/t`, { method: "GET" }, policy, deps);
    expect(deps.waits).toEqual([7000]);
    expect(retryAfterMs("Wed, 21 Oct 2015 07:28:10 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT"))).toBe(
      10_000,
    );
    expect(retryAfterMs("soon")).toBeNull();
  });

  it("gives the 429 back instead of waiting a Retry-After longer than maxRetryAfterMs", async () => {
    const f = fakeFetch(
      json(429, { code: "over_request_rate_limit", msg: "slow down" }, { "retry-after": "120" }),
    );
    const deps = recordingDeps();
    const res = await fetchWithRetry(f.fetch, `${PROJECT}/rest/v1/t`, { method: "GET" }, policy, deps);
    expect(res.status).toBe(429);
    expect(deps.waits).toEqual([]);
  });

  it("retries a network error, then answers", async () => {
    const f = fakeFetch({ throws: networkError() }, { throws: networkError() }, json(200, []));
    const deps = recordingDeps();
    const res = await fetchWithRetry(f.fetch, `${PROJECT}/rest/v1/t`, { method: "GET" }, policy, deps);
    expect(res.status).toBe(200);
    expect(f.calls).toHaveLength(3);
  });

  it("rejects with HEARTH_NETWORK once the retries are spent", async () => {
    const f = fakeFetch(...Array.from({ length: 4 }, () => ({ throws: networkError() })));
    const err = await fetchWithRetry(f.fetch, PROJECT, { method: "GET" }, policy, recordingDeps()).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(HearthError);
    expect(err).toMatchObject({ code: "HEARTH_NETWORK", status: 0 });
    expect(err.message).toContain("ECONNREFUSED");
    expect(f.calls).toHaveLength(1 + DEFAULT_RETRY.attempts);
  });

  it("answers the last 5xx when the retries are spent", async () => {
    const f = fakeFetch(json(500, {}), json(502, {}), json(503, {}), json(504, { code: "last" }));
    const res = await fetchWithRetry(f.fetch, PROJECT, { method: "HEAD" }, policy, recordingDeps());
    expect(res.status).toBe(504);
    expect(f.calls).toHaveLength(4);
  });

  it("does not retry writes unless opted in", async () => {
    for (const method of ["POST", "PATCH", "PUT", "DELETE"]) {
      const f = fakeFetch(json(503, {}));
      const res = await fetchWithRetry(f.fetch, PROJECT, { method, body: "{}" }, policy, recordingDeps());
      expect(res.status).toBe(503);
      expect(f.calls).toHaveLength(1);
      const lost = fakeFetch({ throws: networkError() });
      await expect(
        fetchWithRetry(lost.fetch, PROJECT, { method }, policy, recordingDeps()),
      ).rejects.toMatchObject({
        code: "HEARTH_NETWORK",
      });
      expect(lost.calls).toHaveLength(1);
    }
    const optedIn = fakeFetch(json(503, {}), { throws: networkError() }, json(201, []));
    const res = await fetchWithRetry(
      optedIn.fetch,
      PROJECT,
      { method: "POST", body: "[]" },
      resolveRetry({ writes: true }),
      recordingDeps(),
    );
    expect(res.status).toBe(201);
    expect(optedIn.calls.map((c) => c.body)).toEqual(["[]", "[]", "[]"]);
  });

  it("backs off exponentially with jitter, capped", () => {
    const p = resolveRetry({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect([0, 1, 2, 3, 4].map((n) => backoffMs(p, n, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([0, 1, 2, 3, 4].map((n) => backoffMs(p, n, () => 1))).toEqual([100, 200, 400, 800, 1000]);
  });

  it("stops waiting and rejects with HEARTH_ABORTED when the signal fires", async () => {
    const controller = new AbortController();
    const f = fakeFetch(json(503, {}), json(200, []));
    const pending = fetchWithRetry(
      f.fetch,
      PROJECT,
      { method: "GET", signal: controller.signal },
      {
        ...policy,
        baseDelayMs: 60_000,
      },
    );
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toMatchObject({ code: "HEARTH_ABORTED" });
    expect(f.calls).toHaveLength(1);
  });

  it("attempts: 0 (or retry: false) turns retrying off", async () => {
    const f = fakeFetch(json(503, {}));
    const res = await fetchWithRetry(
      f.fetch,
      PROJECT,
      { method: "GET" },
      resolveRetry(false),
      recordingDeps(),
    );
    expect(res.status).toBe(503);
    expect(f.calls).toHaveLength(1);
  });
});

describe("retries through createClient", () => {
  const fast = { baseDelayMs: 1, maxDelayMs: 2 };

  it("a select is retried after a 503 and resolves with the data", async () => {
    const f = fakeFetch(
      json(503, { code: "HEARTH_STORAGE_UNAVAILABLE", message: "R2" }),
      json(200, [{ id: 1 }]),
    );
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, retry: fast });
    const { data, error, status } = await hearth.from("t").select("id");
    expect({ data, error, status }).toEqual({ data: [{ id: 1 }], error: null, status: 200 });
    expect(f.calls).toHaveLength(2);
  });

  it("an insert is not retried by default, and is with retry.writes", async () => {
    const once = fakeFetch(
      json(503, { code: "HEARTH_STORAGE_UNAVAILABLE", message: "R2", details: null, hint: null }),
    );
    const plain = createClient(PROJECT, { key: "anon", fetch: once.fetch, retry: fast });
    const { error } = await plain.from("t").insert({ a: 1 });
    expect(error).toMatchObject({ code: "HEARTH_STORAGE_UNAVAILABLE", status: 503 });
    expect(once.calls).toHaveLength(1);

    const twice = fakeFetch(json(503, {}), json(201, null));
    const idempotent = createClient(PROJECT, {
      key: "anon",
      fetch: twice.fetch,
      retry: { ...fast, writes: true },
    });
    const res = await idempotent.from("t").upsert({ id: 1, a: 1 });
    expect(res.error).toBeNull();
    expect(res.status).toBe(201);
    expect(twice.calls).toHaveLength(2);
  });

  it(".retry(false) on a query turns retries off for it", async () => {
    const f = fakeFetch(json(503, { code: "HEARTH_STORAGE_UNAVAILABLE", message: "R2" }));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, retry: fast });
    const { error } = await hearth.from("t").select().retry(false);
    expect(error?.code).toBe("HEARTH_STORAGE_UNAVAILABLE");
    expect(f.calls).toHaveLength(1);
  });

  it("postgrest-js's own retry never stacks on ours", async () => {
    const f = fakeFetch(json(503, {}), json(503, {}), json(200, []));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, retry: { ...fast, attempts: 1 } });
    const { status } = await hearth.from("t").select();
    expect(status).toBe(503);
    expect(f.calls).toHaveLength(2);
  });
});
