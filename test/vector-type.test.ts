/**
 * The vector column type (docs/vectors.md): schema validation, JSON arrays on the wire,
 * float32 in SQLite and in segments (FixedSizeList<Float32>), Arrow bulk inserts, and a
 * clear 400 (HEARTH_VECTOR_INVALID) for every bad value, with nothing written.
 */
import {
  Field,
  FixedSizeList,
  Float32,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
} from "apache-arrow";
import { describe, expect, it } from "vitest";
import { admin, createProject, projectWithSchema, putSchema, rest, type TestProject } from "./helpers/api.ts";
import { connectRealtime } from "./helpers/realtime.ts";

const SCHEMA = {
  tables: {
    docs: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text" },
        embedding: { type: "vector", dimensions: 3 },
      },
    },
  },
};

async function rows(p: TestProject, path: string): Promise<Record<string, unknown>[]> {
  const res = await rest(p, path);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Record<string, unknown>[];
}

async function expectVectorError(res: Response, message: RegExp): Promise<void> {
  const body = (await res.json()) as { code: string; message: string };
  expect(res.status, JSON.stringify(body)).toBe(400);
  expect(body.code).toBe("HEARTH_VECTOR_INVALID");
  expect(body.message).toMatch(message);
}

describe("vector schema", () => {
  it("accepts a vector column with dimensions and refuses bad declarations by path", async () => {
    const p = await createProject();
    expect((await putSchema(p, SCHEMA)).status).toBe(200);
    const bad = [
      [{ type: "vector" }, /needs "dimensions"/],
      [{ type: "vector", dimensions: 0 }, /dimensions/],
      [{ type: "vector", dimensions: 4097 }, /4096/],
      [{ type: "vector", dimensions: 2.5 }, /dimensions/],
      [{ type: "text", dimensions: 3 }, /only for vector columns/],
      [{ type: "vector", dimensions: 3, unique: true }, /primary key or unique/],
      [{ type: "vector", dimensions: 3, encrypted: true }, /cannot be encrypted/],
      [{ type: "vector", dimensions: 2, default: [1, 2, 3] }, /array of 2 finite numbers/],
    ] as const;
    for (const [col, message] of bad) {
      const q = await createProject();
      const res = await putSchema(q, {
        tables: { t: { columns: { id: { type: "integer", primaryKey: true }, v: col } } },
      });
      const body = (await res.json()) as { code: string; message: string; details: string };
      expect(res.status, JSON.stringify(col)).toBe(400);
      expect(body.code).toBe("HEARTH_SCHEMA_INVALID");
      expect(`${body.message} ${body.details}`).toMatch(message);
      expect(body.details).toContain("tables.t.columns.v");
    }
  });
});

describe("vector values", () => {
  it("round-trips JSON arrays as float32 through the hot tier and a flush", async () => {
    const p = await projectWithSchema(SCHEMA);
    const res = await rest(p, "/docs", {
      method: "POST",
      body: [
        { id: 1, title: "a", embedding: [0.1, -2, 3.5] },
        { id: 2, title: "b", embedding: "[1e-3, 0, 1]" },
        { id: 3, title: "c", embedding: null },
      ],
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const expected = [
      { id: 1, title: "a", embedding: [0.1, -2, 3.5] },
      { id: 2, title: "b", embedding: [0.001, 0, 1] },
      { id: 3, title: "c", embedding: null },
    ];
    expect(await rows(p, "/docs?order=id")).toEqual(expected);
    await admin(p, "flush");
    expect(await rows(p, "/docs?order=id")).toEqual(expected);
    // an update across the flush boundary, then a read over hot ∪ cold
    const patch = await rest(p, "/docs?id=eq.2", { method: "PATCH", body: { embedding: [4, 5, 6] } });
    expect(patch.status, await patch.clone().text()).toBe(204);
    expect((await rows(p, "/docs?order=id")).map((r) => r.embedding)).toEqual([
      [0.1, -2, 3.5],
      [4, 5, 6],
      null,
    ]);
    await admin(p, "flush");
    expect((await rows(p, "/docs?id=eq.2"))[0]!.embedding).toEqual([4, 5, 6]);
    // values keep float32 precision: 1/3 is stored as the nearest float32
    await rest(p, "/docs", { method: "POST", body: { id: 4, embedding: [1 / 3, 0, 0] } });
    expect((await rows(p, "/docs?id=eq.4"))[0]!.embedding).toEqual([0.33333334, 0, 0]);
  });

  it("refuses wrong dimensions, non-numbers, NaN and overflow with a clear 400 and writes nothing", async () => {
    const p = await projectWithSchema(SCHEMA);
    const first = await rest(p, "/docs", { method: "POST", body: { id: 1, embedding: [1, 1, 1] } });
    expect(first.status).toBe(201);
    const cases: [unknown, RegExp][] = [
      [[1, 2], /expected 3 dimensions, not 2/],
      [[1, 2, 3, 4], /expected 3 dimensions, not 4/],
      [[1, "x", 3], /element 1/],
      [[1, null, 3], /element 1/],
      ["[1, NaN, 3]", /invalid vector text/],
      [[1, 2, 1e39], /float32 range/],
      [{ a: 1 }, /expects a vector/],
      [[], /1 to 4096/],
      [42, /expects a vector/],
    ];
    for (const [embedding, message] of cases) {
      const res = await rest(p, "/docs", {
        method: "POST",
        body: [
          { id: 1, embedding: [0, 0, 0] },
          { id: 2, embedding },
        ],
      });
      await expectVectorError(res, message);
    }
    const patch = await rest(p, "/docs?id=eq.1", { method: "PATCH", body: { embedding: [1] } });
    await expectVectorError(patch, /expected 3 dimensions/);
    const csv = await rest(p, "/docs", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: 'id,embedding\n5,"[1,2]"\n',
    });
    await expectVectorError(csv, /expected 3 dimensions/);
    expect(await rows(p, "/docs")).toEqual([{ id: 1, title: null, embedding: [1, 1, 1] }]);
  });

  it("bulk-inserts Arrow FixedSizeList<Float32> and keeps it through a flush", async () => {
    const p = await projectWithSchema(SCHEMA);
    const n = 5;
    const floats = Float32Array.from({ length: n * 3 }, (_, i) => i / 4);
    const listType = new FixedSizeList(3, new Field("item", new Float32(), false));
    const schema = new Schema([new Field("id", new Int32(), false), new Field("embedding", listType, true)]);
    const children = [
      makeData({ type: new Int32(), length: n, data: Int32Array.from({ length: n }, (_, i) => i + 1) }),
      makeData({
        type: listType,
        length: n,
        nullCount: 0,
        child: makeData({ type: new Float32(), length: n * 3, data: floats }),
      }),
    ];
    const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
    const body = tableToIPC(new Table([batch]), "stream");
    const res = await rest(p, "/docs", {
      method: "POST",
      headers: { "content-type": "application/vnd.apache.arrow.stream" },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const expected = Array.from({ length: n }, (_, i) => ({
      id: i + 1,
      embedding: [0, 1, 2].map((k) => (i * 3 + k) / 4),
    }));
    expect(await rows(p, "/docs?select=id,embedding&order=id")).toEqual(expected);
    await admin(p, "flush");
    expect(await rows(p, "/docs?select=id,embedding&order=id")).toEqual(expected);
    // a FixedSizeList of the wrong size is refused as a whole
    const wrong = new FixedSizeList(2, new Field("item", new Float32(), false));
    const schema2 = new Schema([new Field("id", new Int32(), false), new Field("embedding", wrong, true)]);
    const kids2 = [
      makeData({ type: new Int32(), length: 1, data: Int32Array.of(99) }),
      makeData({
        type: wrong,
        length: 1,
        nullCount: 0,
        child: makeData({ type: new Float32(), length: 2, data: Float32Array.of(1, 2) }),
      }),
    ];
    const b2 = new RecordBatch(
      schema2,
      makeData({ type: new Struct(schema2.fields), length: 1, children: kids2 }),
    );
    const res2 = await rest(p, "/docs", {
      method: "POST",
      headers: { "content-type": "application/vnd.apache.arrow.stream" },
      body: tableToIPC(new Table([b2]), "stream"),
    });
    await expectVectorError(res2, /expected 3 dimensions, not 2/);
  });
});

describe("vector change events", () => {
  it("realtime carries vectors as JSON arrays, as REST does", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.serviceKey);
    const reply = await c.join("v", {
      postgres_changes: [{ event: "*", schema: "public", table: "docs" }],
    });
    expect(reply.status, JSON.stringify(reply)).toBe("ok");
    let res = await rest(p, "/docs", { method: "POST", body: { id: 1, embedding: [0.1, -2, 3.5] } });
    expect(res.status).toBe(201);
    res = await rest(p, "/docs?id=eq.1", { method: "PATCH", body: { embedding: [1, 2, 3] } });
    expect(res.status).toBe(204);
    await c.waitFor((f) => f[3] === "postgres_changes" && (f[4].data as { type: string }).type === "UPDATE");
    const events = c.changes("v") as {
      type: string;
      record: Record<string, unknown>;
      old_record: Record<string, unknown>;
    }[];
    expect(events[0]!.record.embedding).toEqual([0.1, -2, 3.5]);
    expect(events[1]!.record.embedding).toEqual([1, 2, 3]);
    expect(events[1]!.old_record.embedding).toEqual([0.1, -2, 3.5]);
  });
});
