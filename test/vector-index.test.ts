/**
 * The approximate index (IVF-flat, shared/vector-index.ts; docs/vectors.md): recall@10
 * against exact search on 100k × 128 generated clustered vectors, its encoding, and
 * approximate `rpc/vector_search` over a flushed, indexed segment merged exactly with hot
 * rows, tombstones and updates.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildIvf, decodeIvf, encodeIvf, ivfVectorsAt, probeIvf } from "../shared/vector-index.ts";
import { admin, projectWithSchema, rest } from "./helpers/api.ts";
import { prng } from "./helpers/prng.ts";

const testEnv = env as unknown as { BUCKET: R2Bucket };

/** `n` vectors around `clusters` random centres (Gaussian noise), deterministic. */
function clustered(n: number, dims: number, clusters: number, seed: number, spread = 0.5) {
  const random = prng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
  const centres = Float32Array.from({ length: clusters * dims }, gauss);
  const point = (out: Float32Array, at: number) => {
    const c = Math.floor(random() * clusters);
    for (let i = 0; i < dims; i++) out[at + i] = centres[c * dims + i]! + spread * gauss();
  };
  const matrix = new Float32Array(n * dims);
  for (let r = 0; r < n; r++) point(matrix, r * dims);
  const query = () => {
    const q = new Float32Array(dims);
    point(q, 0);
    return q;
  };
  return { matrix, query };
}

type Metric = "cosine" | "l2" | "dot";

function score(q: Float32Array, m: Float32Array, r: number, dims: number, metric: Metric): number {
  let dot = 0;
  let nb = 0;
  let l2 = 0;
  let na = 0;
  for (let i = 0; i < dims; i++) {
    const a = q[i]!;
    const b = m[r * dims + i]!;
    dot += a * b;
    na += a * a;
    nb += b * b;
    l2 += (a - b) * (a - b);
  }
  return metric === "l2" ? l2 : metric === "dot" ? -dot : 1 - dot / Math.sqrt(na * nb);
}

/** The k nearest rows (insertion into a sorted list of k: cheap for k = 10). */
function topK(rows: Iterable<number>, k: number, d: (r: number) => number): number[] {
  const best: { r: number; d: number }[] = [];
  for (const r of rows) {
    const x = d(r);
    if (best.length === k && x >= best[k - 1]!.d) continue;
    let at = best.length;
    while (at > 0 && best[at - 1]!.d > x) at--;
    best.splice(at, 0, { r, d: x });
    if (best.length > k) best.pop();
  }
  return best.map((b) => b.r);
}

describe("IVF index", () => {
  // ~10-20 s in workerd on this machine (k-means over 100k × 128 and the brute-force oracle)
  it("recall@10 ≥ 0.95 against exact search on 100k × 128 clustered vectors (l2, cosine, dot)", {
    timeout: 180_000,
  }, () => {
    const N = 100_000;
    const DIMS = 128;
    const { matrix, query } = clustered(N, DIMS, 200, 42, 1.2);
    const rows = Uint32Array.from({ length: N }, (_, i) => i);
    const bytes = encodeIvf(buildIvf(matrix, DIMS, rows), matrix);
    const index = decodeIvf(bytes);
    expect(index.version).toBe(2);
    expect(index.lists).toBe(158);
    // version 2 holds the vectors in list order after the index part
    const vectors = new Float32Array(bytes.slice(ivfVectorsAt(index)).buffer);
    expect(vectors.length).toBe(N * DIMS);
    for (const j of [0, 1, 777, N - 1]) {
      const r = index.ids[j]!;
      expect(vectors.subarray(j * DIMS, (j + 1) * DIMS)).toEqual(matrix.subarray(r * DIMS, (r + 1) * DIMS));
    }
    // the index part alone (what a query reads) decodes to the same index
    expect(decodeIvf(bytes.subarray(0, ivfVectorsAt(index))).ids).toEqual(index.ids);
    expect(index.ids.length).toBe(N);
    expect(new Set(index.ids).size).toBe(N); // every row in exactly one list
    const all = Array.from({ length: N }, (_, i) => i);
    for (const metric of ["l2", "cosine", "dot"] as const) {
      let hits = 0;
      const Q = 20;
      for (let j = 0; j < Q; j++) {
        const q = query();
        const exact = topK(all, 10, (r) => score(q, matrix, r, DIMS, metric));
        const approx = topK(probeIvf(index, q, metric), 10, (r) => score(q, matrix, r, DIMS, metric));
        hits += approx.filter((r) => exact.includes(r)).length;
      }
      const recall = hits / (Q * 10);
      expect(recall, metric).toBeGreaterThanOrEqual(0.95);
    }
  });

  it("refuses a corrupt index", () => {
    const { matrix } = clustered(100, 4, 3, 1);
    const index = buildIvf(
      matrix,
      4,
      Uint32Array.from({ length: 100 }, (_, i) => i),
    );
    for (const bytes of [encodeIvf(index, matrix), encodeIvf(index)]) {
      expect(() => decodeIvf(bytes.subarray(0, bytes.length - 4))).toThrow(/bytes, header says/);
      const bad = bytes.slice();
      bad[0] = 0;
      expect(() => decodeIvf(bad)).toThrow(/magic/);
    }
  });

  it("still reads a version 1 index (no vectors): same lists, probed in the segment", () => {
    const { matrix, query } = clustered(3000, 8, 10, 3);
    const index = buildIvf(
      matrix,
      8,
      Uint32Array.from({ length: 3000 }, (_, i) => i),
    );
    const old = decodeIvf(encodeIvf(index));
    expect(old.version).toBe(1);
    expect(old.spread).toBeUndefined();
    expect(old.ids).toEqual(index.ids);
    const q = query();
    expect(probeIvf(old, q, "cosine", 3)).toEqual(probeIvf(index, q, "cosine", 3));
  });
});

describe("approximate vector_search", () => {
  it("reads only the index and the probed lists' vectors; an exact search reads whole segments", async () => {
    const DIMS = 64;
    const N = 3000;
    const p = await projectWithSchema({
      tables: {
        v: {
          columns: { id: { type: "integer", primaryKey: true }, emb: { type: "vector", dimensions: DIMS } },
        },
      },
    });
    const { matrix, query } = clustered(N, DIMS, 30, 11);
    for (let i = 0; i < N; i += 1000) {
      const body = Array.from({ length: 1000 }, (_, j) => ({
        id: i + j,
        emb: Array.from(matrix.subarray((i + j) * DIMS, (i + j + 1) * DIMS)),
      }));
      expect((await rest(p, "/v", { method: "POST", body })).status).toBe(201);
    }
    await admin(p, "flush");
    const cached = async () => (await admin<{ segmentCacheBytes: number }>(p, "stats")).segmentCacheBytes;
    const before = await cached();
    const search = async (exact: boolean) => {
      const res = await rest(p, "/rpc/vector_search", {
        method: "POST",
        body: { table: "v", column: "emb", vector: Array.from(query()), k: 5, metric: "l2", exact },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-hearth-vector-search")).toBe(
        exact ? "exact" : "approximate; indexed-segments=1",
      );
      const rows = (await res.json()) as { emb: number[] }[];
      expect(rows).toHaveLength(5);
      expect(rows[0]!.emb).toHaveLength(DIMS); // the rows' vectors come from the index's lists
    };
    await search(false);
    await search(false);
    const vectorBytes = N * DIMS * 4;
    // the segment is cached without its vectors
    expect((await cached()) - before).toBeLessThan(vectorBytes / 4);
    await search(true);
    expect((await cached()) - before).toBeGreaterThan(vectorBytes);
  });

  it("uses the flushed segment's index, merges hot rows, updates and deletes exactly, and keeps recall", async () => {
    const DIMS = 16;
    const N = 3000;
    const p = await projectWithSchema({
      tables: {
        v: {
          columns: {
            id: { type: "integer", primaryKey: true },
            tag: { type: "integer" },
            emb: { type: "vector", dimensions: DIMS },
          },
        },
      },
    });
    const { matrix, query } = clustered(N, DIMS, 30, 7);
    const body = Array.from({ length: N }, (_, i) => ({
      id: i + 1,
      tag: i % 3,
      emb: Array.from(matrix.subarray(i * DIMS, (i + 1) * DIMS)),
    }));
    for (let i = 0; i < N; i += 1000) {
      const res = await rest(p, "/v", { method: "POST", body: body.slice(i, i + 1000) });
      expect(res.status).toBe(201);
    }
    await admin(p, "flush");
    const listed = await testEnv.BUCKET.list({ prefix: `projects/${p.id}/tables/v/` });
    expect(listed.objects.some((o) => o.key.endsWith(".ivf-emb"))).toBe(true);

    // after the flush: an update moves row 1 next to the query, row 2 is deleted, a hot row is added
    const q = query();
    const near = Array.from(q, (x) => x + 1e-3);
    let res = await rest(p, "/v?id=eq.1", { method: "PATCH", body: { emb: near } });
    expect(res.status).toBe(204);
    res = await rest(p, "/v?id=eq.2", { method: "DELETE" });
    expect(res.status).toBe(204);
    res = await rest(p, "/v", { method: "POST", body: { id: 9999, tag: 0, emb: Array.from(q) } });
    expect(res.status).toBe(201);

    const search = async (vector: number[], metric: string, exact: boolean, filter = "") => {
      const r = await rest(p, "/rpc/vector_search", {
        method: "POST",
        body: { table: "v", column: "emb", vector, k: 10, metric, exact, filter },
      });
      expect(r.status, await r.clone().text()).toBe(200);
      expect(r.headers.get("x-hearth-vector-search")).toBe(
        exact ? "exact" : "approximate; indexed-segments=1",
      );
      return ((await r.json()) as { id: number; _distance: number }[]).map((x) => x.id);
    };
    for (const metric of ["l2", "cosine", "dot"]) {
      const approx = await search(Array.from(q), metric, false);
      if (metric !== "dot") expect(approx.slice(0, 2), metric).toEqual([9999, 1]);
      expect(approx).not.toContain(2);
      let hits = 0;
      const Q = 20;
      for (let j = 0; j < Q; j++) {
        const v = Array.from(query());
        const filter = j % 2 === 0 ? "" : "tag=eq.1";
        const exact = await search(v, metric, true, filter);
        const got = await search(v, metric, false, filter);
        expect(got).not.toContain(2);
        hits += got.filter((id) => exact.includes(id)).length;
      }
      expect(hits / (Q * 10), metric).toBeGreaterThanOrEqual(0.95);
    }
  });
});
