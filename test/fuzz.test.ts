/**
 * Property-based hostile input (fast-check): random requests from the grammars a client speaks
 * (PostgREST query strings, Prefer/Range/Accept headers, JSON/NDJSON/CSV/Arrow bodies, schema
 * JSON, realtime and sync frames, storage paths/headers/bodies, vector_search bodies, OAuth
 * parameters) must each get a well-formed 2xx/3xx/4xx,
 * never a 500; injection strings in identifiers and values stay inert (the canary table and
 * its rows survive, nothing another project or the service role owns is reached). Runs
 * `FUZZ_RUNS` cases per property (default 60 here; `npm run soak` runs more), with a fixed
 * seed per run printed on failure by fast-check, so a failure reproduces.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it, vi } from "vitest";
import {
  ADMIN_KEY,
  BLOG_SCHEMA,
  call,
  type Init,
  projectWithSchema,
  putSchema,
  rest,
  type TestProject,
} from "./helpers/api.ts";
import { connectRealtime } from "./helpers/realtime.ts";
import { connectSync } from "./helpers/sync.ts";

const RUNS = Number((env as unknown as { FUZZ_RUNS?: string }).FUZZ_RUNS) || 60;
let cases = 0;
/** Per test: generous, since a soak run sends tens of thousands of requests. */
const TIMEOUT = Math.max(30_000, RUNS * 60);
vi.setConfig({ testTimeout: TIMEOUT });

/** encodeURIComponent, except that a lone surrogate is sent as the invalid UTF-8 it would be. */
function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s].map((c) => (/[\ud800-\udfff]/.test(c) ? "%ED%A0%80" : encodeURIComponent(c))).join("");
  }
}

/** Strings that break naive SQL, JSON, URL or HTML handling. */
const NASTY = [
  "'",
  '"',
  "';DROP TABLE posts;--",
  '") OR 1=1 --',
  "\\",
  "%",
  "*",
  "\u0000",
  "\ud800",
  "..",
  "../secrets",
  "<script>",
  "$" + "{x}",
  "()",
  ",",
  ".",
  ":",
  "->",
  "->>",
  "::text",
  "x".repeat(300),
  "secrets",
  "_hearth_wal",
  "sqlite_master",
];
const COLUMNS = [
  "id",
  "title",
  "score",
  "published",
  "meta",
  "created_at",
  "author_id",
  "body",
  "nope",
  "meta->a",
  "meta->>a",
];
const OPS = [
  "eq",
  "neq",
  "gt",
  "gte",
  "lt",
  "lte",
  "like",
  "ilike",
  "in",
  "is",
  "cs",
  "cd",
  "ov",
  "fts",
  "match",
  "isdistinct",
  "zz",
];

const nasty = fc.constantFrom(...NASTY);
const text = fc.oneof(fc.string({ maxLength: 20 }), nasty, fc.integer().map(String), fc.double().map(String));
const column = fc.oneof(fc.constantFrom(...COLUMNS), nasty);
const value = fc.oneof(
  text,
  fc.array(text, { maxLength: 4 }).map((xs) => `(${xs.join(",")})`),
  fc.constantFrom("null", "true", "not_null", "{}", "[1,2]", '{"a":1}'),
);
const filter = fc
  .tuple(column, fc.boolean(), fc.constantFrom(...OPS), value)
  .map(([c, not, op, v]) => `${enc(c)}=${not ? "not." : ""}${op}.${enc(v)}`);
const tree: fc.Arbitrary<string> = fc.letrec((tie) => ({
  cond: fc.oneof(
    { depthSize: "small" },
    fc.tuple(column, fc.constantFrom(...OPS), text).map(([c, op, v]) => `${c}.${op}.${v}`),
    fc
      .tuple(fc.constantFrom("or", "and", "not.or"), fc.array(tie("cond"), { minLength: 1, maxLength: 3 }))
      .map(([k, xs]) => `${k}(${xs.join(",")})`),
  ),
})).cond as fc.Arbitrary<string>;
const select = fc.oneof(
  fc.constant("*"),
  fc
    .array(
      fc.oneof(
        column,
        fc.constantFrom("authors(*)", "authors!inner(name)", "count()", "score.sum()", "...authors(name)"),
      ),
      {
        minLength: 1,
        maxLength: 4,
      },
    )
    .map((xs) => xs.map((x) => enc(x)).join(",")),
);
const query = fc
  .record(
    {
      select,
      filters: fc.array(filter, { maxLength: 4 }),
      logic: fc.option(tree.map((t) => `or=(${enc(t)})`)),
      order: fc.option(
        fc
          .tuple(column, fc.constantFrom("asc", "desc", "desc.nullslast", "up"))
          .map(([c, d]) => `order=${enc(c)}.${d}`),
      ),
      limit: fc.option(
        fc.oneof(fc.integer({ min: -5, max: 20_000 }).map(String), text).map((l) => `limit=${enc(l)}`),
      ),
      offset: fc.option(
        fc.oneof(fc.integer({ min: -5, max: 1e9 }).map(String), text).map((o) => `offset=${enc(o)}`),
      ),
    },
    { requiredKeys: ["select", "filters"] },
  )
  .map((q) =>
    [`select=${q.select}`, ...q.filters, q.logic, q.order, q.limit, q.offset]
      .filter((x): x is string => !!x)
      .join("&"),
  );
/** Text a header value can hold (fetch refuses control characters before sending). */
const headerText = text.filter((t) =>
  [...t].every((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) <= 0xff && c !== "\u007f"),
);
const headers = fc.record(
  {
    prefer: fc.constantFrom(
      "count=exact",
      "count=planned",
      "return=representation",
      "resolution=merge-duplicates",
      "tx=rollback",
      "missing=default",
      "bogus",
      "count=exact, return=minimal",
    ),
    range: fc.oneof(fc.constantFrom("0-9", "5-", "-1", "a-b", "10-2", "0-999999999999"), headerText),
    accept: fc.constantFrom(
      "application/json",
      "text/csv",
      "application/vnd.pgrst.object+json",
      "application/geo+json",
      "*/*",
      "application/vnd.apache.arrow.stream",
      "nope/nope",
    ),
  },
  { requiredKeys: [] },
);

/** A request of `{url}/rest/v1` with the project's anon key (`rest` sends the service key). */
function anon(p: TestProject, path: string, init: Init = {}): Promise<Response> {
  const headers = { ...(init.headers as Record<string, string> | undefined), apikey: p.anonKey };
  return call(`${p.url}/rest/v1${path}`, { ...init, key: p.anonKey, headers });
}

/** A response a client can rely on: under 500, and a PostgREST-shaped body when it is an error. */
async function wellFormed(res: Response, what: string): Promise<void> {
  cases++;
  expect(res.status, what).toBeLessThan(500);
  if (res.status >= 400 && res.headers.get("content-type")?.includes("json") && !what.startsWith("HEAD")) {
    const body = (await res.json()) as Record<string, unknown>;
    expect(
      typeof body.code === "string" || typeof body.error === "string",
      `${what}: ${JSON.stringify(body)}`,
    ).toBe(true);
  } else await res.body?.cancel();
}

describe("fuzzed REST requests", () => {
  let p: TestProject;
  let other: TestProject;
  beforeAll(async () => {
    p = await projectWithSchema(BLOG_SCHEMA);
    other = await projectWithSchema(BLOG_SCHEMA);
    const seed = (t: TestProject) =>
      call(`${t.url}/rest/v1/secrets`, {
        method: "POST",
        key: t.serviceKey,
        body: [{ id: 1, value: "canary" }],
      });
    expect((await seed(p)).status).toBe(201);
    expect((await seed(other)).status).toBe(201);
  });

  it("answers every read, update and delete with a well-formed 2xx/4xx; the anon key changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        query,
        headers,
        fc.constantFrom("GET", "HEAD", "PATCH", "DELETE"),
        async (q, h, method) => {
          const init = method === "PATCH" ? { method, body: { score: 1 } } : { method };
          const res = await anon(p, `/posts?${q}`, { ...init, headers: h as Record<string, string> });
          await wellFormed(res, `${method} /posts?${q}`);
          // posts are writable by the service role only: the anon key never changes a row.
          if (method !== "GET" && method !== "HEAD") expect(res.status).not.toBe(204);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("answers random bodies of every format with a well-formed 2xx/4xx", async () => {
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
    const row = fc
      .dictionary(column, fc.oneof(fc.jsonValue({ maxDepth: 2 }), nasty), { maxKeys: 5 })
      .map((r) => JSON.stringify(r));
    const body = fc.oneof(
      fc.tuple(
        fc.constant("application/json"),
        fc.oneof(
          json,
          row,
          row.map((r) => `[${r},${r}]`),
          text,
        ),
      ),
      fc.tuple(
        fc.constant("application/x-ndjson"),
        fc.array(fc.oneof(row, text), { maxLength: 4 }).map((xs) => xs.join("\n")),
      ),
      fc.tuple(
        fc.constant("text/csv"),
        fc
          .array(
            fc.array(text, { minLength: 1, maxLength: 4 }).map((xs) => xs.join(",")),
            { maxLength: 4 },
          )
          .map((xs) => ["title,score", ...xs].join("\n")),
      ),
      fc.tuple(fc.constant("application/vnd.apache.arrow.stream"), fc.uint8Array({ maxLength: 200 })),
    );
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.constantFrom("POST", "PATCH"),
        fc.boolean(),
        async ([type, b], method, service) => {
          const res = await call(`${p.url}/rest/v1/posts${method === "PATCH" ? "?id=eq.1" : ""}`, {
            method,
            key: service ? p.serviceKey : p.anonKey,
            headers: { "content-type": type, apikey: service ? p.serviceKey : p.anonKey },
            body: b,
          });
          await wellFormed(res, `${method} ${type} ${String(b).slice(0, 80)}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("keeps injection inert: the service-only canary is never read or changed with the anon key, and survives", async () => {
    await fc.assert(
      fc.asyncProperty(query, fc.constantFrom("GET", "PATCH", "DELETE"), async (q, method) => {
        const res = await anon(
          p,
          `/secrets?${q}`,
          method === "PATCH" ? { method, body: { value: "x" } } : { method },
        );
        cases++;
        expect(res.status, `${method} /secrets?${q}`).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        await res.body?.cancel();
      }),
      { numRuns: RUNS },
    );
    for (const t of [p, other]) {
      const res = await call(`${t.url}/rest/v1/secrets?select=id,value`, {
        key: t.serviceKey,
        headers: { apikey: t.serviceKey },
      });
      expect(await res.json()).toEqual([{ id: 1, value: "canary" }]);
    }
  });

  it("refuses every key of one project on another", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("anonKey", "serviceKey") as fc.Arbitrary<"anonKey" | "serviceKey">,
        query,
        async (k, q) => {
          const res = await call(`${other.url}/rest/v1/secrets?${q}`, {
            key: p[k],
            headers: { apikey: p[k] },
          });
          cases++;
          expect(res.status).toBe(401);
          await res.body?.cancel();
        },
      ),
      { numRuns: Math.ceil(RUNS / 3) },
    );
  });
});

describe("fuzzed schema JSON", () => {
  it("answers every PUT /schema with 200 or a clear 4xx, and a refused one changes nothing", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const before = await (
      await call(`${p.url}/schema`, { key: p.serviceKey, headers: { apikey: p.serviceKey } })
    ).json();
    const columnDef = fc.record(
      {
        type: fc.oneof(
          fc.constantFrom(
            "text",
            "integer",
            "bigint",
            "float",
            "boolean",
            "json",
            "uuid",
            "timestamp",
            "date",
            "bytes",
            "vector",
            "money",
          ),
          text,
        ),
        primaryKey: fc.boolean(),
        notNull: fc.boolean(),
        unique: fc.boolean(),
        encrypted: fc.boolean(),
        default: fc.oneof(fc.constantFrom("now", "random", "increment"), fc.jsonValue({ maxDepth: 1 })),
        references: fc.oneof(fc.constantFrom("authors.id", "posts.id", "nope.id"), text),
        dimensions: fc.integer({ min: -1, max: 5000 }),
      },
      { requiredKeys: ["type"] },
    );
    const schema = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({
        tables: fc.dictionary(
          fc.oneof(fc.constantFrom("posts", "authors", "t", "com.example.x"), nasty),
          fc.record(
            {
              columns: fc.dictionary(fc.oneof(fc.constantFrom("id", "title", "n"), nasty), columnDef, {
                maxKeys: 3,
              }),
            },
            { requiredKeys: [] },
          ),
          { maxKeys: 2 },
        ),
      }),
    );
    await fc.assert(
      fc.asyncProperty(schema, async (s) => {
        // A fresh project per accepted schema would be slow: accepted ones are put back after.
        const res = await putSchema(p, s);
        await wellFormed(res, `PUT /schema ${JSON.stringify(s).slice(0, 200)}`);
        if (res.status === 200) expect((await putSchema(p, before)).status).toBeLessThan(500);
      }),
      { numRuns: RUNS },
    );
    const after = await (
      await call(`${p.url}/schema`, { key: p.serviceKey, headers: { apikey: p.serviceKey } })
    ).json();
    expect(after).toMatchObject({ tables: expect.objectContaining({ posts: expect.anything() }) });
  });
});

describe("fuzzed WebSocket frames", () => {
  it("realtime and sync answer random frames with error frames or a clean close, and keep serving", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const frame = fc.oneof(
      text,
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc
        .tuple(
          fc.option(text),
          fc.option(text),
          fc.oneof(text, fc.constant("realtime:x")),
          fc.constantFrom(
            "phx_join",
            "heartbeat",
            "broadcast",
            "presence",
            "access_token",
            "phx_leave",
            "zz",
          ),
          fc.jsonValue({ maxDepth: 2 }),
        )
        .map((f) => JSON.stringify(f)),
      fc
        .record(
          {
            type: fc.constantFrom("pull", "push", "ack", "ping", "zz"),
            cursor: fc.jsonValue({ maxDepth: 1 }),
            tables: fc.jsonValue({ maxDepth: 1 }),
            mutations: fc.jsonValue({ maxDepth: 2 }),
            seq: fc.jsonValue({ maxDepth: 0 }),
          },
          { requiredKeys: ["type"] },
        )
        .map((f) => JSON.stringify(f)),
    );
    const rt = await connectRealtime(p, p.anonKey);
    const sync = await connectSync(p, p.anonKey);
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 5 }), async (frames) => {
        for (const f of frames) {
          cases += 2;
          if (!rt.closed) rt.ws.send(f);
          if (!sync.closed) sync.send(f);
        }
      }),
      { numRuns: RUNS },
    );
    // Each socket either still answers a ping or closed with a code of the protocol (never 1011).
    const rtRef = "fuzz-end";
    if (!rt.closed) {
      rt.ws.send(JSON.stringify([null, rtRef, "phoenix", "heartbeat", {}]));
      await rt.waitFor((f) => f[1] === rtRef, 30_000);
    }
    if (!sync.closed) {
      const from = sync.frames.length;
      sync.send({ type: "ping" });
      await sync.waitFor((f) => f.type === "pong", 30_000, from);
    }
    for (const s of [rt, sync]) if (s.closed) expect(s.closed.code).not.toBe(1011);
    rt.close();
    sync.close();
    // And the project still serves.
    expect((await rest(p, "/posts?limit=1")).status).toBe(200);
  });
});

describe("fuzzed storage requests", () => {
  // The anon key and no key go to `p`, whose private canary must survive; the service key,
  // which may change anything, goes to `q`, set up the same way.
  let p: TestProject;
  let q: TestProject;
  const SECRET = "canary bytes";
  const storage = (t: TestProject, path: string, init: Init) => call(`${t.url}/storage/v1${path}`, init);
  beforeAll(async () => {
    p = await projectWithSchema(BLOG_SCHEMA);
    q = await projectWithSchema(BLOG_SCHEMA);
    for (const t of [p, q]) {
      for (const body of [{ id: "private" }, { id: "open", public: true, fileSizeLimit: 64 }]) {
        expect((await storage(t, "/bucket", { method: "POST", key: t.serviceKey, body })).status).toBe(200);
      }
      const put = await storage(t, "/object/private/canary.txt", {
        method: "POST",
        key: t.serviceKey,
        headers: { "content-type": "text/plain" },
        body: SECRET,
      });
      expect(put.status).toBe(200);
    }
  });

  it("answers random paths, headers and bodies with a well-formed 2xx/4xx; the anon key never reads or changes the private bucket", async () => {
    const segment = fc.oneof(
      fc.constantFrom("private", "open", "nope", "canary.txt", "a", "a.txt", "", ".", "%2e%2e", "%00"),
      nasty.map(enc),
      fc.string({ maxLength: 12 }).map(enc),
    );
    const route = fc.oneof(
      fc.constantFrom(
        "/bucket",
        "/bucket/private",
        "/bucket/open",
        "/bucket/private/empty",
        "/object/list/private",
        "/object/list/open",
        "/object/move",
        "/object/copy",
        "/object/sign/private",
        "/object/private",
        "/object/open/a.txt",
        "/object/private/canary.txt",
        "/object/public/open/a.txt",
        "/object/public/private/canary.txt",
        "/object/authenticated/private/canary.txt",
        "/object/info/private/canary.txt",
        "/object/sign/private/canary.txt",
        "/usage",
        "/quota",
        "/sweep",
      ),
      fc
        .tuple(
          fc.constantFrom(
            "/object/",
            "/object/public/",
            "/object/authenticated/",
            "/object/info/",
            "/object/sign/",
            "/object/upload/sign/",
            "/bucket/",
            "/object/list/",
          ),
          fc.array(segment, { minLength: 1, maxLength: 4 }),
        )
        .map(([head, parts]) => head + parts.join("/")),
    );
    const jsonBody = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.record(
        {
          id: fc.oneof(text, fc.constantFrom("private", "open")),
          name: text,
          public: fc.jsonValue({ maxDepth: 0 }),
          fileSizeLimit: fc.oneof(fc.integer(), text, fc.constant(null)),
          allowedMimeTypes: fc.oneof(fc.array(text, { maxLength: 3 }), text),
          bucketId: fc.oneof(text, fc.constantFrom("private", "open")),
          sourceKey: fc.oneof(text, fc.constant("canary.txt")),
          destinationKey: text,
          destinationBucket: fc.oneof(text, fc.constant("open")),
          prefixes: fc.oneof(fc.array(fc.oneof(text, fc.constant("canary.txt")), { maxLength: 3 }), text),
          prefix: text,
          limit: fc.oneof(fc.integer(), text),
          offset: fc.oneof(fc.integer(), text),
          search: fc.jsonValue({ maxDepth: 0 }),
          sortBy: fc.jsonValue({ maxDepth: 1 }),
          expiresIn: fc.oneof(fc.integer(), fc.double(), text),
          paths: fc.array(fc.oneof(text, fc.constant("canary.txt")), { maxLength: 3 }),
          quotaBytes: fc.oneof(fc.integer(), fc.double(), text, fc.constant(null)),
          olderThanSeconds: fc.oneof(fc.integer(), text),
        },
        { requiredKeys: [] },
      ),
    );
    const body = fc.oneof(
      jsonBody.map((b) => ({ type: "application/json", body: JSON.stringify(b) })),
      fc
        .tuple(fc.constantFrom("text/plain", "image/png", "", "multipart/form-data; boundary=x", "zz"), text)
        .map(([type, b]) => ({ type, body: b })),
      fc.uint8Array({ maxLength: 300 }).map((b) => ({ type: "application/octet-stream", body: b })),
    );
    const headers = fc.record(
      {
        "x-upsert": fc.constantFrom("true", "false", "TRUE", "1", ""),
        "cache-control": fc.oneof(fc.constantFrom("max-age=60", "3600", "-1", "no-cache"), headerText),
        "x-metadata": fc.oneof(
          fc.jsonValue({ maxDepth: 1 }).map((v) => btoa(JSON.stringify(v))),
          headerText,
        ),
        range: fc.oneof(
          fc.constantFrom("bytes=0-3", "bytes=5-", "bytes=-2", "bytes=9-1", "bytes=0-99999999", "lines=1-2"),
          headerText,
        ),
      },
      { requiredKeys: [] },
    );
    const statuses = new Map<number, number>();
    const query = fc.option(
      fc.dictionary(fc.constantFrom("token", "download", "limit", "offset", "search"), text, { maxKeys: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(
        route,
        fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"),
        body,
        headers,
        query,
        fc.constantFrom("anon", "service", "none"),
        async (path, method, b, h, params, who) => {
          const t = who === "service" ? q : p;
          const key = who === "anon" ? p.anonKey : who === "service" ? q.serviceKey : undefined;
          const qs = params ? `?${new URLSearchParams(params as Record<string, string>)}` : "";
          const hs: Record<string, string> = { ...(h as Record<string, string>) };
          if (b.type) hs["content-type"] = b.type;
          if (key) hs.apikey = key;
          const hasBody = method !== "GET" && method !== "HEAD";
          const res = await storage(t, `${path}${qs}`, {
            method,
            ...(key ? { key } : {}),
            headers: hs,
            ...(hasBody ? { body: b.body } : {}),
          });
          const what = `${method} ${who} ${path}${qs}`;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          // A private object read with a key that may not read it: never a 2xx.
          if (
            who !== "service" &&
            path.startsWith("/object/") &&
            path.includes("canary.txt") &&
            method !== "DELETE"
          ) {
            if (!path.startsWith("/object/sign/") && !path.startsWith("/object/upload/")) {
              expect(res.status, what).toBeGreaterThanOrEqual(400);
            }
          }
          await wellFormed(res, what);
        },
      ),
      { numRuns: RUNS * 2 },
    );
    console.log(`fuzz storage statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    // The canary survived everything the anon key and no key sent, and nothing reached it.
    const read = await storage(p, "/object/private/canary.txt", { key: p.serviceKey });
    expect(read.status).toBe(200);
    expect(await read.text()).toBe(SECRET);
  });
});

describe("fuzzed vector_search bodies", () => {
  it("answers every body with a well-formed 2xx/4xx", async () => {
    const p = await projectWithSchema({
      tables: {
        items: {
          columns: {
            id: { type: "integer", primaryKey: true },
            cat: { type: "text" },
            emb: { type: "vector", dimensions: 3 },
          },
          policy: { read: "public", write: "service" },
        },
        hidden: {
          columns: { id: { type: "integer", primaryKey: true }, emb: { type: "vector", dimensions: 3 } },
          policy: { read: "service", write: "service" },
        },
      },
    });
    for (const table of ["items", "hidden"]) {
      const rows = Array.from({ length: 20 }, (_, i) => ({
        id: i,
        emb: [i, 1, -i],
        ...(table === "items" ? { cat: `c${i % 3}` } : {}),
      }));
      expect((await rest(p, `/${table}`, { method: "POST", body: rows })).status).toBe(201);
    }
    const num = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, -0, 1e308, -1e308));
    const vector = fc.oneof(
      fc.array(num, { minLength: 3, maxLength: 3 }),
      fc.array(num, { maxLength: 5 }),
      fc.jsonValue({ maxDepth: 1 }),
      fc.constant("[1,2,3]"),
    );
    const body = fc.record(
      {
        table: fc.oneof(fc.constantFrom("items", "hidden", "nope"), nasty),
        column: fc.oneof(fc.constantFrom("emb", "cat", "id", "nope"), nasty),
        vector,
        k: fc.oneof(fc.integer({ min: -2, max: 1_200 }), fc.double(), text),
        metric: fc.oneof(fc.constantFrom("cosine", "l2", "dot", "L2", "hamming"), text),
        filter: fc.oneof(
          filter,
          tree.map((t) => `or=(${enc(t)})`),
          fc.constantFrom("cat=eq.c1", "id=gt.3", "select=id", "order=id", "limit=1", "emb=eq.[1,1,1]"),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        select: fc.oneof(select, fc.jsonValue({ maxDepth: 0 })),
        exact: fc.jsonValue({ maxDepth: 0 }),
      },
      { requiredKeys: ["table", "column", "vector"] },
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (b, service) => {
        const res = await call(`${p.url}/rest/v1/rpc/vector_search`, {
          method: "POST",
          key: service ? p.serviceKey : p.anonKey,
          headers: { apikey: service ? p.serviceKey : p.anonKey },
          body: b,
        });
        const what = `vector_search ${service ? "service" : "anon"} ${JSON.stringify(b).slice(0, 200)}`;
        // The service-only table is never searched with the anon key.
        if (!service && b.table === "hidden") expect(res.status, what).toBeGreaterThanOrEqual(400);
        await wellFormed(res, what);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzzed OAuth parameters", () => {
  it("GET /oauth/authorize and POST /oauth/token answer random parameters with a clear 4xx or a redirect", async () => {
    const param = fc.oneof(
      text,
      fc.constantFrom(
        "code",
        "S256",
        "plain",
        "https://app.example/callback",
        "db:posts:read",
        "authorization_code",
        "refresh_token",
      ),
    );
    const params = fc.dictionary(
      fc.constantFrom(
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "project_id",
        "grant_type",
        "code",
        "code_verifier",
        "refresh_token",
        "client_secret",
      ),
      param,
      { maxKeys: 8 },
    );
    await fc.assert(
      fc.asyncProperty(params, async (ps) => {
        const qs = new URLSearchParams(ps).toString();
        await wellFormed(
          await call(`/oauth/authorize?${qs}`, { redirect: "manual" }),
          `GET /oauth/authorize?${qs}`,
        );
        await wellFormed(
          await call("/oauth/token", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: qs,
          }),
          `POST /oauth/token ${qs}`,
        );
        await wellFormed(
          await call("/oauth/revoke", {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: qs,
          }),
          `POST /oauth/revoke ${qs}`,
        );
      }),
      { numRuns: RUNS },
    );
    // The admin key is not an OAuth credential anywhere.
    const res = await call("/account/grants", { key: ADMIN_KEY });
    expect(res.status).toBeGreaterThanOrEqual(400);
    await res.body?.cancel();
  });

  it("reports how many cases ran", () => {
    console.log(`fuzz: ${cases} requests and frames, ${RUNS} runs per property`);
    expect(cases).toBeGreaterThan(RUNS * 5);
  });
});
