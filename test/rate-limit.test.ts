/**
 * The per-project request rate limit (durable-objects/request-meter.ts): a token bucket in the
 * project's Durable Object. Over it, 429 HEARTH_RATE_LIMITED with retry-after, nothing done;
 * other projects are not affected; the stats report the counts. Within it, each client (an
 * account, an app grant, an anonymous IP; not the service key) has its own bucket
 * (durable-objects/client-limit.ts). The buckets themselves are tested with a fake clock, so
 * nothing here depends on timing.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ClientLimiter, clientOf, readClientRateLimit } from "../durable-objects/client-limit.ts";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { RequestMeter, readRateLimit } from "../durable-objects/request-meter.ts";
import { account } from "./helpers/accounts.ts";
import {
  admin,
  BLOG_SCHEMA,
  call,
  createProject,
  projectWithSchema,
  rest,
  type TestProject,
} from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";

async function limit(p: TestProject, perSecond: number, burst: number): Promise<void> {
  await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
    instance.meter.limit = { perSecond, burst };
  });
}

describe("the token bucket", () => {
  it("admits a burst, then one request per 1/rate seconds, and says when to retry", () => {
    let now = 0;
    const meter = new RequestMeter({ perSecond: 2, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) meter.admit();
    expect(() => meter.admit()).toThrowError(
      expect.objectContaining({ code: "HEARTH_RATE_LIMITED", status: 429, retryAfterSeconds: 1 }),
    );
    now = 499;
    expect(() => meter.admit()).toThrow();
    now = 1000; // 2 tokens back
    meter.admit();
    meter.admit();
    expect(() => meter.admit()).toThrow();
    now = 100_000; // never more than the burst
    for (let i = 0; i < 3; i++) meter.admit();
    expect(() => meter.admit()).toThrow();
    expect(meter.figures()).toMatchObject({ total: 12, limited: 4 });
  });

  it("is off at 0 and reads its settings from the environment", () => {
    const off = new RequestMeter(readRateLimit({}));
    for (let i = 0; i < 10_000; i++) off.admit();
    expect(readRateLimit({ HEARTH_PROJECT_RATE_LIMIT: "50" })).toEqual({ perSecond: 50, burst: 100 });
    expect(readRateLimit({ HEARTH_PROJECT_RATE_LIMIT: "50", HEARTH_PROJECT_RATE_BURST: "5" })).toEqual({
      perSecond: 50,
      burst: 5,
    });
    expect(readRateLimit({ HEARTH_PROJECT_RATE_LIMIT: "lots" })).toEqual({ perSecond: 0, burst: 1 });
  });
});

describe("a project over its request rate", () => {
  it("answers 429 HEARTH_RATE_LIMITED with retry-after, writes nothing, and leaves other projects alone", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const other = await projectWithSchema(BLOG_SCHEMA);
    // A rate so slow that no token comes back during the test: exactly the burst passes.
    await limit(p, 0.001, 3);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await rest(p, "/posts", { method: "POST", body: { title: `t${i}` } });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
        expect(await res.json()).toMatchObject({
          code: "HEARTH_RATE_LIMITED",
          message: expect.stringContaining("per second"),
        });
      } else await res.body?.cancel();
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
    expect((await rest(other, "/posts")).status).toBe(200);

    await limit(p, 0, 1);
    const rows = (await (await rest(p, "/posts?select=title&order=id")).json()) as { title: string }[];
    expect(rows.map((r) => r.title)).toEqual(["t0", "t1", "t2"]);
    const stats = await admin<{
      requests: { limited: number; total: number; byStatus: Record<string, number> };
    }>(p, "stats");
    // Counted since the object started: the schema and setup requests are in there too.
    expect(stats.requests.limited).toBe(2);
    expect(stats.requests.byStatus["4xx"]).toBeGreaterThanOrEqual(2);
    expect(stats.requests.total).toBeGreaterThanOrEqual(7);
  });
});

describe("storage requests over the project's rate", () => {
  function files(p: TestProject, path: string, init: Parameters<typeof call>[1] = {}) {
    return call(`${p.url}/storage/v1${path}`, { key: p.serviceKey, ...init });
  }

  it("count one token each and are refused with storage-js's error body, 429 and retry-after", async () => {
    const p = await createProject("storage-rate");
    expect((await files(p, "/bucket", { method: "POST", body: { id: "docs" } })).status).toBe(200);
    const put = (name: string) =>
      files(p, `/object/docs/${name}`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: `bytes of ${name}`,
      });
    expect((await put("a.txt")).status).toBe(200);
    await limit(p, 0.001, 4);
    // An upload is several calls to the project (begin, commit): one token.
    expect((await put("b.txt")).status).toBe(200);
    // Signing many paths at once is one request too.
    const signed = await files(p, "/object/sign/docs", {
      method: "POST",
      body: { expiresIn: 60, paths: ["a.txt", "b.txt", "missing.txt"] },
    });
    expect(signed.status).toBe(200);
    expect(((await signed.json()) as { error: string | null }[]).map((s) => s.error === null)).toEqual([
      true,
      true,
      false,
    ]);
    expect((await files(p, "/object/docs/a.txt")).status).toBe(200);
    const listed = await files(p, "/object/list/docs", { method: "POST", body: { prefix: "" } });
    expect(listed.status).toBe(200);
    await listed.body?.cancel();

    // The bucket is empty: downloads, uploads, listings and public URLs are refused alike.
    for (const res of [
      await files(p, "/object/docs/a.txt"),
      await put("c.txt"),
      await files(p, "/object/list/docs", { method: "POST", body: { prefix: "" } }),
      await files(p, "/object/public/docs/a.txt", { key: null }),
      await files(p, "/object/sign/docs", { method: "POST", body: { expiresIn: 60, paths: ["a.txt"] } }),
    ]) {
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
      // storage-js builds its StorageApiError from statusCode and message.
      expect(await res.json()).toMatchObject({
        statusCode: "429",
        code: "HEARTH_RATE_LIMITED",
        error: "SlowDown",
        message: expect.stringContaining("per second"),
      });
    }
    // REST shares the same bucket of tokens.
    expect((await rest(p, "/nothing")).status).toBe(429);

    await limit(p, 0, 1);
    const list = await files(p, "/object/list/docs", { method: "POST", body: { prefix: "" } });
    expect(((await list.json()) as { name: string }[]).map((o) => o.name)).toEqual(["a.txt", "b.txt"]);
    const stats = await admin<{ requests: { limited: number } }>(p, "stats");
    expect(stats.requests.limited).toBe(6);
  });
});

async function clientLimit(p: TestProject, perSecond: number, burst: number): Promise<void> {
  await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
    instance.clients.limit = { perSecond, burst };
  });
}

describe("the per-client limit", () => {
  it("gives each client its own bucket, never limits the service key, and reads its settings", () => {
    let now = 0;
    const clients = new ClientLimiter({ perSecond: 1, burst: 2 }, () => now);
    clients.admit("ip:a");
    clients.admit("ip:a");
    expect(() => clients.admit("ip:a")).toThrowError(
      expect.objectContaining({ code: "HEARTH_RATE_LIMITED", status: 429, retryAfterSeconds: 1 }),
    );
    clients.admit("ip:b"); // another client is not affected
    for (let i = 0; i < 100; i++) clients.admit(null); // the service key
    now = 1000;
    clients.admit("ip:a");
    expect(() => clients.admit("ip:a")).toThrow();
    expect(clients.figures()).toMatchObject({ tracked: 2, limited: 2 });
    expect(readClientRateLimit({})).toEqual({ perSecond: 0, burst: 1 });
    expect(readClientRateLimit({ HEARTH_CLIENT_RATE_LIMIT: "10" })).toEqual({ perSecond: 10, burst: 20 });
    expect(readClientRateLimit({ HEARTH_CLIENT_RATE_LIMIT: "10", HEARTH_CLIENT_RATE_BURST: "3" })).toEqual({
      perSecond: 10,
      burst: 3,
    });
    const headers = new Headers({ "cf-connecting-ip": "203.0.113.9" });
    expect(clientOf({ role: "anon", projectId: "p", keyId: "k" }, headers)).toBe("ip:203.0.113.9");
    expect(clientOf({ role: "service", projectId: "p", keyId: "k" }, headers)).toBeNull();
    expect(clientOf({ role: "authenticated", projectId: "p", userId: "u", membership: null }, headers)).toBe(
      "user:u",
    );
    expect(
      clientOf(
        { role: "app", projectId: "p", userId: "u", clientId: "c", grantId: "g", scopes: [] },
        headers,
      ),
    ).toBe("grant:g");
  });

  it("refuses one client over its share with 429 and retry-after, writes nothing, and leaves other clients and the project's budget alone", async () => {
    const p = await projectWithSchema({
      tables: {
        notes: {
          columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } },
          policy: { read: "public", write: "public" },
        },
      },
    });
    await clientLimit(p, 0.001, 2);
    await limit(p, 0.001, 100);
    const anon = (ip: string, init: Parameters<typeof call>[1] = {}) =>
      call(`${p.url}/rest/v1/notes`, {
        key: p.anonKey,
        ...init,
        headers: { "cf-connecting-ip": ip, ...(init.headers as Record<string, string> | undefined) },
      });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await anon("198.51.100.1", { method: "POST", body: { id: i, body: `from a ${i}` } });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
        expect(await res.json()).toMatchObject({
          code: "HEARTH_RATE_LIMITED",
          message: expect.stringContaining("from this client"),
        });
      } else await res.body?.cancel();
    }
    expect(statuses).toEqual([201, 201, 429, 429]);
    // Another IP, an account and the service key each have their own share (or none).
    expect((await anon("198.51.100.2")).status).toBe(200);
    const user = await account("client-limit-user");
    for (let i = 0; i < 2; i++)
      expect((await call(`${p.url}/rest/v1/notes`, { key: user })).status).toBe(200);
    expect((await call(`${p.url}/rest/v1/notes`, { key: user })).status).toBe(429);
    for (let i = 0; i < 5; i++) expect((await rest(p, "/notes")).status).toBe(200);

    const rows = (await (await rest(p, "/notes?select=id&order=id")).json()) as { id: number }[];
    expect(rows.map((r) => r.id)).toEqual([0, 1]);
    const stats = await admin<{
      requests: {
        limited: number;
        clients: { limited: number; tracked: number; limit: { perSecond: number } };
      };
    }>(p, "stats");
    // The refused requests did not spend the project's tokens.
    expect(stats.requests.limited).toBe(0);
    expect(stats.requests.clients).toMatchObject({ limited: 3, tracked: 3, limit: { perSecond: 0.001 } });
  });
});

describe("storage requests over a client's share", () => {
  it("count anonymous downloads per IP and token holders per account, with storage-js's 429 body", async () => {
    const p = await createProject("storage-client-rate");
    const files = (path: string, init: Parameters<typeof call>[1] = {}) =>
      call(`${p.url}/storage/v1${path}`, { key: p.serviceKey, ...init });
    expect((await files("/bucket", { method: "POST", body: { id: "pub", public: true } })).status).toBe(200);
    const put = await files("/object/pub/a.txt", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "hello",
    });
    expect(put.status).toBe(200);
    await clientLimit(p, 0.001, 2);
    const publicGet = (ip: string) =>
      files("/object/public/pub/a.txt", { key: null, headers: { "cf-connecting-ip": ip } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await publicGet("198.51.100.7");
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
        expect(await res.json()).toMatchObject({
          statusCode: "429",
          code: "HEARTH_RATE_LIMITED",
          error: "SlowDown",
          message: expect.stringContaining("from this client"),
        });
      } else await res.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 429]);
    // Another IP has its own share, and the service key has none to run out of.
    const other = await publicGet("198.51.100.8");
    expect(other.status).toBe(200);
    await other.body?.cancel();
    for (let i = 0; i < 4; i++) {
      const res = await files("/object/pub/a.txt");
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    // An account's token: its own share, whatever the IP.
    const user = await account("storage-client-limit");
    const listAs = (ip: string) =>
      files("/object/list/pub", {
        key: user,
        method: "POST",
        body: { prefix: "" },
        headers: { "cf-connecting-ip": ip },
      });
    expect((await listAs("203.0.113.1")).status).toBe(200);
    expect((await listAs("203.0.113.2")).status).toBe(200);
    expect((await listAs("203.0.113.3")).status).toBe(429);
    const stats = await admin<{ requests: { limited: number; clients: { limited: number } } }>(p, "stats");
    expect(stats.requests.limited).toBe(0);
    expect(stats.requests.clients.limited).toBe(2);
  });
});
