import { Bool, makeData, makeVector, Table, tableToIPC } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { utf8Data } from "./fixtures/arrow.ts";
import { call, createProject, putSchema, rest } from "./helpers/api.ts";

const V1 = {
  tables: {
    todos: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text", notNull: true },
      },
    },
  },
};

describe("PUT/GET {url}/schema", () => {
  it("applies additive migrations, keeps data, refuses destructive ones", async () => {
    const p = await createProject();
    let res = await putSchema(p, V1);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { applied: string[] }).applied.length).toBeGreaterThan(0);
    await rest(p, "/todos", { method: "POST", body: [{ id: 1, title: "keep me" }] });

    const v2 = structuredClone(V1) as typeof V1 & { tables: Record<string, unknown> };
    (v2.tables.todos.columns as Record<string, unknown>).done = {
      type: "boolean",
      notNull: true,
      default: false,
    };
    v2.tables.tags = {
      columns: {
        id: { type: "text", primaryKey: true },
        todo_id: { type: "integer", references: "todos.id" },
      },
    };
    res = await putSchema(p, v2);
    expect(res.status).toBe(200);
    res = await rest(p, "/todos?select=id,title,done");
    expect(await res.json()).toEqual([{ id: 1, title: "keep me", done: false }]);
    // unchanged schema: nothing to apply
    res = await putSchema(p, v2);
    expect(((await res.json()) as { applied: string[] }).applied).toEqual([]);

    // dropping a column without an explicit step is refused, and nothing changes
    res = await putSchema(p, V1);
    expect(res.status).toBe(409);
    const err = (await res.json()) as { code: string; message: string };
    expect(err.code).toBe("HEARTH_SCHEMA_DESTRUCTIVE");
    expect(err.message).toMatch(/done|tags/);
    res = await rest(p, "/todos?select=done");
    expect(res.status).toBe(200);

    res = await call(`${p.url}/schema`, { key: p.serviceKey });
    const got = (await res.json()) as { tables: Record<string, unknown> };
    expect(Object.keys(got.tables).sort()).toEqual(["tags", "todos"]);

    // with explicit steps the drop happens, other data survives
    res = await putSchema(p, {
      ...V1,
      migrations: [
        { op: "dropColumn", table: "todos", column: "done" },
        { op: "dropTable", table: "tags" },
      ],
    });
    expect(res.status).toBe(200);
    res = await rest(p, "/todos");
    expect(await res.json()).toEqual([{ id: 1, title: "keep me" }]);
  });

  it("explains invalid schemas by table and column", async () => {
    const p = await createProject();
    const cases: [unknown, RegExp][] = [
      [
        { tables: { t: { columns: { id: { type: "varchar", primaryKey: true } } } } },
        /tables\.t\.columns\.id\.type/,
      ],
      [{ tables: { t: { columns: { a: { type: "text" } } } } }, /tables\.t.*primary key/],
      [
        { tables: { t: { columns: { id: { type: "integer", primaryKey: true, default: "now" } } } } },
        /tables\.t\.columns\.id\.default/,
      ],
      [
        { tables: { t: { columns: { id: { type: "integer", primaryKey: true, references: "x.id" } } } } },
        /unknown table "x"/,
      ],
      [{ tables: { "bad name": { columns: { id: { type: "integer", primaryKey: true } } } } }, /bad name/],
      [{ nope: 1 }, /nope|tables/],
    ];
    for (const [schema, pattern] of cases) {
      const res = await putSchema(p, schema);
      expect(res.status, JSON.stringify(schema)).toBe(400);
      const body = (await res.json()) as { code: string; message: string; details: string };
      expect(body.code).toBe("HEARTH_SCHEMA_INVALID");
      expect(`${body.message} ${body.details}`).toMatch(pattern);
    }
    const res = await call(`${p.url}/schema`, {
      method: "PUT",
      key: p.serviceKey,
      body: "not json",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    // a project with no schema answers REST calls with a clear 404
    const r2 = await rest(p, "/todos");
    expect(r2.status).toBe(404);
    expect(await r2.json()).toMatchObject({ code: "HEARTH_SCHEMA_MISSING" });
  });

  it("takes namespaced tables in URLs as they are", async () => {
    const p = await createProject();
    const res = await putSchema(p, {
      tables: {
        "com.example.todos": {
          columns: { id: { type: "uuid", primaryKey: true, default: "random" }, t: { type: "text" } },
        },
      },
    });
    expect(res.status).toBe(200);
    const ins = await rest(p, "/com.example.todos?select=t", {
      method: "POST",
      body: { t: "x" },
      headers: { prefer: "return=representation" },
    });
    expect(ins.status).toBe(201);
    expect(await ins.json()).toEqual([{ t: "x" }]);
  });
});

describe("bulk insert from Arrow IPC", () => {
  it("inserts an Arrow stream with typed columns", async () => {
    const p = await createProject();
    await putSchema(p, {
      tables: {
        events: {
          columns: {
            id: { type: "integer", primaryKey: true },
            kind: { type: "text" },
            amount: { type: "float" },
            ok: { type: "boolean" },
          },
        },
      },
    });
    const n = 1000;
    const ids = Int32Array.from({ length: n }, (_, i) => i + 1);
    const amounts = Float64Array.from({ length: n }, (_, i) => i / 2);
    const kinds = Array.from({ length: n }, (_, i) => (i % 2 ? "odd" : "even"));
    const bools = new Uint8Array(Math.ceil(n / 8));
    for (let i = 0; i < n; i++) if (i % 3 === 0) bools[i >> 3]! |= 1 << (i & 7);
    const table = new Table({
      id: makeVector(ids),
      kind: makeVector(utf8Data(kinds)),
      amount: makeVector(amounts),
      ok: makeVector(makeData({ type: new Bool(), length: n, data: bools })),
    });
    const res = await rest(p, "/events", {
      method: "POST",
      headers: { "content-type": "application/vnd.apache.arrow.stream" },
      body: tableToIPC(table, "stream"),
    });
    expect(res.status).toBe(201);
    const check = await rest(p, "/events?select=id,kind,amount,ok&id=in.(1,2,1000)&order=id", {
      headers: { prefer: "count=exact" },
    });
    expect(await check.json()).toEqual([
      { id: 1, kind: "even", amount: 0, ok: true },
      { id: 2, kind: "odd", amount: 0.5, ok: false },
      { id: 1000, kind: "odd", amount: 499.5, ok: true },
    ]);
    const count = await rest(p, "/events?limit=1", { headers: { prefer: "count=exact" } });
    expect(count.headers.get("content-range")).toBe("0-0/1000");
  });
});

describe("migrations the stored rows cannot satisfy", () => {
  it("answers 409 HEARTH_SCHEMA_CONFLICT and changes nothing", async () => {
    const p = await createProject();
    await putSchema(p, V1);
    await rest(p, "/todos", {
      method: "POST",
      body: [
        { id: 1, title: "same" },
        { id: 2, title: "same" },
      ],
    });
    const unique = structuredClone(V1) as { tables: { todos: { columns: Record<string, unknown> } } };
    unique.tables.todos.columns.title = { type: "text", notNull: true, unique: true };
    const res = await putSchema(p, unique);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: "HEARTH_SCHEMA_CONFLICT" });
    const after = await call(`${p.url}/schema`, { key: p.serviceKey });
    expect(await after.json()).toEqual(V1);
  });

  it("refuses on_conflict on a column that is not unique with 400 42P10", async () => {
    const p = await createProject();
    await putSchema(p, V1);
    const res = await rest(p, "/todos?on_conflict=title", { method: "POST", body: [{ id: 1, title: "x" }] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "42P10" });
  });

  it("stores a JSON string in a json column as a string, and parses CSV text", async () => {
    const p = await createProject();
    await putSchema(p, {
      tables: { docs: { columns: { id: { type: "integer", primaryKey: true }, data: { type: "json" } } } },
    });
    await rest(p, "/docs", {
      method: "POST",
      body: [
        { id: 1, data: '{"a":1}' },
        { id: 2, data: "hello" },
      ],
    });
    await rest(p, "/docs", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: 'id,data\n3,"{""a"":1}"',
    });
    const res = await rest(p, "/docs?order=id");
    expect(await res.json()).toEqual([
      { id: 1, data: '{"a":1}' },
      { id: 2, data: "hello" },
      { id: 3, data: { a: 1 } },
    ]);
  });

  it("returns written rows in body order, beyond the read cap", async () => {
    const p = await createProject();
    await putSchema(p, V1);
    const rows = Array.from({ length: 10_050 }, (_, i) => ({ id: 10_050 - i, title: `t${i}` }));
    const res = await rest(p, "/todos?select=id", {
      method: "POST",
      headers: { prefer: "return=representation" },
      body: rows,
    });
    const body = (await res.json()) as { id: number }[];
    expect(body).toHaveLength(10_050);
    expect(body[0]).toEqual({ id: 10_050 });
    expect(body.at(-1)).toEqual({ id: 1 });
  });
});

describe("CORS", () => {
  it("answers preflights without a key and exposes PostgREST headers", async () => {
    const p = await createProject();
    let res = await call(`${p.url}/rest/v1/todos`, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "apikey,prefer",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")).toContain("apikey");
    res = await call(`${p.url}/rest/v1/todos`, {
      key: p.serviceKey,
      headers: { origin: "http://app.example" },
    });
    expect(res.headers.get("access-control-expose-headers")).toContain("content-range");
  });
});
