/**
 * The cold tier end to end through the HTTP API: flush to R2 segments, merge-on-read,
 * writes to flushed rows, constraints across tiers, freeze + wake, time travel, fork.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  admin,
  BLOG_SCHEMA,
  call,
  createProject,
  projectWithSchema,
  rest,
  type TestProject,
} from "./helpers/api.ts";

const testEnv = env as unknown as { BUCKET: R2Bucket };

async function rows(p: TestProject, path: string): Promise<unknown[]> {
  const res = await rest(p, path);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as unknown[];
}

const A = "11111111-1111-4111-8111-111111111111";
const B = "22222222-2222-4222-8222-222222222222";

async function seeded(): Promise<TestProject> {
  const p = await projectWithSchema(BLOG_SCHEMA);
  await rest(p, "/authors", {
    method: "POST",
    body: [
      { id: A, name: "Ada" },
      { id: B, name: "Bob" },
    ],
  });
  const posts = Array.from({ length: 50 }, (_, i) => ({
    title: `post ${i}`,
    author_id: i % 2 === 0 ? A : B,
    score: i / 2,
    published: i % 3 === 0,
    meta: { n: i, tags: i % 5 === 0 ? ["five"] : [] },
    created_at: new Date(Date.UTC(2026, 0, 1 + i)).toISOString(),
  }));
  const res = await rest(p, "/posts", { method: "POST", body: posts });
  expect(res.status).toBe(201);
  return p;
}

const QUERIES = [
  "/posts?order=id",
  "/posts?select=id,title,author:authors(name)&order=score.desc&limit=7",
  "/posts?score=gte.10&published=is.true&order=id",
  "/posts?meta->>n=eq.7",
  "/authors?select=name,posts(count())&order=name",
  "/posts?select=author_id,score.sum(),count()&order=author_id",
  "/posts?id=eq.3",
  "/posts?id=in.(1,2,49)&order=id.desc",
  "/posts?title=like.*1*&order=id&offset=2&limit=3",
  "/posts?select=published,score.avg(),score.min(),score.max(),created_at.max(),count()&order=published.desc",
  "/posts?select=count(),score.sum()&score=gt.1000",
  "/posts?select=author_id,id.count()&order=author_id.desc.nullslast&limit=1&offset=1",
  "/posts?select=meta,count()&or=(score.lt.3,published.is.true)",
  "/posts?order=created_at.desc&limit=5&offset=3",
  "/posts?published=is.false&score=not.gt.20&order=published,score.desc.nullsfirst&limit=4",
  "/posts?order=meta->>n&limit=4",
  "/posts?select=title,score&or=(score.lt.3,and(published.is.true,score.gt.20))&order=score.desc",
];

async function answers(p: TestProject): Promise<unknown[]> {
  return Promise.all(QUERIES.map((q) => rows(p, q)));
}

describe("flush and merge-on-read", () => {
  it("answers every query the same before and after a flush", async () => {
    const p = await seeded();
    const before = await answers(p);
    const flushed = await admin(p, "flush");
    expect(flushed).toMatchObject({ flushed: true, version: 1 });
    expect(flushed.segments).toBeGreaterThanOrEqual(2);
    const stats = await admin(p, "stats");
    expect(stats).toMatchObject({ hotRows: 0, coldRows: 52, manifestVersion: 1 });
    expect(stats.r2Bytes).toBeGreaterThan(0);
    expect(await answers(p)).toEqual(before);
    // The segment really is in R2 under the project prefix.
    const listed = await testEnv.BUCKET.list({ prefix: `projects/${p.id}/tables/posts/` });
    expect(listed.objects.some((o) => o.key.endsWith(".arrow"))).toBe(true);
    const count = await rest(p, "/posts?published=is.true", {
      headers: { prefer: "count=exact" },
      method: "HEAD",
    });
    expect(count.headers.get("content-range")).toBe("0-16/17");
  });

  it("updates and deletes flushed rows, durably, on both sides of a flush", async () => {
    const p = await seeded();
    await admin(p, "flush");
    let res = await rest(p, "/posts?id=eq.3", {
      method: "PATCH",
      body: { title: "changed" },
      headers: { prefer: "return=representation" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject([{ id: 3, title: "changed", score: 1 }]);
    res = await rest(p, "/posts?id=in.(4,5)", { method: "DELETE" });
    expect(res.status).toBe(204);
    await rest(p, "/posts", { method: "POST", body: { title: "new", author_id: A } });
    const expectState = async () => {
      expect(await rows(p, "/posts?id=eq.3&select=title")).toEqual([{ title: "changed" }]);
      expect(await rows(p, "/posts?id=in.(4,5)")).toEqual([]);
      const all = await rows(p, "/posts?select=id&order=id");
      expect(all).toHaveLength(49);
      expect(all.at(-1)).toEqual({ id: 51 });
    };
    await expectState();
    const stats = await admin(p, "stats");
    // promoted: post 3 and both authors (parents come along); new: post 51
    expect(stats.hotRows).toBe(4);
    await admin(p, "flush");
    await expectState();
    expect(await admin(p, "stats")).toMatchObject({ hotRows: 0, coldRows: 49 + 2 });
  });

  it("a new nullable column with a literal default reads the default in hot and flushed rows alike", async () => {
    const table = (extra: Record<string, unknown> = {}) => ({
      tables: {
        items: {
          columns: { id: { type: "integer", primaryKey: true }, name: { type: "text" }, ...extra },
          policy: { read: "public", write: "public" },
        },
      },
    });
    const p = await projectWithSchema(table());
    await rest(p, "/items", { method: "POST", body: { id: 1, name: "flushed" } });
    await admin(p, "flush");
    await rest(p, "/items", { method: "POST", body: { id: 2, name: "hot" } });
    const next = table({ done: { type: "boolean", default: false }, label: { type: "text", default: "x" } });
    expect((await call(`${p.url}/schema`, { method: "PUT", key: p.serviceKey, body: next })).status).toBe(
      200,
    );
    const want = [
      { id: 1, name: "flushed", done: false, label: "x" },
      { id: 2, name: "hot", done: false, label: "x" },
    ];
    expect(await rows(p, "/items?order=id")).toEqual(want);
    await admin(p, "flush");
    expect(await rows(p, "/items?order=id")).toEqual(want);
  });

  it("keeps constraints across tiers: keys, foreign keys and cascades", async () => {
    const p = await projectWithSchema({
      tables: {
        parents: {
          columns: { id: { type: "integer", primaryKey: true }, code: { type: "text", unique: true } },
        },
        kids: {
          columns: {
            id: { type: "integer", primaryKey: true },
            parent_id: { type: "integer", references: "parents.id", onDelete: "cascade" },
          },
        },
      },
    });
    await rest(p, "/parents", {
      method: "POST",
      body: [
        { id: 1, code: "a" },
        { id: 2, code: "b" },
      ],
    });
    await rest(p, "/kids", {
      method: "POST",
      body: [
        { id: 10, parent_id: 1 },
        { id: 11, parent_id: 2 },
      ],
    });
    await admin(p, "flush");
    // Duplicate primary key / unique value against flushed rows.
    let res = await rest(p, "/parents", { method: "POST", body: { id: 1, code: "z" } });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe("23505");
    res = await rest(p, "/parents", { method: "POST", body: { id: 3, code: "b" } });
    expect(res.status).toBe(409);
    // Upsert over a flushed row updates it.
    res = await rest(p, "/parents", {
      method: "POST",
      body: { id: 2, code: "bb" },
      headers: { prefer: "resolution=merge-duplicates" },
    });
    expect(res.status).toBe(204); // as on the hot tier: only an update, no body
    // A child of a flushed parent; a child of a missing parent is refused.
    expect((await rest(p, "/kids", { method: "POST", body: { id: 12, parent_id: 1 } })).status).toBe(201);
    res = await rest(p, "/kids", { method: "POST", body: { id: 13, parent_id: 99 } });
    expect(res.status).toBe(409);
    // Deleting a flushed parent cascades to its flushed and hot children.
    expect((await rest(p, "/parents?id=eq.1", { method: "DELETE" })).status).toBe(204);
    expect(await rows(p, "/kids?order=id")).toEqual([{ id: 11, parent_id: 2 }]);
    expect(await rows(p, "/parents?order=id")).toEqual([{ id: 2, code: "bb" }]);
    await admin(p, "flush");
    expect(await rows(p, "/kids?order=id")).toEqual([{ id: 11, parent_id: 2 }]);
    expect(await rows(p, "/parents?order=id")).toEqual([{ id: 2, code: "bb" }]);
  });
});

describe("freeze and wake", () => {
  it("empties the object's storage and answers the same after waking", async () => {
    const p = await seeded();
    const before = await answers(p);
    const frozen = await admin(p, "freeze");
    expect(frozen.frozen).toBe(true);
    const after = await answers(p); // the first request wakes it
    expect(after).toEqual(before);
    const stats = await admin(p, "stats");
    expect(stats).toMatchObject({ hotRows: 0, coldRows: 52 });
    // Ids keep counting from where they were.
    const res = await rest(p, "/posts", {
      method: "POST",
      body: { title: "after wake" },
      headers: { prefer: "return=representation" },
    });
    expect(((await res.json()) as { id: number }[])[0]!.id).toBe(51);
  });
});

describe("time travel", () => {
  it("reads a table as of a manifest version or a time", async () => {
    const p = await seeded();
    await admin(p, "flush");
    const t1 = new Date().toISOString();
    await rest(p, "/posts?id=lte.10", { method: "DELETE" });
    await admin(p, "flush");
    expect(await rows(p, "/posts?select=id&order=id&limit=1")).toEqual([{ id: 11 }]);
    expect(await rows(p, "/posts?select=id&order=id&limit=1&as_of=1")).toEqual([{ id: 1 }]);
    expect(await rows(p, `/posts?select=id&order=id&limit=1&as_of=${encodeURIComponent(t1)}`)).toEqual([
      { id: 1 },
    ]);
    const res = await rest(p, "/posts?as_of=99");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe("HEARTH_SNAPSHOT_NOT_FOUND");
  });
});

describe("export and import", () => {
  for (const format of ["parquet", "arrow"]) {
    it(`exports hot and flushed rows alike (${format}) and imports them exactly`, async () => {
      const p = await seeded();
      await admin(p, "flush");
      await rest(p, "/posts?id=in.(7,8)", { method: "DELETE" });
      await rest(p, "/posts?id=eq.9", { method: "PATCH", body: { title: "nine" } });
      await rest(p, "/posts", { method: "POST", body: { title: "hot one", author_id: B } });
      const before = await answers(p);
      const res = await call(`${p.url}/export?format=${format}`, { key: p.serviceKey });
      expect(res.status).toBe(200);
      const zip = new Uint8Array(await res.arrayBuffer());
      const q = await createProject();
      const imported = await call(`${q.url}/import`, {
        method: "POST",
        key: q.serviceKey,
        body: zip,
        headers: { "content-type": "application/zip" },
      });
      expect(imported.status, await imported.clone().text()).toBe(200);
      expect(await answers(q)).toEqual(before);
      // A project whose rows are all flushed is not empty.
      await admin(q, "flush");
      const again = await call(`${q.url}/import`, {
        method: "POST",
        key: q.serviceKey,
        body: zip,
        headers: { "content-type": "application/zip" },
      });
      expect(again.status).toBe(409);
    });
  }
});

describe("point reads over flushed rows", () => {
  it("answers id=eq and id=in (duplicates, misses, deleted keys) from the key index", async () => {
    const p = await seeded();
    await admin(p, "flush");
    await rest(p, "/posts?id=eq.4", { method: "DELETE" });
    expect(await rows(p, "/posts?id=in.(3,3,4,99,5)&select=id&order=id")).toEqual([{ id: 3 }, { id: 5 }]);
    // post 7 is published (every third post is)
    expect(await rows(p, "/posts?id=eq.7&published=is.true&select=id")).toEqual([{ id: 7 }]);
    expect(await rows(p, "/posts?id=eq.7&published=is.false&select=id")).toEqual([]);
    const head = await rest(p, "/posts?id=in.(1,2,4)", {
      method: "HEAD",
      headers: { prefer: "count=exact" },
    });
    expect(head.headers.get("content-range")).toBe("0-1/2");
  });
});

describe("limited reads over flushed rows", () => {
  it("takes the first rows in key order from segments in key order, and from ones that are not", async () => {
    // A text key inserted out of order: the segment is in insertion (rowid) order, not key
    // order, so the early stop of a key-ordered read must not apply to it.
    const p = await projectWithSchema({
      tables: {
        words: { columns: { w: { type: "text", primaryKey: true }, n: { type: "integer" } } },
        nums: { columns: { id: { type: "integer", primaryKey: true }, n: { type: "integer" } } },
      },
    });
    const words = ["pear", "apple", "zebra", "fig", "kiwi", "date", "mango", "banana"];
    await rest(p, "/words", { method: "POST", body: words.map((w, n) => ({ w, n })) });
    await rest(p, "/nums", {
      method: "POST",
      body: Array.from({ length: 40 }, (_, i) => ({ id: i + 1, n: i })),
    });
    await admin(p, "flush");
    // A second segment of each, and dead rows in the first: deleted, and updated (now hot).
    await rest(p, "/words", {
      method: "POST",
      body: [
        { w: "cherry", n: 8 },
        { w: "aardvark", n: 9 },
      ],
    });
    await rest(p, "/nums", {
      method: "POST",
      body: [
        { id: 0, n: -1 },
        { id: 41, n: 40 },
      ],
    });
    await admin(p, "flush");
    await rest(p, "/words?w=eq.apple", { method: "DELETE" });
    await rest(p, "/nums?id=in.(1,2)", { method: "DELETE" });
    await rest(p, "/nums?id=eq.3", { method: "PATCH", body: { n: 100 } });
    const sortedWords = [...words, "cherry", "aardvark"].filter((w) => w !== "apple").sort();
    expect(await rows(p, "/words?select=w&limit=3")).toEqual(sortedWords.slice(0, 3).map((w) => ({ w })));
    expect(await rows(p, "/words?select=w&order=w&offset=2&limit=3")).toEqual(
      sortedWords.slice(2, 5).map((w) => ({ w })),
    );
    expect(await rows(p, "/nums?select=id&limit=3")).toEqual([{ id: 0 }, { id: 3 }, { id: 4 }]);
    expect(await rows(p, "/nums?select=id,n&n=gte.30&order=id&limit=2")).toEqual([
      { id: 3, n: 100 },
      { id: 31, n: 30 },
    ]);
    expect(await rows(p, "/nums?select=id&order=id.desc&limit=2")).toEqual([{ id: 41 }, { id: 40 }]);
    const head = await rest(p, "/nums?select=id&limit=1", {
      method: "HEAD",
      headers: { prefer: "count=exact" },
    });
    expect(head.headers.get("content-range")).toBe("0-0/40");
    const filtered = await rest(p, "/nums?n=lt.10&limit=1", {
      method: "HEAD",
      headers: { prefer: "count=exact" },
    });
    // n < 10: ids 1..10 and 0, less 1 and 2 (deleted) and 3 (now n = 100)
    expect(filtered.headers.get("content-range")).toBe("0-0/8");
  });
});

describe("filters over large flushed segments", () => {
  it("compare numbers column at a time exactly as SQL does, with and without nulls", async () => {
    const p = await projectWithSchema({
      tables: {
        m: {
          columns: {
            id: { type: "integer", primaryKey: true },
            x: { type: "float" },
            y: { type: "integer" },
          },
        },
      },
    });
    // Two segments of 2,000 rows: one with no null in x (read unboxed), one with some.
    const all: { id: number; x: number | null; y: number }[] = [];
    for (const seg of [0, 1]) {
      const batch = Array.from({ length: 2000 }, (_, j) => {
        const id = seg * 2000 + j + 1;
        return { id, x: seg === 1 && j % 7 === 0 ? null : (j % 100) / 4, y: j % 13 };
      });
      all.push(...batch);
      expect((await rest(p, "/m", { method: "POST", body: batch })).status).toBe(201);
      await admin(p, "flush");
    }
    await rest(p, "/m?id=in.(5,2005)", { method: "DELETE" });
    const live = all.filter((r) => r.id !== 5 && r.id !== 2005);
    const cases: [string, (r: (typeof all)[number]) => boolean][] = [
      ["x=gte.10&x=lt.12.5", (r) => r.x !== null && r.x >= 10 && r.x < 12.5],
      ["x=eq.0.25", (r) => r.x === 0.25],
      ["x=neq.0", (r) => r.x !== null && r.x !== 0],
      ["x=gt.24&y=lte.3", (r) => r.x !== null && r.x > 24 && r.y <= 3],
      ["y=lt.1&x=not.is.null", (r) => r.y < 1 && r.x !== null],
    ];
    for (const [q, pass] of cases) {
      const want = live.filter(pass);
      const head = await rest(p, `/m?${q}&limit=0`, { method: "HEAD", headers: { prefer: "count=exact" } });
      expect(head.headers.get("content-range"), q).toBe(`*/${want.length}`);
      const got = await rows(p, `/m?select=id&${q}&order=x.desc,id&limit=5`);
      const top = [...want].sort((a, b) => b.x! - a.x! || a.id - b.id).slice(0, 5);
      expect(got, q).toEqual(top.map((r) => ({ id: r.id })));
    }
  });
});
