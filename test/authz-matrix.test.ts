import { decodeJwt, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ORIGIN, workerApi } from "./helpers/api.ts";
import {
  type Account,
  type Api,
  type AppTokens,
  addMember,
  type CreatedProject,
  connectApp,
  createOwnedProject,
  grantOf,
  registerApp,
  revokeGrant,
  signup,
} from "./helpers/oauth.ts";
import { PhxClient } from "./helpers/realtime.ts";

const SECRET = "test-jwt-secret-0123456789abcdef0123456789abcdef"; // vitest.config.ts
const WRONG_SECRET = "not-the-server-secret-0123456789abcdef0123456789";

// The gateway's fetch handler is called directly: through `exports.default.fetch` the test
// harness's per-request cost grows with every request of the file (1 ms → 8 ms per /health
// after 150 calls here), which made this ~2,000-request matrix time out.
const api: Api = workerApi;

// --- tables: one per policy, declared by the apps (namespaced, so app scopes can name them) ---
const PUB = "org.matrix.pub";
const MEM = "org.matrix.mem";
const OWN = "org.matrix.own";
const SVC = "org.matrix.svc";
const TABLES = [PUB, MEM, OWN, SVC] as const;
type Table = (typeof TABLES)[number];
const tableDef = (policy: string) => ({
  columns: { id: { type: "integer", primaryKey: true }, text: { type: "text" } },
  policy: { read: policy, write: policy },
});
const APP_TABLES = {
  [PUB]: tableDef("public"),
  [MEM]: tableDef("members"),
  [OWN]: tableDef("owner"),
  [SVC]: tableDef("service"),
};

// --- principals -------------------------------------------------------------------------------
const PRINCIPALS = [
  "anon", // the project's anon key
  "service", // the project's service key
  "owner", // the owning account's access token
  "reader", // member, role reader
  "writer", // member, role writer
  "stranger", // a valid account, not a member
  "appRead", // app token, db:T:read on every matrix table (the owner's grant)
  "appWrite", // app token, db:T:write on every matrix table (the owner's grant)
  "appRevoked", // app token whose grant was revoked (DELETE /account/grants/:id)
  "expired", // the owner's access token, expired
  "otherKey", // the service key of another project
  "otherApp", // an app token granted on another project
  "forged", // the owner's claims, signed with another secret
  "none", // no credential at all
] as const;
type Principal = (typeof PRINCIPALS)[number];

/*
 * Expected outcomes, one string per principal in PRINCIPALS order: "<status>[ <code>|<tag>]".
 * Codes: the error body's `code`. Tags: `all` / `own` (GET: every row / only the caller's
 * rows), `noop` (2xx, but nothing may change), `shown` / `hidden` (is the project in the
 * list), `keys` / `nokeys` (does the answer carry anonKey and serviceKey).
 */
const BAD = "401 PGRST301"; // a credential that fails verification for this project
const NOKEY = "401 HEARTH_UNAUTHORIZED"; // no credential / platform API refusing a bad token
const A401 = "401 42501"; // the anon key on a non-public table
const DENY = "403 42501"; // policy or scope refuses an authenticated caller
const FORBID = "403 HEARTH_FORBIDDEN";
const HIDDEN = "404 HEARTH_PROJECT_NOT_FOUND";
const TAIL_PROJECT = [BAD, BAD, BAD, BAD, BAD, NOKEY]; // appRevoked, expired, otherKey, otherApp, forged, none
const TAIL_HEAD = TAIL_PROJECT.map((c) => c.slice(0, 3)); // HEAD answers carry no body, so no code
const TAIL_PLATFORM = [FORBID, NOKEY, FORBID, FORBID, NOKEY, NOKEY]; // same principals on /v1/...

const ALL = "200 all"; // GET answers every row of the table
const OWN_ROWS = "200 own"; // GET answers only the caller's rows
const NOOP = "204 noop"; // accepted, but must change nothing
type Row = readonly string[];

// Columns: anon, service, owner, reader, writer, stranger, appRead, appWrite, then the six
// credentials that never reach a project (TAIL_*): appRevoked, expired, otherKey, otherApp, forged, none.
// biome-ignore format: the expectation table is aligned by hand, one route per line
const EXPECT: Record<string, Row> = {
  [`GET ${PUB}`]:    [ALL,   ALL,   ALL,   ALL,   ALL,   ALL,   ALL,   ALL,   ...TAIL_PROJECT],
  [`HEAD ${PUB}`]:   ["200", "200", "200", "200", "200", "200", "200", "200", ...TAIL_HEAD],
  [`POST ${PUB}`]:   ["201", "201", "201", "201", "201", "201", DENY,  "201", ...TAIL_PROJECT],
  [`PATCH ${PUB}`]:  ["204", "204", "204", "204", "204", "204", DENY,  "204", ...TAIL_PROJECT],
  [`DELETE ${PUB}`]: ["204", "204", "204", "204", "204", "204", DENY,  "204", ...TAIL_PROJECT],

  [`GET ${MEM}`]:    [A401,  ALL,   ALL,   ALL,   ALL,   DENY,  ALL,   ALL,   ...TAIL_PROJECT],
  [`HEAD ${MEM}`]:   ["401", "200", "200", "200", "200", "403", "200", "200", ...TAIL_HEAD],
  [`POST ${MEM}`]:   [A401,  "201", "201", DENY,  "201", DENY,  DENY,  "201", ...TAIL_PROJECT],
  [`PATCH ${MEM}`]:  [A401,  "204", "204", DENY,  "204", DENY,  DENY,  "204", ...TAIL_PROJECT],
  [`DELETE ${MEM}`]: [A401,  "204", "204", DENY,  "204", DENY,  DENY,  "204", ...TAIL_PROJECT],

  [`GET ${OWN}`]:    [A401,  ALL,   OWN_ROWS, OWN_ROWS, OWN_ROWS, OWN_ROWS, OWN_ROWS, OWN_ROWS, ...TAIL_PROJECT],
  [`HEAD ${OWN}`]:   ["401", "200", "200", "200", "200", "200", "200", "200", ...TAIL_HEAD],
  [`POST ${OWN}`]:   [A401,  "201", "201", "201", "201", "201", DENY,  "201", ...TAIL_PROJECT],
  [`PATCH ${OWN}`]:  [A401,  "204", "204", "204", "204", "204", DENY,  "204", ...TAIL_PROJECT],
  [`DELETE ${OWN}`]: [A401,  "204", "204", "204", "204", "204", DENY,  "204", ...TAIL_PROJECT],
  [`PATCH ${OWN} (another account's row)`]:  [A401, "204", NOOP, NOOP, NOOP, NOOP, DENY, NOOP, ...TAIL_PROJECT],
  [`DELETE ${OWN} (another account's row)`]: [A401, "204", NOOP, NOOP, NOOP, NOOP, DENY, NOOP, ...TAIL_PROJECT],

  [`GET ${SVC}`]:    [A401,  ALL,   DENY,  DENY,  DENY,  DENY,  DENY,  DENY,  ...TAIL_PROJECT],
  [`HEAD ${SVC}`]:   ["401", "200", "403", "403", "403", "403", "403", "403", ...TAIL_HEAD],
  [`POST ${SVC}`]:   [A401,  "201", DENY,  DENY,  DENY,  DENY,  DENY,  DENY,  ...TAIL_PROJECT],
  [`PATCH ${SVC}`]:  [A401,  "204", DENY,  DENY,  DENY,  DENY,  DENY,  DENY,  ...TAIL_PROJECT],
  [`DELETE ${SVC}`]: [A401,  "204", DENY,  DENY,  DENY,  DENY,  DENY,  DENY,  ...TAIL_PROJECT],

  // Realtime: join a postgres_changes channel with the principal's token (the socket opens with
  // the anon key, as supabase-js does), then hear about rows written by the service key.
  [`SUBSCRIBE ${PUB}`]: [ALL,  ALL,   ALL,   ALL,   ALL,   ALL,   ALL,   ALL,   ...TAIL_PROJECT],
  [`SUBSCRIBE ${MEM}`]: [A401, ALL,   ALL,   ALL,   ALL,   DENY,  ALL,   ALL,   ...TAIL_PROJECT],
  [`SUBSCRIBE ${OWN}`]: [A401, ALL,   OWN_ROWS, OWN_ROWS, OWN_ROWS, OWN_ROWS, OWN_ROWS, OWN_ROWS, ...TAIL_PROJECT],
  [`SUBSCRIBE ${SVC}`]: [A401, ALL,   DENY,  DENY,  DENY,  DENY,  DENY,  DENY,  ...TAIL_PROJECT],

  "GET {url}/schema":         [FORBID, "200", FORBID, FORBID, FORBID, FORBID, FORBID, FORBID, ...TAIL_PROJECT],
  "PUT {url}/schema":         [FORBID, "200", FORBID, FORBID, FORBID, FORBID, FORBID, FORBID, ...TAIL_PROJECT],
  "GET {url}/admin/v1/stats": [FORBID, "200", FORBID, FORBID, FORBID, FORBID, FORBID, FORBID, ...TAIL_PROJECT],
  "GET {url}/export":         [FORBID, "200", "200",  FORBID, FORBID, FORBID, FORBID, FORBID, ...TAIL_PROJECT],

  "GET /v1/projects":              [FORBID, FORBID, "200 shown", "200 shown",  "200 shown",  "200 hidden", FORBID, FORBID, ...TAIL_PLATFORM],
  "GET /v1/projects/:id":          [FORBID, FORBID, "200 keys",  "200 nokeys", "200 nokeys", HIDDEN,       FORBID, FORBID, ...TAIL_PLATFORM],
  "POST /v1/projects/:id/members": [FORBID, FORBID, "201",       FORBID,       FORBID,       HIDDEN,       FORBID, FORBID, ...TAIL_PLATFORM],
  // Runs last, the owner's cell after every other: it deletes the project.
  "DELETE /v1/projects/:id":       [FORBID, FORBID, "204",       FORBID,       FORBID,       HIDDEN,       FORBID, FORBID, ...TAIL_PLATFORM],
};

interface Expected {
  status: number;
  code: string | null;
  tag: string | null;
}
function parse(cell: string): Expected {
  const [status, extra] = cell.split(" ");
  const isTag = extra !== undefined && /^[a-z]+$/.test(extra);
  return { status: Number(status), code: extra && !isTag ? extra : null, tag: isTag ? extra : null };
}

// --- fixtures -------------------------------------------------------------------------------
let project: CreatedProject;
let other: CreatedProject;
let owner: Account;
let reader: Account;
let writer: Account;
let stranger: Account;
let candidate: Account; // the account the owner adds in the members cell
const tokens = {} as Record<Principal, string | null>;
const accountOf = {} as Record<Principal, string | null>;
let nextId = 1000;

/** The principal's credential as `Authorization: Bearer`. */
function auth(p: Principal, extra: Record<string, string> = {}): Record<string, string> {
  const token = tokens[p];
  return token ? { authorization: `Bearer ${token}`, ...extra } : extra;
}

function req(path: string, init: RequestInit = {}): Promise<Response> {
  return api.fetch(path.startsWith("http") ? path : `${ORIGIN}${path}`, init);
}

const service = (extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${project.serviceKey}`,
  ...extra,
});

async function ok<T>(res: Response, status: number, what: string): Promise<T> {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface DbRow {
  id: number;
  text: string | null;
  owner_id?: string | null;
}

async function rowsOf(table: Table, query = ""): Promise<DbRow[]> {
  const res = await req(`${project.url}/rest/v1/${table}?order=id${query}`, { headers: service() });
  return ok<DbRow[]>(res, 200, `service read of ${table}`);
}

async function seed(table: Table, ownerId: string | null): Promise<number> {
  const id = nextId++;
  const body: Record<string, unknown> = { id, text: "seed" };
  if (table === OWN) body.owner_id = ownerId;
  const res = await req(`${project.url}/rest/v1/${table}`, {
    method: "POST",
    headers: service({ "content-type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`seed ${table}: ${res.status} ${await res.text()}`);
  return id;
}

interface Snapshot {
  counts: Record<string, number>;
  walLast: number | null;
  schemaVersion: number;
  members: string[];
}

/** What a refused write must leave untouched. */
async function snapshot(): Promise<Snapshot> {
  const counts: Record<string, number> = {};
  for (const t of TABLES) {
    const res = await req(`${project.url}/rest/v1/${t}?select=id&limit=1`, {
      headers: service({ prefer: "count=exact" }),
    });
    expect(res.status, `count of ${t}`).toBeLessThan(300);
    await res.arrayBuffer();
    counts[t] = Number(res.headers.get("content-range")?.split("/")[1]);
  }
  const stats = await ok<{ wal: { last: number | null }; schemaVersion: number }>(
    await req(`${project.url}/admin/v1/stats`, { headers: service() }),
    200,
    "stats",
  );
  const members = await ok<{ accountId: string; role: string }[]>(
    await req(`/v1/projects/${project.id}/members`, {
      headers: { authorization: `Bearer ${owner.accessToken}` },
    }),
    200,
    "members",
  );
  return {
    counts,
    walLast: stats.wal.last,
    schemaVersion: stats.schemaVersion,
    members: members.map((m) => `${m.accountId}:${m.role}`).sort(),
  };
}

// --- routes ---------------------------------------------------------------------------------
interface CellContext {
  p: Principal;
  expected: Expected;
  allowed: boolean;
}
interface Route {
  name: string;
  /** A write: refused (or `noop`) ⇒ the snapshot must not change. */
  write: boolean;
  /** Prepares state (seeded rows), sends the request, returns a check of the effect. */
  run(
    ctx: CellContext,
  ): Promise<{ send: () => Promise<Response>; check?: (res: Response, body: unknown) => Promise<void> }>;
}

function restRoutes(table: Table): Route[] {
  const url = (q = "") => `${project.url}/rest/v1/${table}${q}`;
  /** Whose row an account-like caller may touch: its own (owner-policy tables). */
  const ownerFor = (p: Principal) => accountOf[p] ?? owner.id;
  const routes: Route[] = [
    {
      name: `GET ${table}`,
      write: false,
      async run({ p, expected }) {
        return {
          send: () => req(url("?order=id"), { headers: auth(p) }),
          async check(_res, body) {
            const all = await rowsOf(table);
            const want =
              expected.tag === "own"
                ? all.filter((r) => r.owner_id === accountOf[p])
                : expected.tag === "all"
                  ? all
                  : [];
            expect((body as DbRow[]).map((r) => r.id)).toEqual(want.map((r) => r.id));
            if (expected.tag === "own") expect(want.length).toBeGreaterThan(0);
          },
        };
      },
    },
    {
      name: `HEAD ${table}`,
      write: false,
      async run({ p }) {
        return { send: () => req(url(), { method: "HEAD", headers: auth(p) }) };
      },
    },
    {
      name: `POST ${table}`,
      write: true,
      async run({ p }) {
        const id = nextId++;
        return {
          send: () =>
            req(url(), {
              method: "POST",
              headers: auth(p, { "content-type": "application/json" }),
              body: JSON.stringify({ id, text: `by ${p}` }),
            }),
          async check() {
            const [created] = await rowsOf(table, `&id=eq.${id}`);
            expect(created?.text).toBe(`by ${p}`);
            if (table === OWN) expect(created?.owner_id).toBe(accountOf[p]);
          },
        };
      },
    },
    {
      name: `PATCH ${table}`,
      write: true,
      async run({ p }) {
        const id = await seed(table, ownerFor(p));
        return {
          send: () =>
            req(url(`?id=eq.${id}`), {
              method: "PATCH",
              headers: auth(p, { "content-type": "application/json" }),
              body: JSON.stringify({ text: `patched by ${p}` }),
            }),
          async check() {
            expect((await rowsOf(table, `&id=eq.${id}`))[0]?.text).toBe(`patched by ${p}`);
          },
        };
      },
    },
    {
      name: `DELETE ${table}`,
      write: true,
      async run({ p }) {
        const id = await seed(table, ownerFor(p));
        return {
          send: () => req(url(`?id=eq.${id}`), { method: "DELETE", headers: auth(p) }),
          async check() {
            expect(await rowsOf(table, `&id=eq.${id}`)).toEqual([]);
          },
        };
      },
    },
  ];
  if (table !== OWN) return routes;
  const victim = (p: Principal) => (accountOf[p] === stranger.id ? owner.id : stranger.id);
  routes.push(
    {
      name: `PATCH ${table} (another account's row)`,
      write: true,
      async run({ p }) {
        const id = await seed(table, victim(p));
        return {
          send: () =>
            req(url(`?id=eq.${id}`), {
              method: "PATCH",
              headers: auth(p, { "content-type": "application/json" }),
              body: JSON.stringify({ text: "hijacked" }),
            }),
          async check() {
            // Only the service key gets here with an effect: it sees every row.
            expect((await rowsOf(table, `&id=eq.${id}`))[0]?.text).toBe("hijacked");
          },
        };
      },
    },
    {
      name: `DELETE ${table} (another account's row)`,
      write: true,
      async run({ p }) {
        const id = await seed(table, victim(p));
        return {
          send: () => req(url(`?id=eq.${id}`), { method: "DELETE", headers: auth(p) }),
          async check() {
            expect(await rowsOf(table, `&id=eq.${id}`)).toEqual([]);
          },
        };
      },
    },
  );
  return routes;
}

/**
 * A realtime subscription as a cell: 101 + join reply ok → 200 with the ids of the rows heard;
 * a refused connection → its HTTP answer; a refused join → the reply's status and code.
 */
function subscribeRoute(table: Table): Route {
  return {
    name: `SUBSCRIBE ${table}`,
    write: false,
    async run({ p, expected }) {
      const seeded: number[] = [];
      return {
        async send() {
          const key = p === "none" ? "" : `&apikey=${project.anonKey}`;
          const res = await req(`${project.url}/realtime/v1/websocket?vsn=2.0.0${key}`, {
            headers: { upgrade: "websocket" },
          });
          if (res.status !== 101) return res;
          res.webSocket!.accept();
          const c = new PhxClient(res.webSocket!);
          try {
            const token = tokens[p];
            const bindings = [{ event: "*", schema: "public", table }];
            const reply = await c.join("matrix", { postgres_changes: bindings }, token ?? undefined);
            if (reply.status !== "ok") {
              const r = reply.response as { code: string; reason: string; status: number };
              return Response.json({ code: r.code, message: r.reason }, { status: r.status });
            }
            // Rows of four accounts, then a marker the subscriber may read: everything before it has arrived.
            for (const who of [owner, reader, writer, stranger]) seeded.push(await seed(table, who.id));
            const marker = await seed(table, accountOf[p] ?? owner.id);
            seeded.push(marker);
            await c.waitFor(
              (f) => f[3] === "postgres_changes" && (f[4].data as { record: DbRow }).record.id === marker,
            );
            const heard = c.changes("matrix").map((d) => (d.record as DbRow).id);
            return Response.json(heard);
          } finally {
            c.close();
          }
        },
        async check(_res, body) {
          const rows = (await rowsOf(table)).filter((r) => seeded.includes(r.id));
          const want = expected.tag === "own" ? rows.filter((r) => r.owner_id === accountOf[p]) : rows;
          expect(body).toEqual(want.map((r) => r.id));
          expect(want.length).toBeGreaterThan(0);
        },
      };
    },
  };
}

const INTRUDER = {
  columns: { id: { type: "integer", primaryKey: true } },
  policy: { read: "public", write: "public" },
};

const otherRoutes: Route[] = [
  {
    name: "GET {url}/schema",
    write: false,
    async run({ p }) {
      return {
        send: () => req(`${project.url}/schema`, { headers: auth(p) }),
        async check(_res, body) {
          expect(Object.keys((body as { tables: object }).tables).sort()).toEqual([...TABLES].sort());
        },
      };
    },
  },
  {
    name: "PUT {url}/schema",
    write: true,
    async run({ p, allowed }) {
      const current = await ok<{ tables: Record<string, unknown> }>(
        await req(`${project.url}/schema`, { headers: service() }),
        200,
        "get schema",
      );
      // Refused callers try to add a table; the service key re-applies the schema as is.
      const body = allowed ? current : { tables: { ...current.tables, intruder: INTRUDER } };
      return {
        send: () =>
          req(`${project.url}/schema`, {
            method: "PUT",
            headers: auth(p, { "content-type": "application/json" }),
            body: JSON.stringify(body),
          }),
        async check() {
          const after = await ok<{ tables: object }>(
            await req(`${project.url}/schema`, { headers: service() }),
            200,
            "get schema",
          );
          expect(Object.keys(after.tables).sort()).toEqual([...TABLES].sort());
        },
      };
    },
  },
  {
    name: "GET {url}/admin/v1/stats",
    write: false,
    async run({ p }) {
      return {
        send: () => req(`${project.url}/admin/v1/stats`, { headers: auth(p) }),
        async check(_res, body) {
          expect((body as { projectId: string }).projectId).toBe(project.id);
        },
      };
    },
  },
  {
    name: "GET {url}/export",
    write: false,
    async run({ p }) {
      return {
        send: () => req(`${project.url}/export`, { headers: auth(p) }),
        async check(res, body) {
          expect(res.headers.get("content-type")).toBe("application/zip");
          const bytes = body as Uint8Array;
          expect(String.fromCharCode(bytes[0]!, bytes[1]!)).toBe("PK");
        },
      };
    },
  },
  {
    name: "GET /v1/projects",
    write: false,
    async run({ p, expected }) {
      return {
        send: () => req("/v1/projects", { headers: auth(p) }),
        async check(_res, body) {
          const ids = (body as { id: string }[]).map((x) => x.id);
          expect(ids.includes(project.id)).toBe(expected.tag === "shown");
          expect(ids.includes(other.id)).toBe(p === "owner"); // the owner's second project, shared with no one
        },
      };
    },
  },
  {
    name: "GET /v1/projects/:id",
    write: false,
    async run({ p, expected }) {
      return {
        send: () => req(`/v1/projects/${project.id}`, { headers: auth(p) }),
        async check(_res, body) {
          const got = body as { id: string; anonKey?: string; serviceKey?: string };
          expect(got.id).toBe(project.id);
          if (expected.tag === "keys") {
            expect(got.serviceKey).toBe(project.serviceKey);
            expect(got.anonKey).toBe(project.anonKey);
          } else {
            expect(got.serviceKey).toBeUndefined();
            expect(got.anonKey).toBeUndefined();
          }
        },
      };
    },
  },
  {
    name: "POST /v1/projects/:id/members",
    write: true,
    async run({ p, allowed }) {
      // Refused callers try to make the stranger an admin; the owner adds a new reader.
      const body = allowed
        ? { email: candidate.email, role: "reader" }
        : { email: stranger.email, role: "admin" };
      return {
        send: () =>
          req(`/v1/projects/${project.id}/members`, {
            method: "POST",
            headers: auth(p, { "content-type": "application/json" }),
            body: JSON.stringify(body),
          }),
        async check() {
          const s = await snapshot();
          expect(s.members).toContain(`${candidate.id}:reader`);
          expect(s.members.some((m) => m.startsWith(`${stranger.id}:`))).toBe(false);
        },
      };
    },
  },
  {
    name: "DELETE /v1/projects/:id",
    write: true,
    async run({ p }) {
      return {
        send: () => req(`/v1/projects/${project.id}`, { method: "DELETE", headers: auth(p) }),
        async check() {
          const gone = await req(`/v1/projects/${project.id}`, {
            headers: { authorization: `Bearer ${owner.accessToken}` },
          });
          expect(gone.status).toBe(404);
          await gone.arrayBuffer();
          const stats = await req(`${project.url}/admin/v1/stats`, { headers: service() });
          expect(stats.status).toBe(404);
          expect(((await stats.json()) as { code: string }).code).toBe("HEARTH_PROJECT_NOT_FOUND");
        },
      };
    },
  },
];

const ROUTES: Route[] = [...TABLES.flatMap(restRoutes), ...TABLES.map(subscribeRoute), ...otherRoutes];

// The table must be complete and match the routes exactly, before anything runs.
if (JSON.stringify(Object.keys(EXPECT).sort()) !== JSON.stringify(ROUTES.map((r) => r.name).sort())) {
  throw new Error("EXPECT and ROUTES name different routes");
}
for (const [name, cells] of Object.entries(EXPECT)) {
  if (cells.length !== PRINCIPALS.length) throw new Error(`EXPECT["${name}"] has ${cells.length} cells`);
}

async function signToken(claims: Record<string, unknown>, secret: string): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}

let cellsAsserted = 0;
let refusedWritesChecked = 0;

describe("authorization matrix", () => {
  beforeAll(async () => {
    const dev = await signup(api, "matrix-dev");
    owner = await signup(api, "matrix-owner");
    reader = await signup(api, "matrix-reader");
    writer = await signup(api, "matrix-writer");
    stranger = await signup(api, "matrix-stranger");
    candidate = await signup(api, "matrix-candidate");
    project = await createOwnedProject(api, owner.accessToken, "matrix");
    other = await createOwnedProject(api, owner.accessToken, "matrix-other");
    await addMember(api, owner.accessToken, project.id, reader.email, "reader");
    await addMember(api, owner.accessToken, project.id, writer.email, "writer");

    const readScope = TABLES.map((t) => `db:${t}:read`).join(" ");
    const writeScope = TABLES.map((t) => `db:${t}:write`).join(" ");
    const appR = await registerApp(api, dev.accessToken, "Matrix reader app", APP_TABLES);
    const appW = await registerApp(api, dev.accessToken, "Matrix writer app", APP_TABLES);
    const appX = await registerApp(api, dev.accessToken, "Matrix revoked app", APP_TABLES);
    const connect = (clientId: string, scope: string, projectId: string): Promise<AppTokens> =>
      connectApp(api, owner.accessToken, { clientId, scope, projectId });
    const tR = await connect(appR.clientId, readScope, project.id);
    const tW = await connect(appW.clientId, writeScope, project.id);
    const tX = await connect(appX.clientId, writeScope, project.id);
    const tOther = await connect(appW.clientId, writeScope, other.id);
    expect(tR.project_url).toBe(project.url);
    expect(tOther.project_id).toBe(other.id);
    // The revoked token worked before its grant was revoked.
    const before = await req(`${project.url}/rest/v1/${MEM}`, {
      headers: { authorization: `Bearer ${tX.access_token}` },
    });
    expect(before.status).toBe(200);
    await before.arrayBuffer();
    await revokeGrant(
      api,
      owner.accessToken,
      (await grantOf(api, owner.accessToken, appX.clientId, project.id)).id,
    );

    const claims = decodeJwt(owner.accessToken);
    const now = Math.floor(Date.now() / 1000);
    Object.assign(tokens, {
      anon: project.anonKey,
      service: project.serviceKey,
      owner: owner.accessToken,
      reader: reader.accessToken,
      writer: writer.accessToken,
      stranger: stranger.accessToken,
      appRead: tR.access_token,
      appWrite: tW.access_token,
      appRevoked: tX.access_token,
      expired: await signToken({ ...claims, iat: now - 7200, exp: now - 3600 }, SECRET),
      otherKey: other.serviceKey,
      otherApp: tOther.access_token,
      forged: await signToken(claims, WRONG_SECRET),
      none: null,
    } satisfies Record<Principal, string | null>);
    Object.assign(accountOf, {
      anon: null,
      service: null,
      owner: owner.id,
      reader: reader.id,
      writer: writer.id,
      stranger: stranger.id,
      appRead: owner.id,
      appWrite: owner.id,
      appRevoked: owner.id,
      expired: owner.id,
      otherKey: null,
      otherApp: owner.id,
      forged: owner.id,
      none: null,
    } satisfies Record<Principal, string | null>);

    // Rows of several accounts in every table, so `all` and `own` differ.
    for (const t of TABLES) {
      for (const who of [owner, reader, writer, stranger]) await seed(t, who.id);
    }
  }, 120_000);

  for (const route of ROUTES) {
    // The owner deletes the project: that cell goes last.
    const order =
      route.name === "DELETE /v1/projects/:id"
        ? [...PRINCIPALS.filter((p) => p !== "owner"), "owner" as const]
        : PRINCIPALS;
    describe(route.name, () => {
      for (const p of order) {
        const cell = EXPECT[route.name]![PRINCIPALS.indexOf(p)]!;
        it(`${p} → ${cell}`, async () => {
          const expected = parse(cell);
          const allowed = expected.status < 300 && expected.tag !== "noop";
          const { send, check } = await route.run({ p, expected, allowed });
          const before = route.write && !allowed ? await snapshot() : null;
          const res = await send();
          expect(res.status, `${route.name} as ${p}`).toBe(expected.status);
          const body: unknown =
            res.headers.get("content-type")?.includes("json") && route.name.startsWith("HEAD") === false
              ? await res.json()
              : new Uint8Array(await res.arrayBuffer());
          if (expected.code !== null) expect((body as { code?: string }).code).toBe(expected.code);
          if (route.name.startsWith("HEAD")) expect((body as Uint8Array).byteLength).toBe(0);
          if (allowed && check) await check(res, body);
          if (before) {
            expect(await snapshot(), "a refused write changed something").toEqual(before);
            refusedWritesChecked++;
          }
          cellsAsserted++;
        });
      }
    });
  }

  it("asserted every cell", () => {
    expect(cellsAsserted).toBe(ROUTES.length * PRINCIPALS.length);
    const refusedWrites = ROUTES.filter((r) => r.write)
      .flatMap((r) => EXPECT[r.name]!.map(parse))
      .filter((e) => e.status >= 300 || e.tag === "noop").length;
    expect(refusedWritesChecked).toBe(refusedWrites);
    console.log(
      `authz matrix: ${cellsAsserted} cells, ${refusedWritesChecked} refused writes checked unchanged`,
    );
  });
});
