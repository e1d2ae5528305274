/**
 * `rpc/vector_search` (docs/vectors.md) against a brute-force oracle: every metric, with
 * filters and select, before and after a flush, with updates and deletes across the flush
 * boundary; policies as for a normal read; and a clear 4xx for every bad input.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { accessToken, account } from "./helpers/accounts.ts";
import { admin, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";
import { prng } from "./helpers/prng.ts";

const DIMS = 8;
const METRICS = ["cosine", "l2", "dot"] as const;
type Metric = (typeof METRICS)[number];

const SCHEMA = {
  tables: {
    items: {
      columns: {
        id: { type: "integer", primaryKey: true },
        cat: { type: "text" },
        n: { type: "integer" },
        emb: { type: "vector", dimensions: DIMS },
      },
      policy: { read: "public", write: "service" },
    },
    notes: {
      columns: {
        id: { type: "integer", primaryKey: true },
        emb: { type: "vector", dimensions: 2 },
      },
      policy: { read: "owner", write: "owner" },
    },
    secret: {
      columns: { id: { type: "integer", primaryKey: true }, emb: { type: "vector", dimensions: 2 } },
      policy: { read: "service", write: "service" },
    },
  },
};

interface Item {
  id: number;
  cat: string;
  n: number;
  emb: number[] | null;
}

const random = prng(8);
const vec = () => Array.from({ length: DIMS }, () => Math.round((random() * 2 - 1) * 1000) / 1000);

/** The oracle: float32 values, float64 arithmetic, nearest first, ties by id. */
function distance(q: number[], v: number[], metric: Metric): number | null {
  const a = q.map(Math.fround);
  const b = v.map(Math.fround);
  let dot = 0;
  let na = 0;
  let nb = 0;
  let l2 = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
    l2 += (a[i]! - b[i]!) ** 2;
  }
  if (metric === "l2") return Math.sqrt(l2);
  if (metric === "dot") return -dot;
  return nb === 0 ? null : 1 - dot / (Math.sqrt(na) * Math.sqrt(nb));
}

function oracle(
  items: Map<number, Item>,
  q: number[],
  metric: Metric,
  k: number,
  keep: (i: Item) => boolean,
) {
  return [...items.values()]
    .filter((i) => i.emb !== null && keep(i))
    .map((i) => ({ id: i.id, d: distance(q, i.emb!, metric) }))
    .filter((x): x is { id: number; d: number } => x.d !== null)
    .sort((x, y) => x.d - y.d || x.id - y.id)
    .slice(0, k);
}

async function search(p: TestProject, body: Record<string, unknown>, key?: string): Promise<Response> {
  return rest(p, "/rpc/vector_search", { method: "POST", body, ...(key ? { key } : {}) });
}

async function ok(
  p: TestProject,
  body: Record<string, unknown>,
  key?: string,
): Promise<Record<string, unknown>[]> {
  const res = await search(p, body, key);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Record<string, unknown>[];
}

const FILTERS: [string, (i: Item) => boolean][] = [
  ["", () => true],
  ["cat=eq.a", (i) => i.cat === "a"],
  ["n=gte.50&cat=neq.c", (i) => i.n >= 50 && i.cat !== "c"],
  ["or=(cat.eq.b,n.lt.10)", (i) => i.cat === "b" || i.n < 10],
  ["cat=like.*b*", (i) => i.cat.includes("b")], // not compiled for cold rows: verified in SQL
];

async function checkAll(p: TestProject, items: Map<number, Item>, phase: string): Promise<void> {
  const queries = [vec(), vec(), items.values().next().value!.emb ?? vec()];
  for (const metric of METRICS) {
    for (const [filter, keep] of FILTERS) {
      for (const [qi, q] of queries.entries()) {
        const k = [1, 7, 40][qi]!;
        for (const exact of [true, false]) {
          const want = oracle(items, q, metric, k, keep);
          const got = await ok(p, { table: "items", column: "emb", vector: q, k, metric, filter, exact });
          const where = `${phase} ${metric} filter="${filter}" k=${k} exact=${exact}`;
          expect(
            got.map((r) => r.id),
            where,
          ).toEqual(want.map((w) => w.id));
          got.forEach((r, j) => {
            expect(r._distance as number, where).toBeCloseTo(want[j]!.d, 9);
          });
        }
      }
    }
  }
}

describe("vector_search equals a brute-force oracle", () => {
  let p: TestProject;
  const items = new Map<number, Item>();
  beforeAll(async () => {
    p = await projectWithSchema(SCHEMA);
  });

  it("on hot rows, after a flush, with updates/deletes/inserts across the boundary, and after a second flush", async () => {
    for (let id = 1; id <= 200; id++) {
      items.set(id, {
        id,
        cat: ["a", "b", "c", "ab"][id % 4]!,
        n: id % 100,
        emb: id % 37 === 0 ? null : vec(),
      });
    }
    let res = await rest(p, "/items", { method: "POST", body: [...items.values()] });
    expect(res.status, await res.clone().text()).toBe(201);
    await checkAll(p, items, "hot");

    await admin(p, "flush");
    await checkAll(p, items, "flushed");

    // updates of flushed rows (promoted), deletes of flushed rows (tombstones), new hot rows
    for (let id = 1; id <= 200; id += 9) {
      const v = vec();
      res = await rest(p, `/items?id=eq.${id}`, { method: "PATCH", body: { emb: v, cat: "b" } });
      expect(res.status).toBe(204);
      items.set(id, { ...items.get(id)!, emb: v, cat: "b" });
    }
    res = await rest(p, "/items?id=in.(2,3,4,5,50,51,52)", { method: "DELETE" });
    expect(res.status).toBe(204);
    for (const id of [2, 3, 4, 5, 50, 51, 52]) items.delete(id);
    const fresh = Array.from({ length: 30 }, (_, j) => ({ id: 300 + j, cat: "a", n: j, emb: vec() }));
    res = await rest(p, "/items", { method: "POST", body: fresh });
    expect(res.status).toBe(201);
    for (const f of fresh) items.set(f.id, f);
    await checkAll(p, items, "mixed");

    await admin(p, "flush");
    // and rows changed again after the second flush
    res = await rest(p, "/items?id=eq.300", { method: "DELETE" });
    items.delete(300);
    await checkAll(p, items, "reflushed");
  });

  it("returns the selected columns with _distance", async () => {
    const q = vec();
    const rows = await ok(p, {
      table: "items",
      column: "emb",
      vector: q,
      k: 3,
      select: "id,cat",
      metric: "l2",
    });
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(Object.keys(r).sort()).toEqual(["_distance", "cat", "id"]);
    const full = await ok(p, { table: "items", column: "emb", vector: q, k: 1, metric: "l2" });
    expect((full[0]!.emb as number[]).length).toBe(DIMS);
  });
});

describe("vector_search applies policies as a normal read", () => {
  it("owner rows, service-only tables, anon on public tables", async () => {
    const p = await projectWithSchema(SCHEMA);
    await account("vec-alice");
    await account("vec-bob");
    const alice = await accessToken("vec-alice");
    const bob = await accessToken("vec-bob");
    let res = await rest(p, "/notes", { method: "POST", key: alice, body: [{ id: 1, emb: [1, 0] }] });
    expect(res.status).toBe(201);
    res = await rest(p, "/notes", { method: "POST", key: bob, body: [{ id: 2, emb: [1, 0.1] }] });
    expect(res.status).toBe(201);
    const body = { table: "notes", column: "emb", vector: [1, 0], k: 10 };
    expect((await ok(p, body, alice)).map((r) => r.id)).toEqual([1]);
    expect((await ok(p, body, bob)).map((r) => r.id)).toEqual([2]);
    await admin(p, "flush");
    expect((await ok(p, body, alice)).map((r) => r.id)).toEqual([1]);
    expect((await ok(p, body, bob)).map((r) => r.id)).toEqual([2]);
    expect((await ok(p, body)).map((r) => r.id)).toEqual([1, 2]); // the service key passes every policy

    await rest(p, "/secret", { method: "POST", body: { id: 1, emb: [1, 1] } });
    const secret = { table: "secret", column: "emb", vector: [1, 1] };
    const get = await rest(p, "/secret", { key: p.anonKey });
    res = await search(p, secret, p.anonKey);
    expect(res.status).toBe(get.status);
    expect(((await res.json()) as { code: string }).code).toBe(((await get.json()) as { code: string }).code);
    res = await search(p, secret, alice);
    expect(res.status).toBe(403);

    await rest(p, "/items", { method: "POST", body: { id: 1, cat: "a", n: 1, emb: vec() } });
    expect(await ok(p, { table: "items", column: "emb", vector: vec(), k: 5 }, p.anonKey)).toHaveLength(1);
  });
});

describe("vector_search refuses bad input with a clear 4xx", () => {
  it("wrong dimension, NaN, unknown/non-vector column, k out of range, bad metric/filter/body", async () => {
    const p = await projectWithSchema(SCHEMA);
    await rest(p, "/items", { method: "POST", body: { id: 1, cat: "a", n: 1, emb: vec() } });
    const base = { table: "items", column: "emb", vector: vec() };
    const cases: [Record<string, unknown> | string, number, string, RegExp?][] = [
      [{ ...base, vector: [1, 2, 3] }, 400, "HEARTH_VECTOR_INVALID", /expected 8 dimensions, not 3/],
      [{ ...base, vector: "[1,2,3,4,5,6,7,NaN]" }, 400, "HEARTH_VECTOR_INVALID", /invalid vector text/],
      [{ ...base, vector: [1, 2, 3, 4, 5, 6, 7, "NaN"] }, 400, "HEARTH_VECTOR_INVALID", /element 7/],
      [{ ...base, vector: [1, 2, 3, 4, 5, 6, 7, null] }, 400, "HEARTH_VECTOR_INVALID", /element 7/],
      [{ ...base, vector: null }, 400, "HEARTH_VECTOR_INVALID", /expects a vector/],
      [{ ...base, vector: new Array(8).fill(0) }, 400, "HEARTH_VECTOR_INVALID", /zero/],
      [{ ...base, column: "nope" }, 400, "42703"],
      [{ ...base, column: "cat" }, 400, "HEARTH_VECTOR_INVALID", /text column, not a vector/],
      [{ ...base, table: "nope" }, 404, "PGRST205"],
      [{ ...base, k: 0 }, 400, "HEARTH_VECTOR_INVALID", /k must be an integer from 1 to 1000/],
      [{ ...base, k: 1001 }, 400, "HEARTH_VECTOR_INVALID", /k must be/],
      [{ ...base, k: 2.5 }, 400, "HEARTH_VECTOR_INVALID", /k must be/],
      [{ ...base, k: "10" }, 400, "HEARTH_VECTOR_INVALID", /k must be/],
      [{ ...base, metric: "hamming" }, 400, "HEARTH_VECTOR_INVALID", /unknown metric/],
      [{ ...base, filter: "order=id" }, 400, "PGRST100"],
      [{ ...base, filter: "limit=3" }, 400, "PGRST100"],
      [{ ...base, filter: "nope=eq.1" }, 400, "42703"],
      [{ ...base, filter: "n=eq.abc" }, 400, "22P02"],
      [{ ...base, select: "id,count()" }, 400, "PGRST123"],
      [{ ...base, select: "nope" }, 400, "42703"],
      [{ ...base, extra: 1 }, 400, "HEARTH_BAD_REQUEST"],
      [{ column: "emb", vector: vec() }, 400, "HEARTH_BAD_REQUEST"],
      ["not json", 400, "PGRST102"],
    ];
    for (const flushed of [false, true]) {
      if (flushed) await admin(p, "flush");
      for (const [body, status, code, message] of cases) {
        const res = await rest(p, "/rpc/vector_search", { method: "POST", body });
        const got = (await res.json()) as { code: string; message: string };
        expect(res.status, `${JSON.stringify(body)} → ${JSON.stringify(got)}`).toBe(status);
        expect(got.code, JSON.stringify(body)).toBe(code);
        if (message) expect(got.message).toMatch(message);
      }
    }
    let res = await rest(p, "/rpc/vector_search", { method: "GET" });
    expect(res.status).toBe(405);
    res = await rest(p, "/rpc/nope", { method: "POST", body: {} });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe("PGRST202");
  });
});
