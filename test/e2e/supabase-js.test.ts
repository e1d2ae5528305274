/**
 * Acceptance test of the core data path: an unmodified supabase-js `createClient(project.url,
 * key)` against the real `npm start` server (started by global-setup.ts). Expected values follow
 * PostgREST as Supabase runs it (shared/reference/postgrest-dialect.md): statuses, counts and
 * error codes are checked exactly.
 *
 * Each describe block works in its own project, so reads see a fixed data set and writes
 * cannot disturb them.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { beforeAll, describe, expect, inject, it } from "vitest";
import ws from "ws";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const SCHEMA = {
  tables: {
    authors: {
      columns: {
        id: { type: "uuid", primaryKey: true, default: "random" },
        name: { type: "text", notNull: true },
      },
    },
    posts: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        author_id: { type: "uuid", references: "authors.id" },
        title: { type: "text", notNull: true },
        score: { type: "float" },
        published: { type: "boolean", default: false },
        meta: { type: "json" },
        created_at: { type: "timestamp", default: "now" },
      },
      indexes: [["author_id"]],
    },
    settings: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        key: { type: "text", notNull: true, unique: true },
        value: { type: "text" },
      },
    },
    notes: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        body: { type: "text", notNull: true },
      },
      policy: { read: "public", write: "service" },
    },
    secrets: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        value: { type: "text" },
      },
      policy: { read: "service", write: "service" },
    },
  },
};

const ADA = "00000000-0000-4000-8000-000000000001";
const GRACE = "00000000-0000-4000-8000-000000000002";
const ALAN = "00000000-0000-4000-8000-000000000003";
const AUTHORS = [
  { id: ADA, name: "Ada Lovelace" },
  { id: GRACE, name: "Grace Hopper" },
  { id: ALAN, name: "Alan Turing" },
];
const POSTS = [
  {
    title: "Hello world",
    author_id: ADA,
    score: 4.5,
    published: true,
    meta: { kind: "note", n: 1, tags: ["intro"] },
  },
  { title: "Analytical engine", author_id: ADA, score: 9.25, published: true, meta: { kind: "essay", n: 2 } },
  { title: "Compilers", author_id: GRACE, score: 7, published: false, meta: { kind: "essay", n: 3 } },
  { title: "COBOL notes", author_id: GRACE, score: null, published: false, meta: { kind: "note", n: 10 } },
  { title: "Bugs and moths", author_id: GRACE, score: 2.5, published: true, meta: null },
  { title: "untitled draft", author_id: null, score: 5, published: false, meta: { kind: "draft" } },
];
type Title = (typeof POSTS)[number]["title"];

const TIMESTAMP = expect.stringMatching(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}/);
const UUID = expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

function client(project: Project, key: string): SupabaseClient {
  return createClient(project.url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: ws as never },
  });
}

async function newProject(name: string): Promise<Project> {
  const project = await createProject(server, name);
  await putSchema(project, SCHEMA);
  return project;
}

interface Outcome {
  data: unknown;
  error: unknown;
  count: number | null;
  status: number;
}

/** A success: exact status, data and count, and no error. */
function expectOk(res: Outcome, status: number, data: unknown, count: number | null = null): void {
  expect({ status: res.status, error: res.error, data: res.data, count: res.count }).toEqual({
    status,
    error: null,
    data,
    count,
  });
}

/** A failure: exact status, no data, the given error fields, and exactly PostgREST's four keys. */
function expectError(
  res: Outcome,
  status: number,
  error: { code: string; message?: string; details?: string | null; hint?: string | null },
): void {
  expect({ status: res.status, data: res.data, error: res.error }).toEqual({
    status,
    data: null,
    error: expect.objectContaining(error),
  });
  expect(Object.keys(res.error as object).sort()).toEqual(["code", "details", "hint", "message"]);
}

describe("reads", () => {
  let project: Project;
  let svc: SupabaseClient;
  const ids = new Map<Title, number>();
  const id = (title: Title): number => ids.get(title)!;
  const titles = (...list: Title[]) => list.map((title) => ({ title }));

  beforeAll(async () => {
    project = await newProject("e2e-reads");
    svc = client(project, project.serviceKey);
    const authors = await svc.from("authors").insert(AUTHORS);
    expectOk(authors, 201, null);
    const posts = await svc.from("posts").insert(POSTS).select("id,title");
    expectOk(
      posts,
      201,
      POSTS.map((p) => ({ id: expect.any(Number), title: p.title })),
    );
    const rows = posts.data as { id: number; title: Title }[];
    for (const row of rows) ids.set(row.title, row.id);
    const sorted = rows.map((r) => r.id).every((v, i, all) => i === 0 || v > all[i - 1]!);
    expect(sorted, "ids of an increment key grow in insert order").toBe(true);
  });

  it("selects every column with *", async () => {
    const res = await svc.from("posts").select("*").order("id");
    expectOk(
      res,
      200,
      POSTS.map((p) => ({ ...p, id: id(p.title), created_at: TIMESTAMP })),
    );
  });

  it("filters with eq, neq, gt, gte, lt, lte (neq drops NULLs; repeated columns AND)", async () => {
    const q = () => svc.from("posts").select("title").order("id");
    expectOk(await q().eq("author_id", ADA), 200, titles("Hello world", "Analytical engine"));
    expectOk(
      await q().neq("score", 7),
      200,
      titles("Hello world", "Analytical engine", "Bugs and moths", "untitled draft"),
    );
    expectOk(await q().gt("score", 4.5), 200, titles("Analytical engine", "Compilers", "untitled draft"));
    expectOk(
      await q().gte("score", 4.5),
      200,
      titles("Hello world", "Analytical engine", "Compilers", "untitled draft"),
    );
    expectOk(await q().lt("score", 5), 200, titles("Hello world", "Bugs and moths"));
    expectOk(await q().lte("score", 5), 200, titles("Hello world", "Bugs and moths", "untitled draft"));
    expectOk(
      await q().gte("score", 2.5).lt("score", 7),
      200,
      titles("Hello world", "Bugs and moths", "untitled draft"),
    );
    expectOk(await q().eq("published", true).eq("author_id", GRACE), 200, titles("Bugs and moths"));
  });

  it("filters with like (case-sensitive) and ilike", async () => {
    const q = () => svc.from("posts").select("title").order("id");
    expectOk(await q().like("title", "C%"), 200, titles("Compilers", "COBOL notes"));
    expectOk(await q().like("title", "c%"), 200, []);
    expectOk(await q().like("title", "%ot_s"), 200, titles("COBOL notes", "Bugs and moths"));
    expectOk(await q().ilike("title", "c%"), 200, titles("Compilers", "COBOL notes"));
    expectOk(await q().ilike("title", "%NOTES%"), 200, titles("COBOL notes"));
  });

  it("filters with is and in", async () => {
    const q = () => svc.from("posts").select("title").order("id");
    expectOk(await q().is("score", null), 200, titles("COBOL notes"));
    expectOk(await q().is("author_id", null), 200, titles("untitled draft"));
    expectOk(
      await q().is("published", true),
      200,
      titles("Hello world", "Analytical engine", "Bugs and moths"),
    );
    expectOk(
      await q().in("title", ["Compilers", "Hello world", "nope"]),
      200,
      titles("Hello world", "Compilers"),
    );
    expectOk(
      await q().in("id", [id("Analytical engine"), id("Bugs and moths")]),
      200,
      titles("Analytical engine", "Bugs and moths"),
    );
    expectOk(await q().in("id", []), 200, []);
  });

  it("combines filters with or and not", async () => {
    const q = () => svc.from("posts").select("title").order("id");
    expectOk(
      await q().or("score.gt.8,published.eq.false"),
      200,
      titles("Analytical engine", "Compilers", "COBOL notes", "untitled draft"),
    );
    expectOk(
      await q().or("and(published.eq.true,score.lt.3),title.eq.Compilers"),
      200,
      titles("Compilers", "Bugs and moths"),
    );
    expectOk(
      await q().not("score", "is", null),
      200,
      titles("Hello world", "Analytical engine", "Compilers", "Bugs and moths", "untitled draft"),
    );
    expectOk(
      await q().not("title", "like", "C%"),
      200,
      titles("Hello world", "Analytical engine", "Bugs and moths", "untitled draft"),
    );
    // not.eq never matches NULL: the post without an author is not returned.
    expectOk(
      await q().not("author_id", "eq", ADA),
      200,
      titles("Compilers", "COBOL notes", "Bugs and moths"),
    );
    expectOk(
      await q().not("id", "in", `(${id("Hello world")},${id("Analytical engine")})`),
      200,
      titles("Compilers", "COBOL notes", "Bugs and moths", "untitled draft"),
    );
  });

  it("orders ascending and descending, with NULLs where PostgreSQL puts them", async () => {
    const q = () => svc.from("posts").select("title,score");
    const row = (title: Title) => ({ title, score: POSTS.find((p) => p.title === title)!.score });
    const byScore: Title[] = [
      "Bugs and moths",
      "Hello world",
      "untitled draft",
      "Compilers",
      "Analytical engine",
    ];
    expectOk(await q().order("score", { ascending: true }), 200, [...byScore, "COBOL notes"].map(row));
    expectOk(
      await q().order("score", { ascending: false }),
      200,
      ["COBOL notes", ...[...byScore].reverse()].map((t) => row(t as Title)),
    );
    expectOk(
      await q().order("score", { ascending: true, nullsFirst: true }),
      200,
      ["COBOL notes", ...byScore].map((t) => row(t as Title)),
    );
    expectOk(
      await q().order("score", { ascending: false, nullsFirst: false }),
      200,
      [...[...byScore].reverse(), "COBOL notes"].map((t) => row(t as Title)),
    );
    expectOk(
      await svc.from("posts").select("title").order("published").order("score", { ascending: false }),
      200,
      titles(
        "COBOL notes",
        "Compilers",
        "untitled draft",
        "Analytical engine",
        "Hello world",
        "Bugs and moths",
      ),
    );
  });

  it("pages with range and limit", async () => {
    const q = () => svc.from("posts").select("title").order("id");
    expectOk(await q().range(1, 3), 200, titles("Analytical engine", "Compilers", "COBOL notes"));
    expectOk(await q().limit(2), 200, titles("Hello world", "Analytical engine"));
    expectOk(await q().range(10, 12), 200, []);
  });

  it("counts exactly, with and without rows (head)", async () => {
    expectOk(
      await svc.from("posts").select("title", { count: "exact" }).eq("published", true).order("id"),
      200,
      titles("Hello world", "Analytical engine", "Bugs and moths"),
      3,
    );
    expectOk(
      await svc.from("posts").select("title", { count: "exact" }).order("id").range(0, 1),
      206,
      titles("Hello world", "Analytical engine"),
      6,
    );
    expectOk(await svc.from("posts").select("*", { count: "exact", head: true }), 200, null, 6);
    expectOk(
      await svc.from("posts").select("*", { count: "exact", head: true }).eq("author_id", GRACE),
      200,
      null,
      3,
    );
  });

  it("single() returns one object, or 406 PGRST116 for 0 or 2 rows", async () => {
    expectOk(await svc.from("posts").select("title,score").eq("id", id("Compilers")).single(), 200, {
      title: "Compilers",
      score: 7,
    });
    expectError(await svc.from("posts").select("title").eq("id", -1).single(), 406, {
      code: "PGRST116",
      message: "Cannot coerce the result to a single JSON object",
      details: "The result contains 0 rows",
      hint: null,
    });
    expectError(await svc.from("posts").select("title").eq("author_id", ADA).single(), 406, {
      code: "PGRST116",
      message: "Cannot coerce the result to a single JSON object",
      details: "The result contains 2 rows",
      hint: null,
    });
  });

  it("maybeSingle() returns one object or null", async () => {
    expectOk(await svc.from("posts").select("title").eq("id", id("Hello world")).maybeSingle(), 200, {
      title: "Hello world",
    });
    expectOk(await svc.from("posts").select("title").eq("id", -1).maybeSingle(), 200, null);
    const two = await svc.from("posts").select("title").eq("author_id", ADA).maybeSingle();
    expect({
      status: two.status,
      data: two.data,
      code: (two.error as { code?: string } | null)?.code,
    }).toEqual({
      status: 406,
      data: null,
      code: "PGRST116",
    });
  });

  it("embeds a to-one relation as an object (null without a match)", async () => {
    const authorOf = (p: (typeof POSTS)[number]) =>
      p.author_id === null ? null : { name: AUTHORS.find((a) => a.id === p.author_id)!.name };
    expectOk(
      await svc.from("posts").select("*,author:authors(name)").order("id"),
      200,
      POSTS.map((p) => ({ ...p, id: id(p.title), created_at: TIMESTAMP, author: authorOf(p) })),
    );
  });

  it("embeds a to-many relation as an array ([] without a match)", async () => {
    const res = await svc.from("authors").select("name,posts(title)").order("name");
    // The order of embedded rows is unspecified without posts.order: compare them sorted.
    const data = (res.data as { name: string; posts: { title: string }[] }[] | null)?.map((a) => ({
      ...a,
      posts: Array.isArray(a.posts) ? [...a.posts].sort((x, y) => x.title.localeCompare(y.title)) : a.posts,
    }));
    expectOk({ ...res, data: data ?? null }, 200, [
      { name: "Ada Lovelace", posts: titles("Analytical engine", "Hello world") },
      { name: "Alan Turing", posts: [] },
      { name: "Grace Hopper", posts: titles("Bugs and moths", "COBOL notes", "Compilers") },
    ]);
  });

  it("selects and filters JSON paths (->> as text, -> as JSON)", async () => {
    expectOk(
      await svc.from("posts").select("title,meta->>kind,n:meta->n").order("id"),
      200,
      POSTS.map((p) => ({ title: p.title, kind: p.meta?.kind ?? null, n: p.meta?.n ?? null })),
    );
    expectOk(
      await svc.from("posts").select("title").eq("meta->>kind", "essay").order("id"),
      200,
      titles("Analytical engine", "Compilers"),
    );
    // ->> compares text: "10" < "2" < "3".
    expectOk(
      await svc.from("posts").select("title").gt("meta->>n", "2").order("id"),
      200,
      titles("Compilers"),
    );
  });

  it("returns CSV with csv()", async () => {
    const res = await svc.from("posts").select("id,title,score").order("id").csv();
    const lines = POSTS.map((p) => {
      const title = /[\s,"\\()]/.test(p.title) || p.title === "" ? `"${p.title}"` : p.title;
      return `${id(p.title)},${title},${p.score ?? ""}`;
    });
    expectOk(res, 200, ["id,title,score", ...lines].join("\n"));
    expect(lines[0]).toBe(`${id("Hello world")},"Hello world",4.5`);
  });

  it("answers 404 PGRST205 for an unknown table", async () => {
    expectError(await svc.from("nope").select("*"), 404, { code: "PGRST205" });
  });
});

describe("writes", () => {
  let svc: SupabaseClient;
  const W_ADA = "00000000-0000-4000-8000-00000000000a";
  const W_BOB = "00000000-0000-4000-8000-00000000000b";

  beforeAll(async () => {
    const project = await newProject("e2e-writes");
    svc = client(project, project.serviceKey);
  });

  it("inserts one row: 201 without a body, or the row with .select()", async () => {
    expectOk(await svc.from("authors").insert({ id: W_ADA, name: "Ada" }), 201, null);
    expectOk(await svc.from("authors").insert({ name: "Anonymous" }).select(), 201, [
      { id: UUID, name: "Anonymous" },
    ]);
    expectOk(await svc.from("posts").insert({ title: "first", author_id: W_ADA }).select(), 201, [
      {
        id: expect.any(Number),
        author_id: W_ADA,
        title: "first",
        score: null,
        published: false,
        meta: null,
        created_at: TIMESTAMP,
      },
    ]);
    expectOk(
      await svc
        .from("posts")
        .insert({ title: "second", score: 1.25, meta: { a: [1, { b: null }] } })
        .select("title,score,meta")
        .single(),
      201,
      { title: "second", score: 1.25, meta: { a: [1, { b: null }] } },
    );
  });

  it("inserts an array in order; keys missing from some objects are NULL unless defaultToNull is false", async () => {
    const res = await svc
      .from("posts")
      .insert([
        { title: "a", author_id: W_ADA, published: true },
        { title: "b", author_id: W_ADA },
        { title: "c" },
      ])
      .select("id,title,author_id,published");
    expectOk(res, 201, [
      { id: expect.any(Number), title: "a", author_id: W_ADA, published: true },
      { id: expect.any(Number), title: "b", author_id: W_ADA, published: null },
      { id: expect.any(Number), title: "c", author_id: null, published: null },
    ]);
    const withDefaults = await svc
      .from("posts")
      .insert([{ title: "d", published: true }, { title: "e" }], { defaultToNull: false })
      .select("title,published");
    expectOk(withDefaults, 201, [
      { title: "d", published: true },
      { title: "e", published: false },
    ]);
  });

  it("refuses inserts that break constraints (23502, 23505, 23503)", async () => {
    expectError(await svc.from("posts").insert({ score: 1 }), 400, { code: "23502" });
    expectError(await svc.from("authors").insert({ id: W_ADA, name: "again" }), 409, { code: "23505" });
    expectError(
      await svc.from("posts").insert({ title: "orphan", author_id: "00000000-0000-4000-8000-0000000000ff" }),
      409,
      { code: "23503" },
    );
    expectOk(await svc.from("posts").select("title").eq("title", "orphan"), 200, []);
  });

  it("upserts on the primary key: 200 when it only updated, 201 when it inserted", async () => {
    expectOk(await svc.from("authors").upsert({ id: W_ADA, name: "Ada King" }).select(), 200, [
      { id: W_ADA, name: "Ada King" },
    ]);
    expectOk(await svc.from("authors").upsert({ id: W_BOB, name: "Bob" }).select(), 201, [
      { id: W_BOB, name: "Bob" },
    ]);
    expectOk(await svc.from("authors").select("name").in("id", [W_ADA, W_BOB]).order("name"), 200, [
      { name: "Ada King" },
      { name: "Bob" },
    ]);
  });

  it("upserts on another unique column with onConflict, and skips duplicates with ignoreDuplicates", async () => {
    expectOk(
      await svc.from("settings").insert([
        { key: "theme", value: "dark" },
        { key: "lang", value: "en" },
      ]),
      201,
      null,
    );
    expectOk(
      await svc
        .from("settings")
        .upsert({ key: "theme", value: "light" }, { onConflict: "key" })
        .select("key,value"),
      200,
      [{ key: "theme", value: "light" }],
    );
    expectOk(
      await svc
        .from("settings")
        .upsert(
          [
            { key: "lang", value: "fr" },
            { key: "tz", value: "UTC" },
          ],
          { onConflict: "key", ignoreDuplicates: true },
        )
        .select("key,value"),
      201,
      [{ key: "tz", value: "UTC" }],
    );
    expectOk(await svc.from("settings").select("key,value").order("key"), 200, [
      { key: "lang", value: "en" },
      { key: "theme", value: "light" },
      { key: "tz", value: "UTC" },
    ]);
  });

  it("updates filtered rows: 204, or 200 with the rows; [] when nothing matches", async () => {
    expectOk(await svc.from("posts").update({ published: true }).eq("title", "first"), 204, null);
    const res = await svc
      .from("posts")
      .update({ score: 3.5 })
      .eq("author_id", W_ADA)
      .select("title,score,published");
    const rows =
      (res.data as { title: string }[] | null)?.sort((x, y) => x.title.localeCompare(y.title)) ?? null;
    expectOk({ ...res, data: rows }, 200, [
      { title: "a", score: 3.5, published: true },
      { title: "b", score: 3.5, published: null },
      { title: "first", score: 3.5, published: true },
    ]);
    expectOk(await svc.from("posts").update({ score: 0 }).eq("title", "nope").select(), 200, []);
  });

  it("refuses an update without a filter (400 21000) and changes nothing", async () => {
    expectError(await svc.from("posts").update({ score: 0 }), 400, {
      code: "21000",
      message: "UPDATE requires a WHERE clause",
    });
    expectOk(await svc.from("posts").select("title").eq("score", 0), 200, []);
  });

  it("deletes filtered rows: 204, or 200 with the rows", async () => {
    expectOk(await svc.from("posts").delete().eq("title", "b"), 204, null);
    expectOk(await svc.from("posts").delete().eq("title", "a").select("title"), 200, [{ title: "a" }]);
    expectOk(await svc.from("posts").select("title").in("title", ["a", "b"]), 200, []);
  });

  it("refuses a delete without a filter (400 21000) and deletes nothing", async () => {
    const before = await svc.from("posts").select("*", { count: "exact", head: true });
    expect(before.count).toBeGreaterThan(0);
    expectError(await svc.from("posts").delete(), 400, {
      code: "21000",
      message: "DELETE requires a WHERE clause",
    });
    expectOk(await svc.from("posts").select("*", { count: "exact", head: true }), 200, null, before.count);
  });
});

describe("keys and policies", () => {
  let a: Project;
  let b: Project;

  beforeAll(async () => {
    [a, b] = await Promise.all([newProject("e2e-keys-a"), newProject("e2e-keys-b")]);
    const svc = client(a, a.serviceKey);
    expectOk(await svc.from("notes").insert([{ body: "hello" }, { body: "world" }]), 201, null);
    expectOk(await svc.from("secrets").insert({ value: "s3cret" }), 201, null);
  });

  it("lets the anon key read a public table", async () => {
    expectOk(await client(a, a.anonKey).from("notes").select("body").order("id"), 200, [
      { body: "hello" },
      { body: "world" },
    ]);
  });

  it("refuses the anon key on a service table (401 42501) and lets the service key in", async () => {
    expectError(await client(a, a.anonKey).from("secrets").select("*"), 401, { code: "42501" });
    expectError(await client(a, a.anonKey).from("secrets").insert({ value: "x" }), 401, { code: "42501" });
    expectError(await client(a, a.anonKey).from("notes").insert({ body: "x" }), 401, { code: "42501" });
    expectOk(await client(a, a.serviceKey).from("secrets").select("value"), 200, [{ value: "s3cret" }]);
    expectOk(await client(a, a.serviceKey).from("notes").select("body").eq("body", "x"), 200, []);
  });

  it("refuses the anon key on a table with the default (members) policy", async () => {
    expectError(await client(a, a.anonKey).from("posts").select("*"), 401, { code: "42501" });
  });

  it("refuses project A's keys on project B (401)", async () => {
    expectError(await client(b, a.serviceKey).from("notes").select("*"), 401, { code: "PGRST301" });
    expectError(await client(b, a.anonKey).from("notes").select("*"), 401, { code: "PGRST301" });
    expectError(await client(b, "not-a-jwt").from("notes").select("*"), 401, { code: "PGRST301" });
    expectOk(await client(b, b.anonKey).from("notes").select("body"), 200, []);
  });
});
