import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import {
  BLOG_SCHEMA,
  call,
  createProject,
  projectWithSchema,
  rest,
  type TestProject,
} from "./helpers/api.ts";

const A1 = "11111111-1111-4111-8111-111111111111";
const A2 = "22222222-2222-4222-8222-222222222222";

async function seed(p: TestProject): Promise<void> {
  let res = await rest(p, "/authors", {
    method: "POST",
    body: [
      { id: A1, name: "Ada" },
      { id: A2, name: "Grace" },
    ],
  });
  expect(res.status).toBe(201);
  res = await rest(p, "/posts", {
    method: "POST",
    body: [
      { author_id: A1, title: "Alpha", score: 1.5, published: true, meta: { kind: "note", n: 1 } },
      { author_id: A1, title: "beta", score: 2.5, published: false, meta: { kind: "essay", n: 2 } },
      { author_id: A2, title: "Gamma", score: null, published: true, meta: null },
    ],
  });
  expect(res.status).toBe(201);
}

describe("REST core", () => {
  let p: TestProject;
  beforeAll(async () => {
    p = await projectWithSchema(BLOG_SCHEMA);
    await seed(p);
  });

  it("reads rows with defaults applied and types on the wire", async () => {
    const res = await rest(p, "/posts?order=id");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBe("0-2/*");
    const rows = (await res.json()) as Record<string, unknown>[];
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(rows[0]).toMatchObject({
      title: "Alpha",
      published: true,
      meta: { kind: "note", n: 1 },
      score: 1.5,
    });
    expect(rows[2]!.published).toBe(true);
    expect(typeof rows[0]!.created_at).toBe("string");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("filters with every basic operator", async () => {
    const cases: [string, number[]][] = [
      ["id=eq.2", [2]],
      ["id=neq.2", [1, 3]],
      ["score=gt.1.5", [2]],
      ["score=gte.1.5", [1, 2]],
      ["score=lt.2", [1]],
      ["score=lte.2.5", [1, 2]],
      ["title=like.*eta", [2]],
      ["title=like.*ETA", []],
      ["title=ilike.*ETA", [2]],
      ["score=is.null", [3]],
      ["score=not.is.null", [1, 2]],
      ["published=is.true", [1, 3]],
      ["id=in.(1,3)", [1, 3]],
      ["id=in.()", []],
      ["id=not.in.(1,3)", [2]],
      ["score=neq.1.5", [2]],
      ["or=(id.eq.1,title.eq.Gamma)", [1, 3]],
      ["and=(published.is.true,or(id.eq.3,score.gt.100))", [3]],
      ["not.or=(id.eq.1,id.eq.2)", [3]],
      ["meta->>kind=eq.essay", [2]],
      ["meta->n=eq.1", [1]],
      ['meta=cs.{"kind":"note"}', [1]],
      ['title=in.("Alpha",Gamma)', [1, 3]],
      ["id=eq(any).{1,2}", [1, 2]],
      ["score=isdistinct.1.5", [2, 3]],
    ];
    for (const [q, ids] of cases) {
      const res = await rest(p, `/posts?select=id&order=id&${q}`);
      expect(res.status, q).toBe(200);
      expect(
        ((await res.json()) as { id: number }[]).map((r) => r.id),
        q,
      ).toEqual(ids);
    }
  });

  it("orders with nulls placement, pages with limit/offset and Range", async () => {
    let res = await rest(p, "/posts?select=id&order=score.desc.nullslast");
    expect(await res.json()).toEqual([{ id: 2 }, { id: 1 }, { id: 3 }]);
    res = await rest(p, "/posts?select=id&order=score.asc");
    expect(await res.json()).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    res = await rest(p, "/posts?select=id&order=score.desc");
    expect(await res.json()).toEqual([{ id: 3 }, { id: 2 }, { id: 1 }]);
    res = await rest(p, "/posts?select=id&order=id&limit=1&offset=1");
    expect(await res.json()).toEqual([{ id: 2 }]);
    expect(res.headers.get("content-range")).toBe("1-1/*");
    res = await rest(p, "/posts?select=id&order=id", { headers: { range: "1-2" } });
    expect(await res.json()).toEqual([{ id: 2 }, { id: 3 }]);
  });

  it("counts exactly with PostgREST's Content-Range and statuses", async () => {
    let res = await rest(p, "/posts?select=id&order=id", { headers: { prefer: "count=exact" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBe("0-2/3");
    res = await rest(p, "/posts?select=id&order=id&limit=1&offset=1", { headers: { prefer: "count=exact" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe("1-1/3");
    res = await rest(p, "/posts?select=id&limit=0", { headers: { prefer: "count=exact" } });
    expect(res.headers.get("content-range")).toBe("*/3");
    res = await rest(p, "/posts?select=id&id=eq.999", { headers: { prefer: "count=exact" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBe("*/0");
    res = await rest(p, "/posts?offset=100", { headers: { prefer: "count=exact" } });
    expect(res.status).toBe(416);
    res = await rest(p, "/posts", { method: "HEAD", headers: { prefer: "count=exact" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBe("0-2/3");
    expect(await res.text()).toBe("");
  });

  it("embeds to-one as an object and to-many as an array", async () => {
    let res = await rest(p, "/posts?select=title,author:authors(name)&order=id");
    expect(await res.json()).toEqual([
      { title: "Alpha", author: { name: "Ada" } },
      { title: "beta", author: { name: "Ada" } },
      { title: "Gamma", author: { name: "Grace" } },
    ]);
    res = await rest(p, "/authors?select=name,posts(title)&order=name&posts.order=id.desc");
    expect(await res.json()).toEqual([
      { name: "Ada", posts: [{ title: "beta" }, { title: "Alpha" }] },
      { name: "Grace", posts: [{ title: "Gamma" }] },
    ]);
    res = await rest(p, "/authors?select=name,posts!inner(title)&posts.title=eq.Gamma");
    expect(await res.json()).toEqual([{ name: "Grace", posts: [{ title: "Gamma" }] }]);
    res = await rest(p, "/posts?select=title,...authors(name)&order=id&limit=1");
    expect(await res.json()).toEqual([{ title: "Alpha", name: "Ada" }]);
    res = await rest(p, "/posts?select=id,authors(name)&order=authors(name).desc,id");
    expect(((await res.json()) as { id: number }[]).map((r) => r.id)).toEqual([3, 1, 2]);
  });

  it("selects JSON paths, aliases and casts", async () => {
    const res = await rest(
      p,
      "/posts?select=id,kind:meta->>kind,n:meta->n,id_text:id::text&order=id&limit=2",
    );
    expect(await res.json()).toEqual([
      { id: 1, kind: "note", n: 1, id_text: "1" },
      { id: 2, kind: "essay", n: 2, id_text: "2" },
    ]);
  });

  it("answers single objects and 406 otherwise", async () => {
    let res = await rest(p, "/posts?select=id&id=eq.1", {
      headers: { accept: "application/vnd.pgrst.object+json" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 1 });
    res = await rest(p, "/posts?select=id", { headers: { accept: "application/vnd.pgrst.object+json" } });
    expect(res.status).toBe(406);
    expect(await res.json()).toMatchObject({ code: "PGRST116", details: "The result contains 3 rows" });
  });

  it("answers CSV", async () => {
    const res = await rest(p, "/posts?select=id,title&order=id", { headers: { accept: "text/csv" } });
    expect(res.headers.get("content-type")).toContain("text/csv");
    expect(await res.text()).toBe("id,title\n1,Alpha\n2,beta\n3,Gamma");
  });

  it("serves an OpenAPI description", async () => {
    const res = await rest(p, "/");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/posts", "/authors"]));
  });
});

describe("REST writes", () => {
  let p: TestProject;
  beforeAll(async () => {
    p = await projectWithSchema(BLOG_SCHEMA);
    await seed(p);
  });

  it("inserts with representation, defaults and Location", async () => {
    let res = await rest(p, "/posts?select=id,title,published", {
      method: "POST",
      headers: { prefer: "return=representation" },
      body: { title: "Delta", author_id: A2 },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual([{ id: 4, title: "Delta", published: false }]);
    res = await rest(p, "/posts", {
      method: "POST",
      headers: { prefer: "return=headers-only" },
      body: { title: "Eps" },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe("/posts?id=eq.5");
  });

  it("upserts on the primary key and on_conflict", async () => {
    let res = await rest(p, "/authors", {
      method: "POST",
      headers: { prefer: "resolution=merge-duplicates,return=representation" },
      body: [{ id: A1, name: "Ada Lovelace" }],
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ id: A1, name: "Ada Lovelace" }]);
    res = await rest(p, "/authors", {
      method: "POST",
      headers: { prefer: "resolution=ignore-duplicates,return=representation" },
      body: [{ id: A2, name: "ignored" }],
    });
    expect(await res.json()).toEqual([]);
    res = await rest(p, `/authors?id=eq.${A2}&select=name`);
    expect(await res.json()).toEqual([{ name: "Grace" }]);
  });

  it("updates and deletes with filters, refuses without", async () => {
    let res = await rest(p, "/posts?id=eq.2&select=id,score", {
      method: "PATCH",
      headers: { prefer: "return=representation" },
      body: { score: 9 },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ id: 2, score: 9 }]);
    res = await rest(p, "/posts", { method: "PATCH", body: { score: 1 } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "21000" });
    res = await rest(p, "/posts", { method: "DELETE" });
    expect(res.status).toBe(400);
    res = await rest(p, "/posts?id=eq.999", { method: "PATCH", body: { score: 1 } });
    expect(res.status).toBe(204);
    res = await rest(p, "/posts?id=eq.3", { method: "DELETE", headers: { prefer: "return=representation" } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: number }[]).map((r) => r.id)).toEqual([3]);
    res = await rest(p, "/posts?id=eq.3");
    expect(await res.json()).toEqual([]);
  });

  it("bulk inserts NDJSON and CSV", async () => {
    const ndjson = Array.from({ length: 50 }, (_, i) => JSON.stringify({ title: `nd${i}`, score: i })).join(
      "\n",
    );
    let res = await rest(p, "/posts", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: ndjson,
    });
    expect(res.status).toBe(201);
    res = await rest(p, "/posts", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: 'title,score,published\ncsv1,1.25,true\n"csv,2",NULL,false',
    });
    expect(res.status).toBe(201);
    res = await rest(p, "/posts?select=title,score,published&title=like.csv*&order=title");
    expect(await res.json()).toEqual([
      { title: "csv,2", score: null, published: false },
      { title: "csv1", score: 1.25, published: true },
    ]);
    res = await rest(p, "/posts?select=id&title=like.nd*", { headers: { prefer: "count=exact" } });
    expect(res.headers.get("content-range")).toBe("0-49/50");
  });
});

describe("bad input: clear 4xx, nothing written", () => {
  let p: TestProject;
  beforeAll(async () => {
    p = await projectWithSchema(BLOG_SCHEMA);
    await seed(p);
  });

  async function walLast(): Promise<unknown> {
    const res = await call(`${p.url}/admin/v1/stats`, { key: p.serviceKey });
    return ((await res.json()) as { wal: { last: number } }).wal.last;
  }

  it("refuses each class of bad input", async () => {
    const before = await walLast();
    const cases: [
      string,
      { method?: string; headers?: Record<string, string>; body?: unknown; key?: string },
      number,
      string,
    ][] = [
      ["/nope", {}, 404, "PGRST205"],
      ["/posts?select=nope", {}, 400, "42703"],
      ["/posts?id=5", {}, 400, "PGRST100"],
      ["/posts?id=eq.abc", {}, 400, "22P02"],
      ["/posts?order=id.sideways", {}, 400, "PGRST100"],
      ["/posts?select=*,nope(*)", {}, 400, "PGRST200"],
      ["/posts?body=eq.x", {}, 400, "HEARTH_UNSUPPORTED"],
      [
        "/posts",
        { method: "POST", body: "{bad json", headers: { "content-type": "application/json" } },
        400,
        "PGRST102",
      ],
      ["/posts", { method: "POST", body: { nope: 1 } }, 400, "PGRST204"],
      ["/posts", { method: "POST", body: { title: "x", score: "high" } }, 400, "22P02"],
      ["/posts", { method: "POST", body: { score: 1 } }, 400, "23502"],
      ["/posts", { method: "POST", body: [{ title: "a" }, { score: 1 }] }, 400, "PGRST102"],
      [
        "/posts",
        { method: "POST", body: { title: "x", author_id: "33333333-3333-4333-8333-333333333333" } },
        409,
        "23503",
      ],
      ["/authors", { method: "POST", body: { id: A1, name: "dup" } }, 409, "23505"],
      [
        "/posts",
        { method: "POST", body: "a", headers: { "content-type": "application/xml" } },
        400,
        "PGRST102",
      ],
      ["/secrets", { key: p.anonKey }, 401, "42501"],
      ["/posts", { method: "POST", key: p.anonKey, body: { title: "x" } }, 401, "42501"],
      ["/posts", { headers: { accept: "text/html" } }, 406, "PGRST107"],
      ["/posts?limit=-1", {}, 416, "PGRST103"],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await rest(p, path, init as never);
      const body = (await res.json()) as Record<string, unknown>;
      expect([res.status, body.code], `${init.method ?? "GET"} ${path}`).toEqual([status, code]);
      expect(Object.keys(body).sort()).toEqual(["code", "details", "hint", "message"]);
      expect(typeof body.message).toBe("string");
    }
    expect(await walLast()).toBe(before);
  });

  it("refuses an oversized body with 413", async () => {
    const big = "x".repeat(
      Number((env as { HEARTH_MAX_BODY_BYTES?: string }).HEARTH_MAX_BODY_BYTES ?? 67108864) + 10,
    );
    const res = await rest(p, "/posts", {
      method: "POST",
      body: JSON.stringify([{ title: big }]),
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(413);
  });

  it("refuses bad keys and keys of another project", async () => {
    const other = await createProject("other");
    let res = await rest(p, "/posts", { key: other.serviceKey });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "PGRST301" });
    res = await rest(p, "/posts", { key: "not.a.jwt" });
    expect(res.status).toBe(401);
    res = await rest(p, "/posts", { key: null });
    expect(res.status).toBe(401);
    res = await call(`${p.url}/schema`, { key: p.anonKey });
    expect(res.status).toBe(403);
  });
});
