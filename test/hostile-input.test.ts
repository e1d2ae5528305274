import { beforeAll, describe, expect, it } from "vitest";
import { BLOG_SCHEMA, call, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";

/** Requests a client could send: each must get a well-formed 2xx/4xx, never a 500. */
const QUERIES = [
  "/posts?offset=99999999999999999999",
  "/posts?limit=99999999999999999999",
  "/posts?limit=1e3",
  "/posts?offset=-5&limit=abc",
  "/%E0%A4%A",
  "/posts%00",
  "/posts?select=%E0%A4%A",
  "/posts?id=eq.",
  "/posts?id=eq.1e400",
  "/posts?score=eq.NaN",
  "/posts?score=gt.Infinity",
  "/posts?created_at=gt.not-a-date",
  "/posts?published=eq.maybe",
  "/posts?author_id=eq.not-a-uuid",
  "/posts?meta->a->b->>c=eq.1",
  "/posts?title->>a=eq.1",
  '/posts?meta->>a"b=eq.1',
  "/posts?meta=cs.not-json",
  "/posts?meta=cs.[1,2",
  "/posts?title=cs.{a}",
  '/posts?select=id,meta->>"',
  "/posts?order=meta->>kind.desc,title.asc.nullsfirst",
  "/posts?order=authors(name)",
  "/posts?select=id,authors(*)&order=authors(nope)",
  "/posts?select=*,authors!inner(*)&authors.name=like.*%25*",
  "/posts?or=(id.eq.1,or(id.eq.2,or(id.eq.3,or(id.eq.4))))",
  `/posts?or=(${"or(".repeat(40)}id.eq.1${")".repeat(40)})`,
  `/posts?id=in.(${Array.from({ length: 5000 }, (_, i) => i).join(",")})`,
  `/posts?${Array.from({ length: 150 }, (_, i) => `id=neq.${i}`).join("&")}`,
  "/posts?select=id::nonsense",
  "/posts?select=count(),id.sum()::badtype",
  "/posts?select=title.avg()",
  "/posts?columns=nope",
  "/posts?on_conflict=nope",
  "/authors?select=*,posts(*,authors(*,posts(*)))",
  "/posts?select=*,authors(*)&authors.or=(name.eq.x,name.eq.y)&authors.limit=1",
  "/posts?title=like.[*]",
  "/posts?title=ilike.\\",
  "/posts?title=match.^a",
  "/posts?title=fts.cat",
  "/posts?title=is.banana",
  "/posts?and=()",
  "/posts?id=not.eq",
  "/posts?select=",
  "/posts?select=*,*",
  "/posts?select=...authors(name)",
];

describe("hostile query strings", () => {
  let p: TestProject;
  beforeAll(async () => {
    p = await projectWithSchema(BLOG_SCHEMA);
    await rest(p, "/posts", { method: "POST", body: [{ title: "a", meta: { a: { b: { c: 1 } } } }] });
  });

  it("answers every one with a clear 2xx or 4xx and a PostgREST-shaped error", async () => {
    for (const q of QUERIES) {
      for (const method of ["GET", "PATCH", "DELETE"]) {
        const init = method === "PATCH" ? { method, body: { score: 1 } } : { method };
        const res = await rest(p, q, init);
        expect(res.status, `${method} ${q}`).toBeLessThan(500);
        if (res.status >= 400) {
          const body = (await res.json()) as Record<string, unknown>;
          expect(Object.keys(body).sort(), `${method} ${q}`).toEqual(["code", "details", "hint", "message"]);
        } else await res.arrayBuffer();
      }
    }
  });

  it("refuses hostile bodies without a 500", async () => {
    const bodies: [string, string][] = [
      ["application/json", "[".repeat(10_000)],
      ["application/json", JSON.stringify({ title: "x".repeat(100), meta: { deep: "y" } })],
      ["application/json", '{"title": "\\ud800"}'],
      ["application/json", JSON.stringify([{ title: 1 }])],
      ["application/json", JSON.stringify({ title: "x", created_at: "2024-02-30T00:00:00Z" })],
      ["application/json", JSON.stringify({ title: "x", id: 1.5 })],
      ["application/json", JSON.stringify({ title: "x", id: 2 ** 60 })],
      ["application/json", "null"],
      ["application/json", "42"],
      ["application/json", '"str"'],
      ["application/x-ndjson", '{"title":"a"}\n[1,2]\n'],
      ["text/csv", 'title,"unterminated\n1'],
      ["text/csv", "title,title\na,b"],
      ["application/vnd.apache.arrow.stream", "not arrow at all"],
      ["application/x-www-form-urlencoded", "title=%E0%A4%A"],
    ];
    for (const [type, body] of bodies) {
      const res = await rest(p, "/posts", { method: "POST", headers: { "content-type": type }, body });
      expect(res.status, `${type} ${body.slice(0, 40)}`).toBeLessThan(500);
    }
  });
});

describe("hostile paths and credentials at the gateway", () => {
  it("answers with a clear 4xx", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const cases: [string, Record<string, string>][] = [
      ["/p/%E0%A4%A/rest/v1/posts", { apikey: p.anonKey }],
      ["/v1/projects/%E0%A4%A", { authorization: "Bearer test-admin-key" }],
      [`${p.url}/rest/v1/posts`, { authorization: "Bearer " }],
      [`${p.url}/rest/v1/posts`, { authorization: "Basic Zm9vOmJhcg==" }],
      [`${p.url}/rest/v1/posts`, { apikey: "x".repeat(20_000) }],
      [`${p.url}/rest/v1/posts`, { apikey: "a.b.c" }],
      [`${p.url}/rest/v1/posts`, { apikey: `${p.anonKey.slice(0, -2)}xx` }],
      [`${p.url}/schema`, { apikey: p.anonKey }],
      [`${p.url}/admin/v1/stats`, { apikey: p.anonKey }],
    ];
    for (const [path, headers] of cases) {
      const res = await call(path, { headers });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(Object.keys((await res.json()) as object).sort()).toEqual([
        "code",
        "details",
        "hint",
        "message",
      ]);
    }
  });
});

describe("large rows", () => {
  it("inserts batches whose JSON passes 2 MB, and refuses one oversized value with 413", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const rows = Array.from({ length: 1000 }, (_, i) => ({ title: `${i}-${"é".repeat(1500)}` }));
    let res = await rest(p, "/posts?select=id", {
      method: "POST",
      body: rows,
      headers: { prefer: "count=exact" },
    });
    expect(res.status).toBe(201);
    res = await rest(p, "/posts?select=id&limit=1", { headers: { prefer: "count=exact" } });
    expect(res.headers.get("content-range")).toBe("0-0/1000");
    res = await rest(p, "/posts", { method: "POST", body: { title: "x".repeat(3_000_000) } });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "HEARTH_PAYLOAD_TOO_LARGE" });
    res = await rest(p, "/posts?select=id&limit=1", { headers: { prefer: "count=exact" } });
    expect(res.headers.get("content-range")).toBe("0-0/1000");
  });
});
