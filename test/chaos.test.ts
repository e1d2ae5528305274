/**
 * Faults at random (fast-check): a random sequence of writes (inserts, updates, deletes),
 * flushes, flushes that crash after one of their steps, flushes whose R2 puts or D1 catalog commit fail, freezes
 * and evictions of the Durable Object, run against one project. After every step the table
 * must hold exactly the acknowledged state (a model kept beside it): no acknowledged write
 * lost, none doubled, no half-visible flush; and the project must still answer (not stuck).
 * `CHAOS_RUNS` sequences (default 4 in `npm test`; `npm run soak` runs more); the counts of
 * each fault injected are printed at the end.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import type { FlushStep } from "../durable-objects/cold/flush.ts";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { adminCall, BLOG_SCHEMA, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";
import { catalogDown, faultyBucket, stubOf } from "./helpers/faults.ts";

const testEnv = env as unknown as {
  PROJECT: DurableObjectNamespace<ProjectDO>;
  BUCKET: R2Bucket;
  CHAOS_RUNS?: string;
};
const RUNS = Number(testEnv.CHAOS_RUNS) || 4;
vi.setConfig({ testTimeout: Math.max(60_000, RUNS * 20_000) });

type Op =
  | { kind: "insert"; n: number }
  | { kind: "update"; pick: number; score: number }
  | { kind: "delete"; pick: number }
  | { kind: "flush" }
  | { kind: "crash"; step: FlushStep }
  | { kind: "r2down" }
  | { kind: "d1down" }
  | { kind: "freeze" }
  | { kind: "evict" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("insert" as const), n: fc.integer({ min: 1, max: 20 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("update" as const),
      pick: fc.nat(),
      score: fc.integer({ min: -1000, max: 1000 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ kind: "flush" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("crash" as const),
      step: fc.constantFrom<FlushStep>("segments", "manifest", "catalog", "drop"),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "r2down" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "d1down" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "freeze" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "evict" as const }) },
);

async function table(p: TestProject): Promise<[number, number | null][]> {
  const res = await rest(p, "/posts?select=id,score&order=id");
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { id: number; score: number | null }[]).map((r) => [r.id, r.score]);
}

const injected: Record<Op["kind"], number> = {
  insert: 0,
  update: 0,
  delete: 0,
  flush: 0,
  crash: 0,
  r2down: 0,
  d1down: 0,
  freeze: 0,
  evict: 0,
};

describe("random faults between writes", () => {
  it("keeps exactly the acknowledged state through flushes, crashes, R2 and D1 failures, freezes and evictions", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 8, maxLength: 24 }), async (ops) => {
        const p = await projectWithSchema(BLOG_SCHEMA);
        const model = new Map<number, number | null>();
        for (const o of ops) {
          injected[o.kind]++;
          const ids = [...model.keys()];
          switch (o.kind) {
            case "insert": {
              const rows = Array.from({ length: o.n }, (_, i) => ({ title: `r${i}`, score: i }));
              const res = await rest(p, "/posts?select=id,score", {
                method: "POST",
                headers: { prefer: "return=representation" },
                body: rows,
              });
              expect(res.status, await res.clone().text()).toBe(201);
              for (const r of (await res.json()) as { id: number; score: number }[]) model.set(r.id, r.score);
              break;
            }
            case "update": {
              if (ids.length === 0) break;
              const id = ids[o.pick % ids.length]!;
              const res = await rest(p, `/posts?id=eq.${id}`, { method: "PATCH", body: { score: o.score } });
              expect(res.status).toBe(204);
              model.set(id, o.score);
              break;
            }
            case "delete": {
              if (ids.length === 0) break;
              const id = ids[o.pick % ids.length]!;
              expect((await rest(p, `/posts?id=eq.${id}`, { method: "DELETE" })).status).toBe(204);
              model.delete(id);
              break;
            }
            case "flush":
              expect((await adminCall(p, "flush")).status).toBe(200);
              break;
            case "crash": {
              await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
                instance.flushHooks = {
                  afterStep: (s) => {
                    if (s === o.step) throw new Error(`simulated crash after ${s}`);
                  },
                };
              });
              const res = await adminCall(p, "flush");
              await res.body?.cancel();
              // The process dies with the flush: the next request starts a new object.
              await abortAllDurableObjects();
              break;
            }
            case "r2down": {
              await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
                instance.bucketOverride = faultyBucket(testEnv.BUCKET, { put: true });
              });
              const res = await adminCall(p, "flush");
              // Nothing to flush answers 200; otherwise a clear 503.
              expect([200, 503]).toContain(res.status);
              await res.body?.cancel();
              await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
                instance.bucketOverride = null;
              });
              break;
            }
            case "d1down": {
              await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
                instance.catalogOverride = catalogDown();
              });
              const res = await adminCall(p, "flush");
              expect([200, 503]).toContain(res.status);
              await res.body?.cancel();
              await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
                instance.catalogOverride = null;
              });
              break;
            }
            case "freeze":
              expect((await adminCall(p, "freeze")).status).toBe(200);
              break;
            case "evict":
              await abortAllDurableObjects();
              break;
          }
          const expected = [...model].sort((a, b) => a[0] - b[0]);
          expect(await table(p), `after ${JSON.stringify(o)}`).toEqual(expected);
        }
        // Not stuck: a plain flush and a write still work at the end.
        expect((await adminCall(p, "flush")).status).toBe(200);
        expect((await rest(p, "/posts", { method: "POST", body: { title: "last" } })).status).toBe(201);
      }),
      { numRuns: RUNS },
    );
    console.log(`chaos: ${RUNS} sequences; steps by kind ${JSON.stringify(injected)}`);
  });
});
