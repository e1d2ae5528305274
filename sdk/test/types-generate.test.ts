/**
 * `schemaToTypeScript`: exact output for a sample schema (the committed
 * fixtures/database.ts, generated from fixtures/schema.json), the mapping rules one by one,
 * and a compile check: the output and a client typed with it pass `tsc --noEmit` under the
 * repository's strict options, and misuses fail it.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, expectTypeOf, it } from "vitest";
import { createClient } from "../src/client/client.ts";
import { schemaToTypeScript } from "../src/types/generate.ts";
import type { Database, Json, Tables, TablesInsert } from "./fixtures/database.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

async function fixture(name: string): Promise<string> {
  return readFile(path.join(here, "fixtures", name), "utf8");
}

/** The lines of the Row/Insert/Update blocks of table `t` in a schema of that one table. */
function generated(columns: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return schemaToTypeScript({ tables: { t: { columns, ...extra } } });
}

describe("schemaToTypeScript", () => {
  it("gives exactly the committed fixture for the sample schema", async () => {
    const schema = JSON.parse(await fixture("schema.json"));
    expect(schemaToTypeScript(schema)).toBe(await fixture("database.ts"));
  });

  it("maps every column type, nullable unless notNull or primaryKey", () => {
    const out = generated({
      k: { type: "text", primaryKey: true },
      a: { type: "text", notNull: true },
      b: { type: "uuid" },
      c: { type: "timestamp", notNull: true },
      d: { type: "date", notNull: true },
      e: { type: "integer", notNull: true },
      f: { type: "float", notNull: true },
      g: { type: "bigint", notNull: true },
      h: { type: "boolean", notNull: true },
      i: { type: "json", notNull: true },
      j: { type: "bytes", notNull: true },
      l: { type: "vector", dimensions: 3 },
    });
    const row = out.slice(out.indexOf("Row: {"), out.indexOf("Insert: {"));
    const fields = row
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^[a-z]+:/.test(l) && !l.startsWith("Row"));
    expect(fields).toEqual([
      "k: string;",
      "a: string;",
      "b: string | null;",
      "c: string;",
      "d: string;",
      "e: number;",
      "f: number;",
      "g: number | string;",
      "h: boolean;",
      "i: Json;",
      "j: string;",
      "l: number[] | null;",
    ]);
  });

  it("makes a column optional on insert when it has a default, may be null, or is a rowid key", () => {
    const out = generated({
      id: { type: "integer", primaryKey: true },
      name: { type: "text", notNull: true },
      n: { type: "integer", notNull: true, default: 0 },
      z: { type: "text", notNull: true, default: null },
      note: { type: "text" },
    });
    const insert = out.slice(out.indexOf("Insert: {"), out.indexOf("Update: {"));
    expect(insert).toContain("id?: number;");
    expect(insert).toContain("name: string;");
    expect(insert).toContain("n?: number;");
    expect(insert).toContain("z?: string;");
    expect(insert).toContain("note?: string | null;");
    const composite = schemaToTypeScript({
      tables: {
        t: { columns: { a: { type: "integer", primaryKey: true }, b: { type: "text", primaryKey: true } } },
      },
    });
    const compositeInsert = composite.slice(composite.indexOf("Insert: {"), composite.indexOf("Update: {"));
    expect(compositeInsert).toContain("a: number;");
    expect(compositeInsert).toContain("b: string;");
    const update = out.slice(out.indexOf("Update: {"), out.indexOf("Relationships"));
    expect(update).toContain("name?: string;");
    expect(update).toContain("id?: number;");
  });

  it("quotes namespaced table names and sorts tables by name", () => {
    const out = schemaToTypeScript({
      tables: {
        "org.z.items": { columns: { id: { type: "uuid", primaryKey: true } } },
        "com.example.todos": { columns: { id: { type: "uuid", primaryKey: true } } },
        apples: { columns: { id: { type: "uuid", primaryKey: true } } },
      },
    });
    const order = [...out.matchAll(/^ {6}("?[\w.]+"?): \{$/gm)].map((m) => m[1]);
    expect(order).toEqual(["apples", '"com.example.todos"', '"org.z.items"']);
  });

  it("adds the server's owner_id to owner tables, once", () => {
    const owned = generated({ id: { type: "uuid", primaryKey: true } }, { policy: { write: "owner" } });
    expect(owned).toContain("owner_id: string | null;");
    expect(owned).toContain("owner_id?: string | null;");
    const declared = generated(
      { id: { type: "uuid", primaryKey: true }, owner_id: { type: "uuid", notNull: true } },
      { policy: { read: "owner" } },
    );
    expect(declared.match(/owner_id/g)).toHaveLength(3); // Row, Insert, Update
    expect(declared).toContain("owner_id: string;");
    expect(generated({ id: { type: "uuid", primaryKey: true } })).not.toContain("owner_id");
  });

  it("bigint: 'number' narrows bigint columns", () => {
    const out = schemaToTypeScript(
      { tables: { t: { columns: { id: { type: "bigint", primaryKey: true } } } } },
      { bigint: "number" },
    );
    expect(out).toContain("id: number;");
    expect(out).not.toContain("number | string");
  });

  it("writes a one-to-one relationship for a unique foreign key, split at the last dot", () => {
    const out = schemaToTypeScript({
      tables: {
        "com.x.lists": { columns: { id: { type: "uuid", primaryKey: true } } },
        "com.x.covers": {
          columns: {
            id: { type: "uuid", primaryKey: true },
            list_id: { type: "uuid", unique: true, references: "com.x.lists.id" },
          },
        },
      },
    });
    expect(out).toContain(
      [
        "        Relationships: [",
        "          {",
        '            foreignKeyName: "com.x.covers_list_id_fkey";',
        '            columns: ["list_id"];',
        "            isOneToOne: true;",
        '            referencedRelation: "com.x.lists";',
        '            referencedColumns: ["id"];',
        "          },",
        "        ];",
      ].join("\n"),
    );
  });

  it("escapes comment terminators in descriptions", () => {
    const out = generated({ id: { type: "uuid", primaryKey: true, description: "a */ b\nsecond line" } });
    expect(out).toContain(
      ["          /**", "           * a *\\/ b", "           * second line", "           */"].join("\n"),
    );
  });

  it("an empty schema is still a Database", () => {
    expect(schemaToTypeScript({ tables: {} })).toContain("    Tables: { [_ in never]: never };");
  });

  it("refuses what is not a schema, naming the place", () => {
    expect(() => schemaToTypeScript(null)).toThrow("Hearth schema: tables must be an object of tables");
    expect(() => schemaToTypeScript({ tables: { t: {} } })).toThrow(
      "tables.t.columns must be an object of columns",
    );
    expect(() => schemaToTypeScript({ tables: { t: { columns: { c: { type: "varchar" } } } } })).toThrow(
      'tables.t.columns.c.type must be one of text integer bigint float boolean timestamp date uuid json bytes vector (got "varchar")',
    );
  });
});

describe("compile check", () => {
  it("the output and a client typed with it pass tsc; misuses fail it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "hearth-types-"));
    try {
      const schema = JSON.parse(await fixture("schema.json"));
      await writeFile(path.join(dir, "database.ts"), schemaToTypeScript(schema));
      const client = path.join(root, "sdk/src/client/client.ts");
      await writeFile(
        path.join(dir, "usage.ts"),
        [
          `import { createClient } from ${JSON.stringify(client)};`,
          'import type { Database, Tables } from "./database.ts";',
          'const db = createClient<Database>("http://h.test/p/abc", { key: "k" });',
          "export async function use(): Promise<void> {",
          '  const { data } = await db.from("posts").select("id,title,score").eq("published", true);',
          "  const title: string | undefined = data?.[0]?.title;",
          "  const score: number | null | undefined = data?.[0]?.score;",
          '  await db.from("com.example.todos").insert({ title: "x" });',
          '  const todo: Tables<"com.example.todos"> = { id: "1", title: "t", done: false, owner_id: null };',
          "  void [title, score, todo];",
          "  // @ts-expect-error title is required on insert",
          '  await db.from("com.example.todos").insert({ done: true });',
          "  // @ts-expect-error no such table",
          '  db.from("nope");',
          "  // @ts-expect-error views is a number",
          '  await db.from("posts").update({ views: "many" }).eq("id", 1);',
          "}",
          "",
        ].join("\n"),
      );
      const tsc = path.join(root, "node_modules/typescript/bin/tsc");
      const args = [
        tsc,
        "--noEmit",
        "--strict",
        "--noUncheckedIndexedAccess",
        "--exactOptionalPropertyTypes",
        "--verbatimModuleSyntax",
        "--allowImportingTsExtensions",
        "--skipLibCheck",
        "--target",
        "es2022",
        "--module",
        "es2022",
        "--moduleResolution",
        "bundler",
        "--lib",
        "es2023,dom",
        "--types",
        "node",
        path.join(dir, "database.ts"),
        path.join(dir, "usage.ts"),
      ];
      const result = await promisify(execFile)(process.execPath, args, { cwd: root }).then(
        () => ({ code: 0, out: "" }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
      expect(result).toEqual({ code: 0, out: "" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("types rows from the generated Database (checked by tsc -p tsconfig.sdk.json)", () => {
    const db = createClient<Database>("http://h.test/p/abc", { key: "k" });
    const query = db.from("posts").select("id,title,meta,author_id");
    type Row = NonNullable<Awaited<typeof query>["data"]>[number];
    expectTypeOf<Row>().toEqualTypeOf<{
      id: number | string;
      title: string;
      meta: Json | null;
      author_id: string | null;
    }>();
    expectTypeOf<TablesInsert<"settings">>().toEqualTypeOf<{
      id?: number;
      key: string;
      value?: string | null;
    }>();
    expectTypeOf<Tables<"com.example.todos">["owner_id"]>().toEqualTypeOf<string | null>();
  });
});
