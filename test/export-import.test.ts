import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { describe, expect, it } from "vitest";
import { requireExportAccess } from "../durable-objects/export.ts";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { readWal } from "../durable-objects/wal.ts";
import { ParquetTableWriter } from "../shared/columnar/parquet.ts";
import { call, createProject, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";

const testEnv = env as unknown as { PROJECT: DurableObjectNamespace<ProjectDO> };

/** Every column type, a self-reference, an owner-scoped table and an increment key. */
const SCHEMA = {
  tables: {
    people: {
      columns: {
        id: { type: "uuid", primaryKey: true, default: "random" },
        name: { type: "text", notNull: true },
        age: { type: "integer" },
        big: { type: "bigint" },
        score: { type: "float" },
        active: { type: "boolean", default: false },
        born: { type: "date" },
        seen: { type: "timestamp", default: "now" },
        meta: { type: "json" },
        avatar: { type: "bytes" },
      },
      indexes: [["name"]],
      policy: { read: "public", write: "service" },
    },
    "com.example.notes": {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        person_id: { type: "uuid", references: "people.id", onDelete: "cascade" },
        parent_id: { type: "bigint", references: "com.example.notes.id" },
        body: { type: "text" },
      },
      policy: { read: "owner", write: "owner" },
    },
    tags: { columns: { name: { type: "text", primaryKey: true } } }, // stays empty
  },
};

const ADA = "0190a3c4-1111-4222-8333-444455556666";
const BOB = "0190a3c4-2222-4222-8333-444455556666";
const PEOPLE = [
  {
    id: ADA,
    name: 'Ada ✓ "quoted"',
    age: -2147483648,
    big: 9007199254740991,
    score: 0.1,
    active: true,
    born: "1815-12-10",
    seen: "2024-02-29T23:59:59.999Z",
    meta: { nested: { list: [1, "two", null, true] }, unicode: "é" },
    avatar: "\\x00ff10",
  },
  {
    id: BOB,
    name: "",
    age: 2147483647,
    big: -9007199254740991,
    score: -1e300,
    active: false,
    born: "2099-01-01",
    seen: "1969-12-31T23:59:59.001Z",
    meta: "just a JSON string",
    avatar: "\\x",
  },
  {
    id: "0190a3c4-3333-4222-8333-444455556666",
    name: "nulls",
    age: null,
    big: null,
    score: null,
    active: null,
    born: null,
    seen: null,
    meta: [1, 2, 3],
    avatar: null,
  },
];

async function seeded(): Promise<TestProject> {
  const p = await projectWithSchema(SCHEMA);
  let res = await rest(p, "/people", { method: "POST", body: PEOPLE });
  expect(res.status).toBe(201);
  // Note 1 points at note 2, which comes after it: loading needs foreign keys checked at commit.
  res = await rest(p, "/com.example.notes", {
    method: "POST",
    body: [
      { id: 2, person_id: ADA, parent_id: null, body: "parent", owner_id: "acct-1" },
      { id: 1, person_id: BOB, parent_id: 2, body: "child", owner_id: "acct-2" },
      { id: 3, person_id: null, parent_id: null, body: null, owner_id: null },
    ],
  });
  expect(res.status).toBe(201);
  // Its id stays used: the sequence must not hand out 3 again after an import.
  res = await rest(p, "/com.example.notes?id=eq.3", { method: "DELETE" });
  expect(res.status).toBe(204);
  return p;
}

async function exportZip(p: TestProject, query = "", key = p.serviceKey): Promise<Uint8Array> {
  const res = await call(`${p.url}/export${query}`, { key });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/zip");
  return new Uint8Array(await res.arrayBuffer());
}

function importZip(p: TestProject, zip: Uint8Array, key = p.serviceKey): Promise<Response> {
  return call(`${p.url}/import`, {
    method: "POST",
    key,
    body: zip,
    headers: { "content-type": "application/zip" },
  });
}

async function snapshot(p: TestProject) {
  const schema = await (await call(`${p.url}/schema`, { key: p.serviceKey })).json();
  const people = await (await rest(p, "/people?order=id")).json();
  const notes = await (await rest(p, "/com.example.notes?order=id")).json();
  return { schema, people, notes };
}

async function expectUntouched(p: TestProject) {
  const res = await call(`${p.url}/schema`, { key: p.serviceKey });
  expect(await res.json()).toEqual({ tables: {} });
  expect(res.headers.get("x-hearth-schema-version")).toBe("0");
  const stats = (await (await call(`${p.url}/admin/v1/stats`, { key: p.serviceKey })).json()) as {
    wal: { entries: number };
  };
  expect(stats.wal.entries).toBe(0);
}

async function expectInvalid(res: Response, ...mentions: string[]) {
  expect(res.status).toBe(400);
  const body = (await res.json()) as { code: string; message: string; details: string | null };
  expect(body.code).toBe("HEARTH_IMPORT_INVALID");
  for (const m of mentions) expect(`${body.message} ${body.details}`).toContain(m);
}

describe("GET {url}/export", () => {
  it("streams schema.json and one Parquet file per table", async () => {
    const p = await seeded();
    const files = unzipSync(await exportZip(p));
    expect(Object.keys(files).sort()).toEqual([
      "schema.json",
      "tables/com.example.notes.parquet",
      "tables/people.parquet",
      "tables/tags.parquet",
    ]);
    expect(JSON.parse(strFromU8(files["schema.json"]!))).toEqual(SCHEMA);
    const people = files["tables/people.parquet"]!;
    const meta = parquetMetadata(people);
    expect(meta.schema.map((e) => [e.name, e.type, e.converted_type, e.logical_type?.type])).toEqual([
      ["root", undefined, undefined, undefined],
      ["id", "FIXED_LEN_BYTE_ARRAY", undefined, "UUID"],
      ["name", "BYTE_ARRAY", "UTF8", "STRING"],
      ["age", "INT32", undefined, undefined],
      ["big", "INT64", undefined, undefined],
      ["score", "DOUBLE", undefined, undefined],
      ["active", "BOOLEAN", undefined, undefined],
      ["born", "INT32", "DATE", "DATE"],
      ["seen", "INT64", "TIMESTAMP_MILLIS", "TIMESTAMP"],
      ["meta", "BYTE_ARRAY", "JSON", "JSON"],
      ["avatar", "BYTE_ARRAY", undefined, undefined],
    ]);
    const rows = await parquetReadObjects({ file: people.slice().buffer, utf8: false });
    const ada = rows.find((r) => r.id === ADA)!;
    expect(ada.big).toBe(9007199254740991n);
    expect((ada.seen as Date).toISOString()).toBe("2024-02-29T23:59:59.999Z");
    expect(ada.meta).toEqual(PEOPLE[0]!.meta);
    expect([...(ada.avatar as Uint8Array)]).toEqual([0, 255, 16]);
    const nulls = rows.find((r) => r.name === "nulls")!;
    expect([nulls.age, nulls.big, nulls.active, nulls.born, nulls.seen, nulls.avatar]).toEqual([
      null,
      null,
      null,
      null,
      null,
      null,
    ]);
    // the managed owner_id column travels too, and the AUTOINCREMENT high-water mark
    const notesMeta = parquetMetadata(files["tables/com.example.notes.parquet"]!);
    expect(notesMeta.schema.map((e) => e.name)).toContain("owner_id");
    expect(notesMeta.key_value_metadata).toEqual([{ key: "hearth.sequence", value: "3" }]);
  });

  it("exports a project without a schema, and refuses unknown formats", async () => {
    const p = await createProject();
    const files = unzipSync(await exportZip(p));
    expect(Object.keys(files)).toEqual(["schema.json"]);
    const res = await call(`${p.url}/export?format=csv`, { key: p.serviceKey });
    expect(res.status).toBe(400);
  });

  it("needs the service key or the owner", async () => {
    const p = await seeded();
    const anon = await call(`${p.url}/export`, { key: p.anonKey });
    expect([401, 403]).toContain(anon.status);
    expect(((await anon.json()) as { code: string }).code).toBe("HEARTH_FORBIDDEN");
    const none = await call(`${p.url}/export`);
    expect(none.status).toBe(401);
    const owner = { role: "authenticated", projectId: p.id, userId: "u", membership: "owner" } as const;
    expect(() => requireExportAccess(owner)).not.toThrow();
    expect(() => requireExportAccess({ ...owner, membership: "admin" })).toThrow(/service key or its owner/);
    expect(() => requireExportAccess({ ...owner, membership: null })).toThrow();
  });
});

describe("POST {url}/import", () => {
  for (const format of ["parquet", "arrow"] as const) {
    it(`restores a ${format} export exactly: rows, values, types, schema, sequence, WAL`, async () => {
      const original = await seeded();
      const zip = await exportZip(original, format === "arrow" ? "?format=arrow" : "");
      if (format === "arrow") expect(Object.keys(unzipSync(zip))).toContain("tables/tags.arrow");
      const copy = await createProject();
      const res = await importZip(copy, zip);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        schemaVersion: 1,
        tables: { people: 3, "com.example.notes": 2, tags: 0 },
        rows: 5,
      });
      const before = await snapshot(original);
      expect(await snapshot(copy)).toEqual(before);
      expect(before.people).toHaveLength(3);
      expect((before.people as { meta: unknown }[]).map((r) => r.meta)).toContainEqual("just a JSON string");
      // the rows are in the WAL, as if inserted
      const wal = await runInDurableObject(
        testEnv.PROJECT.get(testEnv.PROJECT.idFromName(copy.id)),
        (_i, s) => readWal(s.storage.sql, 0, 100),
      );
      expect(wal.map((e) => [e.table, e.op])).toEqual([
        ["people", "INSERT"],
        ["people", "INSERT"],
        ["people", "INSERT"],
        ["com.example.notes", "INSERT"],
        ["com.example.notes", "INSERT"],
      ]);
      // AUTOINCREMENT continues after the exported high-water mark
      const next = await rest(copy, "/com.example.notes", {
        method: "POST",
        body: { body: "new" },
        headers: { prefer: "return=representation" },
      });
      expect(((await next.json()) as { id: number }[])[0]!.id).toBe(4);
      // and an export of the copy is the same zip content
      const again = unzipSync(await exportZip(copy, format === "arrow" ? "?format=arrow" : ""));
      expect(strFromU8(again["schema.json"]!)).toBe(strFromU8(unzipSync(zip)["schema.json"]!));
    });
  }

  it("round-trips tables larger than one batch", async () => {
    const schema = {
      tables: {
        events: {
          columns: {
            id: { type: "integer", primaryKey: true },
            kind: { type: "text" },
            at: { type: "timestamp" },
          },
        },
      },
    };
    const original = await projectWithSchema(schema);
    const total = 23_456;
    for (let start = 0; start < total; start += 8000) {
      const rows = [];
      for (let i = start; i < Math.min(total, start + 8000); i++) {
        rows.push({ id: i, kind: i % 7 === 0 ? null : `k${i % 13}`, at: new Date(i * 1000).toISOString() });
      }
      const res = await rest(original, "/events", { method: "POST", body: rows });
      expect(res.status).toBe(201);
    }
    for (const query of ["", "?format=arrow"]) {
      const zip = await exportZip(original, query);
      if (!query) {
        const meta = parquetMetadata(unzipSync(zip)["tables/events.parquet"]!);
        expect(meta.row_groups.map((g) => Number(g.num_rows))).toEqual([10_000, 10_000, 3_456]);
      }
      const copy = await createProject();
      const res = await importZip(copy, zip);
      expect(res.status).toBe(200);
      const count = await rest(copy, "/events?select=id&limit=1", { headers: { prefer: "count=exact" } });
      expect(count.headers.get("content-range")).toBe(`0-0/${total}`);
      const sample = await rest(copy, "/events?id=in.(0,7,12345,23455)&order=id");
      expect(await sample.json()).toEqual([
        { id: 0, kind: null, at: "1970-01-01T00:00:00.000Z" },
        { id: 7, kind: null, at: "1970-01-01T00:00:07.000Z" },
        { id: 12345, kind: `k${12345 % 13}`, at: new Date(12345000).toISOString() },
        { id: 23455, kind: `k${23455 % 13}`, at: new Date(23455000).toISOString() },
      ]);
    }
  });

  it("loads wide rows: more than SQLite's ~2 MB per statement of 2,000 rows", async () => {
    const schema = {
      tables: { docs: { columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } } } },
    };
    const chunks: Uint8Array[] = [];
    const writer = new ParquetTableWriter(
      [
        { name: "id", type: "integer" },
        { name: "body", type: "text" },
      ],
      (b) => chunks.push(b),
    );
    const ids = Array.from({ length: 3000 }, (_, i) => i);
    writer.writeRowGroup([ids, ids.map((i) => `${i}:${"é".repeat(1500)}`)]);
    writer.finish();
    const parquet = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      parquet.set(c, at);
      at += c.length;
    }
    const p = await createProject();
    const zip = zipSync({ "schema.json": strToU8(JSON.stringify(schema)), "tables/docs.parquet": parquet });
    const res = await importZip(p, zip);
    expect(res.status).toBe(200);
    const last = (await (await rest(p, "/docs?id=eq.2999")).json()) as { body: string }[];
    expect(last[0]!.body).toBe(`2999:${"é".repeat(1500)}`);
  });

  it("replaces an existing schema whose tables are empty", async () => {
    const zip = await exportZip(await seeded());
    const p = await projectWithSchema({
      tables: { other: { columns: { id: { type: "integer", primaryKey: true } } } },
    });
    const res = await importZip(p, zip);
    expect(res.status).toBe(200);
    expect(((await snapshot(p)).schema as { tables: object }).tables).toEqual(SCHEMA.tables);
  });

  it("refuses a project that holds rows with 409, changing nothing", async () => {
    const p = await seeded();
    const before = await snapshot(p);
    const res = await importZip(p, await exportZip(p));
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe("HEARTH_IMPORT_NOT_EMPTY");
    expect(await snapshot(p)).toEqual(before);
  });

  it("applies the body limit (413), writing nothing", async () => {
    const p = await createProject();
    // just over the test configuration's body limit (vitest.config.ts)
    const limit = Number((env as unknown as { HEARTH_MAX_BODY_BYTES: string }).HEARTH_MAX_BODY_BYTES);
    const noise = new Uint8Array(limit + 200_000);
    for (let i = 0; i < noise.length; i += 65_536) crypto.getRandomValues(noise.subarray(i, i + 65_536));
    const zip = zipSync({
      "schema.json": strToU8('{"tables":{}}'),
      "tables/x.parquet": [noise, { level: 0 }],
    });
    const res = await importZip(p, zip);
    expect(res.status).toBe(413);
    await expectUntouched(p);
  });

  it("needs the service key", async () => {
    const p = await createProject();
    const zip = await exportZip(await seeded());
    const res = await importZip(p, zip, p.anonKey);
    expect([401, 403]).toContain(res.status);
    await expectUntouched(p);
  });

  describe("refuses bad zips with 400 HEARTH_IMPORT_INVALID and writes nothing", () => {
    async function members(): Promise<Record<string, Uint8Array>> {
      return unzipSync(await exportZip(await seeded()));
    }
    async function refused(files: Record<string, Uint8Array> | Uint8Array, ...mentions: string[]) {
      const p = await createProject();
      const zip = files instanceof Uint8Array ? files : zipSync(files);
      await expectInvalid(await importZip(p, zip), ...mentions);
      await expectUntouched(p);
    }

    it("not a zip", async () => {
      await refused(strToU8('{"tables": {}}'), "not a zip");
      await refused(new Uint8Array(0), "not a zip");
    });

    it("missing schema.json", async () => {
      const { "schema.json": _s, ...rest } = await members();
      await refused(rest, "schema.json");
    });

    it("schema.json that is not JSON, or not a valid schema", async () => {
      await refused({ ...(await members()), "schema.json": strToU8("{nope") }, "schema.json", "JSON");
      const bad = { tables: { t: { columns: { id: { type: "money", primaryKey: true } } } } };
      await refused({ "schema.json": strToU8(JSON.stringify(bad)) }, "schema.json", "type");
    });

    it("a table file for a table the schema lacks", async () => {
      const files = await members();
      await refused(
        { ...files, "tables/ghost.parquet": files["tables/people.parquet"]! },
        "tables/ghost.parquet",
        "ghost",
      );
    });

    it("a column the schema lacks", async () => {
      const files = await members();
      const schema = structuredClone(SCHEMA) as { tables: { people: { columns: Record<string, unknown> } } };
      delete schema.tables.people.columns.age;
      await refused(
        { ...files, "schema.json": strToU8(JSON.stringify(schema)) },
        "tables/people.parquet",
        '"age"',
      );
    });

    it("a corrupt Parquet file, even after other tables loaded", async () => {
      const files = await members();
      const notes = files["tables/com.example.notes.parquet"]!;
      // people loads first (notes reference it), then the truncated notes file fails
      await refused(
        { ...files, "tables/com.example.notes.parquet": notes.slice(0, notes.length - 20) },
        "tables/com.example.notes.parquet",
        "Parquet",
      );
      const garbage = notes.slice();
      garbage.fill(7, 4, notes.length - 8);
      await refused(
        { ...files, "tables/com.example.notes.parquet": garbage },
        "tables/com.example.notes.parquet",
      );
    });

    it("a corrupt Arrow file", async () => {
      const files = unzipSync(await exportZip(await seeded(), "?format=arrow"));
      await refused({ ...files, "tables/people.arrow": strToU8("not arrow at all") }, "tables/people.arrow");
    });

    it("rows that break foreign keys or types", async () => {
      const files = await members();
      const { "tables/people.parquet": _p, ...withoutPeople } = files;
      await refused(withoutPeople, "references a row");
      const schema = structuredClone(SCHEMA) as { tables: { people: { columns: Record<string, unknown> } } };
      schema.tables.people.columns.meta = { type: "integer" };
      await refused(
        { ...files, "schema.json": strToU8(JSON.stringify(schema)) },
        "tables/people.parquet",
        "integer",
      );
    });

    it("unexpected members", async () => {
      const files = await members();
      await refused({ ...files, "notes.txt": strToU8("hi") }, "notes.txt");
      // A stored file needs a bucket and a path (test/export-import-files.test.ts has the rest).
      await refused({ ...files, "blobs/a.png": strToU8("png") }, "blobs/a.png", "bucket and a path");
    });
  });
});
