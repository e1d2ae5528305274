/**
 * Export and import of a table with a vector column (docs/vectors.md, "Export"): every
 * vector, hot and flushed, comes back bit for bit from Parquet and from Arrow, and search
 * answers the same on the copy, exactly and, once the copy is flushed, through its index.
 */
import { unzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { float32Text } from "../shared/vector.ts";
import { admin, call, createProject, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";
import { prng } from "./helpers/prng.ts";

const DIMS = 8;
const FLUSHED = 3000; // above VECTOR_INDEX_MIN_ROWS: the flushed segment gets an index
const SCHEMA = {
  tables: {
    docs: {
      columns: {
        id: { type: "integer", primaryKey: true },
        tag: { type: "text" },
        emb: { type: "vector", dimensions: DIMS },
      },
    },
  },
};

type Doc = { id: number; tag: string | null; emb: number[] | null };

/** float32 values (the stored precision), some tiny or huge, as the wire answers them. */
function vector(random: () => number): number[] {
  return Array.from({ length: DIMS }, (_, i) => {
    if (i === 0) return float32Text(Math.fround((random() - 0.5) * 1e-30));
    if (i === 1) return float32Text(Math.fround((random() - 0.5) * 1e30));
    return float32Text(Math.fround((random() - 0.5) * 4));
  });
}

async function all(p: TestProject): Promise<Doc[]> {
  const res = await rest(p, "/docs?order=id&limit=10000");
  expect(res.status).toBe(200);
  return (await res.json()) as Doc[];
}

async function search(p: TestProject, v: number[], exact: boolean) {
  const res = await rest(p, "/rpc/vector_search", {
    method: "POST",
    body: { table: "docs", column: "emb", vector: v, k: 10, metric: "l2", exact, select: "id" },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return {
    how: res.headers.get("x-hearth-vector-search"),
    rows: (await res.json()) as { id: number; _distance: number }[],
  };
}

describe("export and import of vectors", () => {
  it("round-trips hot and flushed vectors exactly (Parquet and Arrow), and search works on the copy", async () => {
    const random = prng(2024);
    const original = await projectWithSchema(SCHEMA);
    const docs: Doc[] = Array.from({ length: FLUSHED }, (_, i) => ({
      id: i + 1,
      tag: i % 5 === 0 ? null : `t${i % 3}`,
      emb: i % 97 === 0 ? null : vector(random),
    }));
    for (let i = 0; i < docs.length; i += 1000) {
      const res = await rest(original, "/docs", { method: "POST", body: docs.slice(i, i + 1000) });
      expect(res.status).toBe(201);
    }
    await admin(original, "flush");
    // after the flush: hot rows, an update of a flushed row's vector, a flushed row deleted
    const hot: Doc[] = [
      { id: 5001, tag: "hot", emb: vector(random) },
      { id: 5002, tag: null, emb: null },
    ];
    expect((await rest(original, "/docs", { method: "POST", body: hot })).status).toBe(201);
    const moved = vector(random);
    expect((await rest(original, "/docs?id=eq.2", { method: "PATCH", body: { emb: moved } })).status).toBe(
      204,
    );
    expect((await rest(original, "/docs?id=eq.3", { method: "DELETE" })).status).toBe(204);
    const expected = [...docs.filter((d) => d.id !== 3), ...hot].map((d) =>
      d.id === 2 ? { ...d, emb: moved } : d,
    );
    expect(await all(original)).toEqual(expected);

    const queries = Array.from({ length: 5 }, () => vector(random).map((x, i) => (i < 2 ? 0 : x)));
    const answers = await Promise.all(queries.map((q) => search(original, q, true)));

    for (const format of ["parquet", "arrow"]) {
      const res = await call(`${original.url}/export${format === "arrow" ? "?format=arrow" : ""}`, {
        key: original.serviceKey,
      });
      expect(res.status).toBe(200);
      const zip = new Uint8Array(await res.arrayBuffer());
      expect(Object.keys(unzipSync(zip))).toContain(`tables/docs.${format}`);
      const copy = await createProject();
      const imported = await call(`${copy.url}/import`, {
        method: "POST",
        key: copy.serviceKey,
        body: zip,
        headers: { "content-type": "application/zip" },
      });
      expect(imported.status, await imported.clone().text()).toBe(200);
      // every vector as it was: the wire's shortest decimals read back as the same float32s
      expect(await all(copy), format).toEqual(expected);
      for (const [j, q] of queries.entries()) {
        const got = await search(copy, q, true);
        expect(got.how).toBe("exact");
        expect(got.rows, format).toEqual(answers[j]!.rows);
      }
      // flushed in the copy: the index is built from the imported vectors and used
      await admin(copy, "flush");
      expect(await all(copy), format).toEqual(expected);
      for (const [j, q] of queries.entries()) {
        const exact = await search(copy, q, true);
        expect(exact.rows, format).toEqual(answers[j]!.rows);
        const approx = await search(copy, q, false);
        expect(approx.how).toBe("approximate; indexed-segments=1");
        // the nearest row is found, with the exact distance
        expect(approx.rows[0], format).toEqual(answers[j]!.rows[0]);
      }
    }
  });
});
