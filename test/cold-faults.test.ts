/**
 * The cold tier under failure: a flush interrupted after each of its steps and the object
 * restarted, R2 puts and gets that fail, eviction, the alarm, and forks.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { FlushStep } from "../durable-objects/cold/flush.ts";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import {
  ADMIN_KEY,
  admin,
  adminCall,
  BLOG_SCHEMA,
  call,
  projectWithSchema,
  rest,
  type TestProject,
} from "./helpers/api.ts";
import { catalogDown, faultyBucket, stubOf } from "./helpers/faults.ts";

const testEnv = env as unknown as { PROJECT: DurableObjectNamespace<ProjectDO>; BUCKET: R2Bucket };

function stats(p: TestProject): Promise<Record<string, number>> {
  return admin<Record<string, number>>(p, "stats");
}

async function ids(p: TestProject): Promise<number[]> {
  const res = await rest(p, "/posts?select=id&order=id");
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { id: number }[]).map((r) => r.id);
}

async function seeded(n = 30): Promise<TestProject> {
  const p = await projectWithSchema(BLOG_SCHEMA);
  const res = await rest(p, "/posts", {
    method: "POST",
    body: Array.from({ length: n }, (_, i) => ({ title: `t${i}`, score: i })),
  });
  expect(res.status).toBe(201);
  return p;
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe("a flush interrupted after each step", () => {
  const steps: FlushStep[] = ["segments", "manifest", "catalog", "drop"];
  for (const step of steps) {
    it(`loses and duplicates nothing when it stops after "${step}"`, async () => {
      const p = await seeded();
      await adminCall(p, "flush"); // some rows already cold
      await rest(p, "/posts", { method: "POST", body: [{ title: "hot a" }, { title: "hot b" }] });
      await rest(p, "/posts?id=eq.5", { method: "DELETE" });
      const before = await ids(p);
      await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
        instance.flushHooks = {
          afterStep: (s) => {
            if (s === step) throw new Error(`simulated crash after ${s}`);
          },
        };
      });
      const res = await adminCall(p, "flush");
      expect(res.status).toBe(500);
      await abortAllDurableObjects(); // the process dies; the next request restarts it
      expect(await ids(p)).toEqual(before);
      const s = await stats(p);
      expect((s.hotRows ?? 0) + (s.coldRows ?? 0)).toBe(before.length);
      // A committed manifest is finished on restart; an uncommitted one is forgotten.
      expect(s.manifestVersion).toBe(step === "segments" ? 1 : 2);
      const again = await adminCall(p, "flush");
      expect(again.status).toBe(200);
      expect(await ids(p)).toEqual(before);
      expect((await stats(p)).hotRows).toBe(0);
    });
  }
});

describe("R2 faults", () => {
  it("a failing put leaves the flush undone and the data readable", async () => {
    const p = await seeded();
    const before = await ids(p);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.bucketOverride = faultyBucket(testEnv.BUCKET, { put: true });
    });
    const res = await adminCall(p, "flush");
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("HEARTH_STORAGE_UNAVAILABLE");
    expect(await ids(p)).toEqual(before);
    expect(await stats(p)).toMatchObject({ hotRows: 30, manifestVersion: 0 });
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.bucketOverride = null;
    });
    expect((await adminCall(p, "flush")).status).toBe(200);
    expect(await ids(p)).toEqual(before);
  });

  it("a failing get is a clear 503, and the next read works", async () => {
    const p = await seeded();
    const before = await ids(p);
    expect((await adminCall(p, "flush")).status).toBe(200);
    await abortAllDurableObjects(); // empty the segment cache
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.bucketOverride = faultyBucket(testEnv.BUCKET, { get: true });
    });
    const res = await rest(p, "/posts?select=id");
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("HEARTH_STORAGE_UNAVAILABLE");
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.bucketOverride = null;
    });
    expect(await ids(p)).toEqual(before);
  });
});

describe("D1 faults", () => {
  it("a write after a flush whose catalog commit failed waits for that flush to finish, and survives it", async () => {
    // Found by test/chaos.test.ts: the failed flush left its marker; the next flush's
    // recovery dropped the whole hot tier, taking a row written in between with it.
    const p = await seeded(3);
    const before = await ids(p);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.catalogOverride = catalogDown();
    });
    const failed = await adminCall(p, "flush");
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { code: string }).code).toBe("HEARTH_CATALOG_UNAVAILABLE");
    expect(failed.headers.get("retry-after")).toMatch(/^\d+$/);
    // While the catalog is still down, a write cannot finish the flush first: refused, nothing done.
    const refused = await rest(p, "/posts", { method: "POST", body: { title: "refused" } });
    expect(refused.status).toBe(503);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.catalogOverride = null;
    });
    expect(await ids(p)).toEqual(before);
    // Back up: the write finishes the flush (its rows go cold), then lands hot.
    const ok = await rest(p, "/posts", { method: "POST", body: { title: "after" } });
    expect(ok.status).toBe(201);
    expect(await stats(p)).toMatchObject({ coldRows: 3, hotRows: 1, manifestVersion: 1 });
    expect((await adminCall(p, "flush")).status).toBe(200);
    expect(await ids(p)).toEqual([...before, 4]);
    expect(await stats(p)).toMatchObject({ coldRows: 4, hotRows: 0 });
  });
});

describe("eviction, alarm and freeze", () => {
  it("answers the same after eviction, from R2", async () => {
    const p = await seeded();
    await adminCall(p, "flush");
    await rest(p, "/posts?id=in.(2,3)", { method: "PATCH", body: { title: "x" } });
    const before = await rest(p, "/posts?order=id").then((r) => r.json());
    await abortAllDurableObjects();
    expect(await rest(p, "/posts?order=id").then((r) => r.json())).toEqual(before);
  });

  it("the alarm flushes old changes and freezes an idle project", async () => {
    const p = await seeded();
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.flushAgeMs = 0;
    });
    expect(await runDurableObjectAlarm(stubOf(p))).toBe(true);
    expect(await stats(p)).toMatchObject({ hotRows: 0, coldRows: 30, manifestVersion: 1 });
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.freezeAfterMs = 1;
      instance.lastActivity = Date.now() - 10;
    });
    expect((await rest(p, "/posts", { method: "POST", body: { title: "one more" } })).status).toBe(201);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.lastActivity = Date.now() - 10;
    });
    await runDurableObjectAlarm(stubOf(p));
    const size = await runInDurableObject(stubOf(p), (_i, state) => state.storage.sql.databaseSize);
    expect(size).toBeLessThanOrEqual(8192);
    expect(await ids(p)).toEqual(range(1, 31));
    const woke = await stats(p);
    // version 2 is the freeze's flush, 3 the compaction of its two small segments
    expect(woke).toMatchObject({ hotRows: 0, coldRows: 31, segments: 1, manifestVersion: 3 });
  });
});

describe("fork", () => {
  it("shares the parent's segments and then diverges", async () => {
    const p = await seeded();
    await rest(p, "/posts?id=eq.1", { method: "DELETE" });
    const res = await call(`/v1/projects/${p.id}/fork`, {
      method: "POST",
      key: ADMIN_KEY,
      body: { name: "fork" },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const fork = (await res.json()) as TestProject;
    expect(fork.id).not.toBe(p.id);
    expect(await ids(fork)).toEqual(range(2, 30));
    // No segment was copied into the fork's prefix.
    const own = await testEnv.BUCKET.list({ prefix: `projects/${fork.id}/tables/` });
    expect(own.objects).toHaveLength(0);
    // Writes on either side stay on that side.
    await rest(fork, "/posts?id=eq.2", { method: "DELETE" });
    await rest(p, "/posts?id=eq.3", { method: "DELETE" });
    await adminCall(fork, "flush");
    expect(await ids(fork)).toEqual([1, ...range(3, 30)].filter((i) => i !== 1));
    expect(await ids(p)).toEqual([2, ...range(4, 30)]);
    // The fork's keys are its own.
    expect((await rest(p, "/posts", { key: fork.serviceKey })).status).toBe(401);
  });
});

describe("compaction and garbage collection", () => {
  it("merges small segments, drops tombstones, and deletes what no kept manifest needs", async () => {
    const p = await seeded(10);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.retentionMs = 0;
    });
    for (let i = 0; i < 4; i++) {
      await rest(p, "/posts", { method: "POST", body: [{ title: `more ${i}` }] });
      await rest(p, `/posts?id=eq.${i + 1}`, { method: "DELETE" });
      expect((await adminCall(p, "flush")).status).toBe(200);
    }
    const s = await stats(p);
    expect(s).toMatchObject({ hotRows: 0, coldRows: 10, segments: 1 });
    expect(await ids(p)).toEqual(range(5, 14));
    // Old versions are gone from R2 and from time travel; the current one reads the same.
    const listed = await testEnv.BUCKET.list({ prefix: `projects/${p.id}/tables/posts/` });
    expect(listed.objects.filter((o) => o.key.endsWith(".arrow"))).toHaveLength(1);
    expect((await rest(p, "/posts?as_of=1")).status).toBe(404);
    expect((await rest(p, `/posts?as_of=${s.manifestVersion}`)).status).toBe(200);
  });

  it("keeps segments a fork still refers to", async () => {
    const p = await seeded(10);
    const res = await call(`/v1/projects/${p.id}/fork`, { method: "POST", key: ADMIN_KEY, body: {} });
    const fork = (await res.json()) as TestProject;
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.retentionMs = 0;
    });
    // The parent rewrites everything (tombstone-heavy), so its old segment is garbage to it.
    await rest(p, "/posts?id=lte.5", { method: "DELETE" });
    await adminCall(p, "flush");
    expect(await ids(p)).toEqual(range(6, 10));
    await abortAllDurableObjects();
    expect(await ids(fork)).toEqual(range(1, 10));
    // Deleting the parent project keeps them too.
    expect((await call(`/v1/projects/${p.id}`, { method: "DELETE", key: ADMIN_KEY })).status).toBe(204);
    await abortAllDurableObjects();
    expect(await ids(fork)).toEqual(range(1, 10));
  });
});

describe("segment pruning", () => {
  it("a point read by primary key opens one segment; a range filter skips segments by their min/max", async () => {
    const p = await seeded(50);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.segmentRows = 10;
    });
    await adminCall(p, "flush");
    expect((await stats(p)).segments).toBe(5);
    await abortAllDurableObjects(); // empty cache
    const one = await rest(p, "/posts?id=eq.25&select=title");
    expect(await one.json()).toEqual([{ title: "t24" }]);
    const afterPoint = (await stats(p)).segmentCacheBytes ?? 0;
    expect(afterPoint).toBeGreaterThan(0);
    await abortAllDurableObjects();
    expect(await (await rest(p, "/posts?id=gte.41&select=id")).json()).toHaveLength(10);
    // one segment of five (all about the same size)
    expect((await stats(p)).segmentCacheBytes).toBeLessThan(afterPoint * 1.5);
    expect(await ids(p)).toEqual(range(1, 50));
    expect((await stats(p)).segmentCacheBytes).toBeGreaterThan(afterPoint * 4);
  });
});

describe("edges found in review", () => {
  it("merges more flushed rows than a few bound values hold (a filter JS cannot narrow)", async () => {
    const p = await projectWithSchema({
      tables: { docs: { columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } } } },
    });
    const big = "x".repeat(100_000);
    for (let b = 0; b < 3; b++) {
      const rows = Array.from({ length: 20 }, (_, i) => ({ id: b * 20 + i, body: `${big}${b * 20 + i}` }));
      expect((await rest(p, "/docs", { method: "POST", body: rows })).status).toBe(201);
    }
    await adminCall(p, "flush");
    // `like` is not compiled to a vector filter: all ~6 MB of rows go through SQL.
    const res = await rest(p, "/docs?select=id&body=like.*9&order=id");
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual([{ id: 9 }, { id: 19 }, { id: 29 }, { id: 39 }, { id: 49 }, { id: 59 }]);
    const head = await rest(p, "/docs?body=like.*1", { method: "HEAD", headers: { prefer: "count=exact" } });
    expect(head.headers.get("content-range")).toBe("0-5/6");
  });

  it("forks a frozen project, and wakes with its schema version", async () => {
    const p = await seeded(5);
    const version = ((await (
      await call(`${p.url}/schema`, { key: p.serviceKey })
    ).headers.get("x-hearth-schema-version")) ?? "") as string;
    expect((await adminCall(p, "freeze")).status).toBe(200);
    const res = await call(`/v1/projects/${p.id}/fork`, { method: "POST", key: ADMIN_KEY, body: {} });
    expect(res.status, await res.clone().text()).toBe(201);
    const fork = (await res.json()) as TestProject;
    expect(await ids(fork)).toEqual(range(1, 5));
    const schema = await call(`${p.url}/schema`, { key: p.serviceKey });
    expect(schema.headers.get("x-hearth-schema-version")).toBe(version);
  });

  it("reads a snapshot of a table dropped since", async () => {
    const p = await seeded(5);
    await adminCall(p, "flush");
    const { secrets: _s, posts: _p, ...rest0 } = BLOG_SCHEMA.tables;
    const res = await call(`${p.url}/schema`, {
      method: "PUT",
      key: p.serviceKey,
      body: {
        tables: rest0,
        migrations: [
          { op: "dropTable", table: "posts" },
          { op: "dropTable", table: "secrets" },
        ],
      },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await rest(p, "/posts")).status).toBe(404);
    const old = await rest(p, "/posts?select=id&order=id&as_of=1");
    expect(old.status, await old.clone().text()).toBe(200);
    expect(await old.json()).toEqual(range(1, 5).map((id) => ({ id })));
  });

  it("the alarm flushes deletes of flushed rows", async () => {
    const p = await seeded(5);
    await adminCall(p, "flush");
    await rest(p, "/posts?id=eq.2", { method: "DELETE" });
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.flushAgeMs = 0;
    });
    await runDurableObjectAlarm(stubOf(p));
    expect(await stats(p)).toMatchObject({ hotRows: 0, coldRows: 4, manifestVersion: 2 });
  });
});
