/**
 * The catalog (D1) failing on the request path, outside any flush: authentication of account
 * tokens, a frozen project's wake, project creation, forks (the parent's flush included),
 * consent and the OAuth token endpoint.
 * Every refusal is 503 HEARTH_CATALOG_UNAVAILABLE with retry-after (never a 500), nothing is
 * half-done, and once D1 is back the same request succeeds. Requests that only need a
 * project key never touch D1 and go on while it is down.
 *
 * The gateway is called with an env whose CATALOG fails (catalogDown), or fails from its n-th
 * call on (catalogFailingAfter, swept over n so the failure lands at each call in turn).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import type { Env } from "../workers/env.ts";
import worker from "../workers/index.ts";
import { ADMIN_KEY, adminCall, createProject, ORIGIN, putSchema, type TestProject } from "./helpers/api.ts";
import { catalogDown, catalogFailingAfter, stubOf } from "./helpers/faults.ts";
import { files, ok, projectPrefixes, put } from "./helpers/files.ts";
import {
  type Api,
  authorize,
  codeFrom,
  connectApp,
  createOwnedProject,
  listGrants,
  pkce,
  REDIRECT_URI,
  registerApp,
  signup,
  tokenRequest,
} from "./helpers/oauth.ts";
import { connectRealtime } from "./helpers/realtime.ts";

const realCatalog = (env as unknown as Env).CATALOG;

/** The gateway as a client sees it, with `catalog` as its D1. */
function apiWith(catalog: D1Database): Api {
  const e = { ...(env as unknown as Env), CATALOG: catalog };
  return { origin: ORIGIN, fetch: async (url, init) => worker.fetch(new Request(url, init), e) };
}
const up = apiWith(realCatalog);
const down = apiWith(catalogDown());

/**
 * 503 HEARTH_CATALOG_UNAVAILABLE with retry-after; `field` is where the body carries the code.
 * The OAuth endpoints say it in RFC 6749's words: `temporarily_unavailable`.
 */
async function expectUnavailable(res: Response, field: "code" | "error_code" = "code"): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(503);
  expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
  const body = JSON.parse(text);
  if (body.error === "temporarily_unavailable") expect(body.error_description).toMatch(/catalog/i);
  else expect(body[field]).toBe("HEARTH_CATALOG_UNAVAILABLE");
}

/**
 * Sends `request` with D1 failing from its 0th, 1st, 2nd, … call until it succeeds; after
 * each refusal `clean` checks (with D1 up) that nothing was left half-done. Returns the
 * successful answer and how many refusals came first.
 */
async function sweep(
  /** `catalog` is the gateway's failing D1, for a Durable Object to share (one count of calls) */
  request: (api: Api, catalog: D1Database) => Promise<Response>,
  clean: () => Promise<void>,
  ok: (res: Response) => boolean,
): Promise<{ res: Response; refused: number }> {
  for (let n = 0; n < 30; n++) {
    const catalog = catalogFailingAfter(realCatalog, n);
    const res = await request(apiWith(catalog), catalog);
    if (ok(res)) return { res, refused: n };
    await expectUnavailable(res, res.headers.get("x-supabase-api-version") ? "error_code" : "code");
    await clean();
  }
  throw new Error("still refused after 30 catalog calls");
}

const NOTES = {
  tables: { notes: { columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } } } },
};

async function rowsOf(p: TestProject): Promise<unknown[]> {
  const res = await up.fetch(`${p.url}/rest/v1/notes?select=id,body&order=id`, {
    headers: { apikey: p.serviceKey },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as unknown[];
}

describe("the catalog down on the request path", () => {
  it("project keys need no catalog: anon reads and service writes go on", async () => {
    const p = await createProject("keys-only");
    expect(
      (
        await putSchema(p, {
          tables: { notes: { ...NOTES.tables.notes, policy: { read: "public", write: "service" } } },
        })
      ).status,
    ).toBe(200);
    const write = await down.fetch(`${p.url}/rest/v1/notes`, {
      method: "POST",
      headers: { apikey: p.serviceKey, "content-type": "application/json" },
      body: JSON.stringify({ id: 1, body: "while D1 is down" }),
    });
    expect(write.status, await write.clone().text()).toBe(201);
    const read = await down.fetch(`${p.url}/rest/v1/notes?select=body`, { headers: { apikey: p.anonKey } });
    expect(await read.json()).toEqual([{ body: "while D1 is down" }]);
  });

  it("an account's token: reads and writes are refused 503 with nothing written, then succeed", async () => {
    const owner = await signup(up, "d1-owner");
    const p = await createOwnedProject(up, owner.accessToken, "d1-owned");
    expect((await putSchema(p, NOTES)).status).toBe(200);
    const auth = { authorization: `Bearer ${owner.accessToken}`, apikey: p.anonKey };
    const write = (api: Api) =>
      api.fetch(`${p.url}/rest/v1/notes`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ id: 7, body: "once" }),
      });
    const read = (api: Api) => api.fetch(`${p.url}/rest/v1/notes?select=id,body`, { headers: auth });
    await expectUnavailable(await read(down));
    await expectUnavailable(await write(down));
    expect(await rowsOf(p)).toEqual([]);
    // The session check and the membership lookup: a failure at either is refused alike.
    const { refused } = await sweep(
      write,
      async () => expect(await rowsOf(p)).toEqual([]),
      (r) => r.status === 201,
    );
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(await (await read(up)).json()).toEqual([{ id: 7, body: "once" }]);
  });

  it("realtime with an account token: a re-check during an outage keeps the channel, a join is refused 503", async () => {
    const owner = await signup(up, "d1-realtime");
    const p = await createOwnedProject(up, owner.accessToken, "d1-realtime");
    expect((await putSchema(p, NOTES)).status).toBe(200);
    const rt = await connectRealtime(p, p.anonKey);
    try {
      const joined = await rt.join(
        "notes",
        { postgres_changes: [{ event: "*", schema: "public", table: "notes" }] },
        owner.accessToken,
      );
      expect(joined.status).toBe("ok");
      const setCatalog = (catalog: D1Database | null) =>
        runInDurableObject(stubOf(p), (instance: ProjectDO) => {
          instance.catalogOverride = catalog;
        });
      await setCatalog(catalogDown());
      // Every socket's token is checked again now; the catalog cannot answer: the channel stays.
      await runInDurableObject(stubOf(p), (instance: ProjectDO) => instance.accessChanged());
      const ins = await up.fetch(`${p.url}/rest/v1/notes`, {
        method: "POST",
        headers: { apikey: p.serviceKey, "content-type": "application/json" },
        body: JSON.stringify({ id: 1, body: "during the outage" }),
      });
      expect(ins.status).toBe(201);
      const change = await rt.waitFor((f) => f[3] === "postgres_changes");
      expect(change[4]).toMatchObject({ data: { record: { id: 1, body: "during the outage" } } });
      // A new join must check the token, and cannot: a clear 503, not a 500 or a revoked token.
      const refused = await rt.join("notes-2", { postgres_changes: [] }, owner.accessToken);
      expect(refused.status).toBe("error");
      expect(JSON.stringify(refused.response)).toContain("HEARTH_CATALOG_UNAVAILABLE");
      await setCatalog(null);
      expect((await rt.join("notes-3", { postgres_changes: [] }, owner.accessToken)).status).toBe("ok");
    } finally {
      rt.close();
    }
  });

  it("a frozen project wakes only with its catalog: 503 until it is back, then the same rows", async () => {
    const p = await createProject("d1-frozen");
    expect((await putSchema(p, NOTES)).status).toBe(200);
    const ins = await up.fetch(`${p.url}/rest/v1/notes`, {
      method: "POST",
      headers: { apikey: p.serviceKey, "content-type": "application/json" },
      body: JSON.stringify([
        { id: 1, body: "a" },
        { id: 2, body: "b" },
      ]),
    });
    expect(ins.status).toBe(201);
    expect((await adminCall(p, "freeze")).status).toBe(200);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.catalogOverride = catalogDown();
    });
    const read = () =>
      up.fetch(`${p.url}/rest/v1/notes?select=id,body&order=id`, { headers: { apikey: p.anonKey } });
    await expectUnavailable(await read());
    await expectUnavailable(await read());
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.catalogOverride = null;
    });
    expect(await rowsOf(p)).toEqual([
      { id: 1, body: "a" },
      { id: 2, body: "b" },
    ]);
  });

  it("creating a project: a failure at any catalog call leaves no project behind; the retry creates one", async () => {
    const owner = await signup(up, "d1-creator");
    const listed = async () => {
      const res = await up.fetch(`${ORIGIN}/v1/projects`, {
        headers: { authorization: `Bearer ${owner.accessToken}` },
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { name: string }[]).map((p) => p.name).sort();
    };
    const before = await listed();
    const create = (api: Api) =>
      api.fetch(`${ORIGIN}/v1/projects`, {
        method: "POST",
        headers: { authorization: `Bearer ${owner.accessToken}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "made-while-flaky" }),
      });
    const { res, refused } = await sweep(
      create,
      async () => expect(await listed()).toEqual(before),
      (r) => r.status === 201,
    );
    // the session check (cached once it succeeds), the account lookup, the batch writing the rows
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(await listed()).toEqual([...before, "made-while-flaky"].sort());
    const made = (await res.json()) as TestProject;
    expect((await putSchema(made, NOTES)).status).toBe(200);
    // The admin key needs no catalog to be recognised; the write itself does.
    await expectUnavailable(
      await down.fetch(`${ORIGIN}/v1/projects`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "never" }),
      }),
    );
    const all = await up.fetch(`${ORIGIN}/v1/projects`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(((await all.json()) as { name: string }[]).some((p) => p.name === "never")).toBe(false);
  });

  it("forking: a failure at any catalog call, the parent's flush included, leaves no fork and no R2 key behind; the retry forks", async () => {
    const owner = await signup(up, "d1-forker");
    const p = await createOwnedProject(up, owner.accessToken, "d1-fork-parent");
    expect((await putSchema(p, NOTES)).status).toBe(200);
    let written = 0;
    const write = async () => {
      written++;
      const res = await up.fetch(`${p.url}/rest/v1/notes`, {
        method: "POST",
        headers: { apikey: p.serviceKey, "content-type": "application/json" },
        body: JSON.stringify({ id: written, body: `row ${written}` }),
      });
      expect(res.status, await res.clone().text()).toBe(201);
    };
    const expected = () => Array.from({ length: written }, (_, i) => ({ id: i + 1, body: `row ${i + 1}` }));
    // Flushed rows, a hot row, and a file.
    await write();
    await write();
    expect((await adminCall(p, "flush", "POST")).status).toBe(200);
    await write();
    await ok(files(p, "/bucket", { method: "POST", body: { id: "docs" } }));
    await put(p, "docs/a.txt", "file a");

    const listed = async () => {
      const res = await up.fetch(`${ORIGIN}/v1/projects`, {
        headers: { authorization: `Bearer ${owner.accessToken}` },
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { id: string }[]).map((x) => x.id).sort();
    };
    const projectsBefore = await listed();
    const prefixesBefore = await projectPrefixes();
    const setParentCatalog = (catalog: D1Database | null) =>
      runInDurableObject(stubOf(p), (instance: ProjectDO) => {
        instance.catalogOverride = catalog;
      });
    const fork = async (api: Api, catalog: D1Database) => {
      // The parent's object counts its calls with the gateway's: its flush is part of the sweep.
      await setParentCatalog(catalog);
      try {
        return await api.fetch(`${ORIGIN}/v1/projects/${p.id}/fork`, {
          method: "POST",
          headers: { authorization: `Bearer ${owner.accessToken}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "d1-fork" }),
        });
      } finally {
        await setParentCatalog(null);
      }
    };
    const { res, refused } = await sweep(
      fork,
      async () => {
        expect(await listed()).toEqual(projectsBefore);
        expect(await projectPrefixes()).toEqual(prefixesBefore);
        // The parent is unchanged, and writable (the next attempt has a hot row to flush again).
        expect(await rowsOf(p)).toEqual(expected());
        expect(await (await files(p, "/object/docs/a.txt")).text()).toBe("file a");
        await write();
      },
      (r) => r.status === 201,
    );
    // the session check, the project lookup, the parent's flush (its commit and the version
    // read back, then its compaction's), the batch making the fork: 7 when this was written
    expect(refused).toBeGreaterThanOrEqual(5);
    const child = (await res.json()) as TestProject & { forkedFrom: string };
    expect(child.forkedFrom).toBe(p.id);
    expect(await listed()).toEqual([...projectsBefore, child.id].sort());
    expect(await projectPrefixes()).toEqual([...prefixesBefore, `projects/${child.id}/`].sort());
    expect(await rowsOf(child)).toEqual(expected());
    expect(await (await files(child, "/object/docs/a.txt")).text()).toBe("file a");
    const row = await realCatalog
      .prepare(
        "SELECT p.forked_from AS parent, p.manifest_version AS v, (SELECT count(*) FROM manifests m WHERE m.project_id = p.id) AS manifests, (SELECT count(*) FROM segments s WHERE s.project_id = p.id) AS segments FROM projects p WHERE p.id = ?",
      )
      .bind(child.id)
      .first<{ parent: string; v: number; manifests: number; segments: number }>();
    expect(row).toMatchObject({ parent: p.id, v: 1, manifests: 1 });
    expect(row?.segments).toBeGreaterThan(0);
    // Both go on independently.
    await write();
    expect(await rowsOf(p)).toEqual(expected());
    expect(await rowsOf(child)).toEqual(expected().slice(0, -1));
  });

  it("signup: a failure at any catalog call leaves no account without its personal project", async () => {
    const email = `d1-signup-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const password = "correct horse battery";
    const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const body = () => ({
      method: "POST",
      headers: { "content-type": "application/json", "cf-connecting-ip": ip },
      body: JSON.stringify({ email, password }),
    });
    const held = async () => {
      const accounts = await realCatalog
        .prepare("SELECT count(*) AS n FROM accounts WHERE email = ?")
        .bind(email)
        .first<{ n: number }>();
      const personal = await realCatalog
        .prepare(
          "SELECT count(*) AS n FROM projects p JOIN accounts a ON a.id = p.owner_account_id WHERE a.email = ? AND p.personal = 1",
        )
        .bind(email)
        .first<{ n: number }>();
      return { accounts: accounts?.n, personal: personal?.n };
    };
    let done = false;
    for (let n = 0; n < 20 && !done; n++) {
      const res = await apiWith(catalogFailingAfter(realCatalog, n)).fetch(
        `${ORIGIN}/auth/v1/signup`,
        body(),
      );
      if (res.status === 200) {
        done = true;
        break;
      }
      await expectUnavailable(res, "error_code");
      const now = await held();
      // The account and its project come in one batch: both, or neither.
      expect(now.accounts).toBe(now.personal);
      // Only the session failed: the account is whole, and signing in is what is left to do.
      if (now.accounts === 1) {
        const signin = await up.fetch(`${ORIGIN}/auth/v1/token?grant_type=password`, body());
        expect(signin.status, await signin.clone().text()).toBe(200);
        done = true;
      }
    }
    expect(done).toBe(true);
    expect(await held()).toEqual({ accounts: 1, personal: 1 });
  });

  it("consent and the token endpoint: a failure at any call leaves no grant, code or spent token; the retry works", async () => {
    const dev = await signup(up, "d1-dev");
    const user = await signup(up, "d1-user");
    const app = await registerApp(up, dev.accessToken, "d1-app", {
      "com.example.d1items": { columns: { id: { type: "integer", primaryKey: true } } },
    });
    const { verifier, challenge } = await pkce();
    const grants = async () =>
      (await listGrants(up, user.accessToken)).filter((g) => g.app.clientId === app.clientId);

    // Consent: the grant and its code are one batch, so a refusal leaves no grant.
    const consent = await sweep(
      (api) =>
        authorize(api, user.accessToken, {
          clientId: app.clientId,
          scope: "db:com.example.d1items:read",
          challenge,
        }),
      async () => expect(await grants()).toEqual([]),
      (r) => r.status === 302,
    );
    expect(consent.refused).toBeGreaterThanOrEqual(3);
    const code = await codeFrom(consent.res);
    expect(await grants()).toHaveLength(1);

    // Exchange: the code is spent and the refresh token written together, or neither.
    const exchange = (api: Api) =>
      tokenRequest(api, {
        grant_type: "authorization_code",
        code,
        redirect_uri: REDIRECT_URI,
        client_id: app.clientId,
        code_verifier: verifier,
      });
    // OAuth clients read RFC 6749's error fields: the outage is `temporarily_unavailable`.
    const outage = await exchange(down);
    expect(outage.status).toBe(503);
    expect(outage.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await outage.json()).toMatchObject({ error: "temporarily_unavailable" });
    const exchanged = await sweep(
      exchange,
      async () => {},
      (r) => r.status === 200,
    );
    expect(exchanged.refused).toBeGreaterThanOrEqual(3);
    const tokens = (await exchanged.res.json()) as { access_token: string; refresh_token: string };

    // Refresh: a refused rotation leaves the presented token usable.
    const refresh = (api: Api) =>
      tokenRequest(api, {
        grant_type: "refresh_token",
        refresh_token: tokens.refresh_token,
        client_id: app.clientId,
      });
    const refreshed = await sweep(
      refresh,
      async () => {},
      (r) => r.status === 200,
    );
    expect(refreshed.refused).toBeGreaterThanOrEqual(2);
    await refreshed.res.body?.cancel();
    // The app's token works once D1 answers (its grant is checked there).
    const res = await up.fetch(`${ORIGIN}/p/${(await grants())[0]!.projectId}/rest/v1/com.example.d1items`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    // The code was spent once, by the exchange that got through (a replay revokes its chain).
    expect((await exchange(up)).status).toBe(400);
    // Another connection of the same app still goes through end to end.
    await connectApp(up, user.accessToken, { clientId: app.clientId, scope: "db:com.example.d1items:read" });
  });
});
