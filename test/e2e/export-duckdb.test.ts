/**
 * The export contract as a data tool sees it: a project exported from the real `npm start`
 * server, unzipped to disk, and every `tables/<table>.parquet` opened by DuckDB (the
 * @duckdb/node-api build from npm, which reads Parquet natively). Checks row counts, column
 * types and a few values of every Hearth column type, nulls included.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { unzipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const SCHEMA = {
  tables: {
    authors: {
      columns: {
        id: { type: "uuid", primaryKey: true },
        name: { type: "text", notNull: true },
        born: { type: "date" },
      },
    },
    "com.example.events": {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        author_id: { type: "uuid", references: "authors.id" },
        n: { type: "integer" },
        score: { type: "float" },
        ok: { type: "boolean" },
        happened_at: { type: "timestamp" },
        meta: { type: "json" },
        raw: { type: "bytes" },
      },
    },
    tags: { columns: { name: { type: "text", primaryKey: true } } }, // stays empty
  },
};

const ADA = "0190a3c4-1111-4222-8333-444455556666";
const EVENTS = 12_345; // more than one row group (10,000 rows each)

async function post(project: Project, table: string, rows: unknown[]): Promise<void> {
  const res = await fetch(`${project.url}/rest/v1/${table}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${project.serviceKey}`,
      "content-type": "application/json",
      prefer: "return=minimal",
    },
    body: JSON.stringify(rows),
  });
  if (res.status !== 201) throw new Error(`POST ${table}: ${res.status} ${await res.text()}`);
}

describe("GET {url}/export opens in DuckDB", () => {
  let dir: string;
  let files: Record<string, Uint8Array>;

  beforeAll(async () => {
    const project = await createProject(server, "export-duckdb");
    await putSchema(project, SCHEMA);
    await post(project, "authors", [
      { id: ADA, name: "Ada", born: "1815-12-10" },
      { id: "0190a3c4-2222-4222-8333-444455556666", name: "Nobody", born: null },
    ]);
    const events = Array.from({ length: EVENTS }, (_, i) => ({
      author_id: i % 2 === 0 ? ADA : null,
      n: i,
      score: i / 4,
      ok: i % 3 === 0,
      happened_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
      meta: i === 0 ? { tags: ["a", "b"], nested: { x: 1 } } : null,
      raw: i === 0 ? "\\xdeadbeef" : null,
    }));
    await post(project, "com.example.events", events);
    const res = await fetch(`${project.url}/export`, {
      headers: { authorization: `Bearer ${project.serviceKey}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/zip");
    files = unzipSync(new Uint8Array(await res.arrayBuffer()));
    dir = mkdtempSync(path.join(tmpdir(), "hearth-export-"));
    // tables/<t>.parquet → <dir>/tables__<t>.parquet: one flat folder is enough here
    for (const [name, bytes] of Object.entries(files)) {
      writeFileSync(path.join(dir, name.replaceAll("/", "__")), bytes);
    }
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function query(sql: string) {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      const reader = await conn.runAndReadAll(sql);
      return {
        types: Object.fromEntries(reader.columnNames().map((n, i) => [n, String(reader.columnTypes()[i])])),
        rows: reader.getRowObjectsJson(),
      };
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  }

  const parquet = (table: string) => `'${path.join(dir, `tables__${table}.parquet`)}'`;

  it("holds schema.json and one Parquet file per table", () => {
    expect(Object.keys(files).sort()).toEqual([
      "schema.json",
      "tables/authors.parquet",
      "tables/com.example.events.parquet",
      "tables/tags.parquet",
    ]);
    expect(JSON.parse(new TextDecoder().decode(files["schema.json"]))).toEqual(SCHEMA);
  });

  it("reads the authors table with its types and nulls", async () => {
    const { types, rows } = await query(`SELECT * FROM read_parquet(${parquet("authors")}) ORDER BY name`);
    expect(types).toEqual({ id: "UUID", name: "VARCHAR", born: "DATE" });
    expect(rows).toEqual([
      { id: ADA, name: "Ada", born: "1815-12-10" },
      { id: "0190a3c4-2222-4222-8333-444455556666", name: "Nobody", born: null },
    ]);
  });

  it("reads an empty table as zero rows of the right type", async () => {
    const { types, rows } = await query(`SELECT * FROM read_parquet(${parquet("tags")})`);
    expect(types).toEqual({ name: "VARCHAR" });
    expect(rows).toEqual([]);
  });

  it("reads every row of a table written in several row groups", async () => {
    const file = parquet("com.example.events");
    const { types } = await query(`SELECT * FROM read_parquet(${file}) LIMIT 0`);
    expect(types).toEqual({
      id: "BIGINT",
      author_id: "UUID",
      n: "INTEGER",
      score: "DOUBLE",
      ok: "BOOLEAN",
      happened_at: "TIMESTAMP WITH TIME ZONE",
      meta: "VARCHAR",
      raw: "BLOB",
    });
    const stats = await query(
      `SELECT count(*) AS rows, sum(n) AS total, count(author_id) AS with_author, ` +
        `min(happened_at)::VARCHAR AS first_at, max(happened_at)::VARCHAR AS last_at, sum(ok::INTEGER) AS oks ` +
        `FROM read_parquet(${file})`,
    );
    expect(stats.rows).toEqual([
      {
        rows: String(EVENTS),
        total: String((EVENTS * (EVENTS - 1)) / 2),
        with_author: String(Math.ceil(EVENTS / 2)),
        first_at: "2024-01-01 00:00:00+00",
        last_at: new Date(Date.UTC(2024, 0, 1) + (EVENTS - 1) * 1000)
          .toISOString()
          .replace("T", " ")
          .replace(".000Z", "+00"),
        oks: String(Math.ceil(EVENTS / 3)),
      },
    ]);
    const groups = await query(`SELECT DISTINCT row_group_id FROM parquet_metadata(${file}) ORDER BY 1`);
    expect(groups.rows.length).toBe(2);
    const first = await query(
      `SELECT id, n, score, meta, hex(raw) AS raw FROM read_parquet(${file}) WHERE n IN (0, 1) ORDER BY n`,
    );
    expect(first.rows).toEqual([
      { id: "1", n: 0, score: 0, meta: '{"tags":["a","b"],"nested":{"x":1}}', raw: "DEADBEEF" },
      { id: "2", n: 1, score: 0.25, meta: null, raw: null },
    ]);
  });
});
