import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { account } from "./helpers/accounts.ts";
import { call, putSchema, rest, type TestProject } from "./helpers/api.ts";

const catalog = (env as unknown as { CATALOG: D1Database }).CATALOG;
const REDIRECT = "https://app.example/cb";

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

const TODOS = { columns: { id: { type: "integer", primaryKey: true }, title: { type: "text" } } };
const NOTES = {
  columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } },
  policy: { read: "owner", write: "owner" },
};

async function registerApp(dev: string, tables: Record<string, unknown>, confidential = false) {
  const res = await call("/v1/apps", {
    method: "POST",
    key: dev,
    body: { name: "Todo <b>App</b>", redirectUris: [REDIRECT], confidential, schema: { tables } },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { clientId: string; clientSecret?: string };
}

async function ownedProject(owner: string): Promise<TestProject> {
  const res = await call("/v1/projects", { method: "POST", key: owner, body: { name: "mine" } });
  expect(res.status).toBe(201);
  return (await res.json()) as TestProject;
}

interface Flow {
  clientId: string;
  projectId: string;
  scope: string;
  challenge?: string;
  method?: string;
  redirectUri?: string;
  decision?: string;
}

function authorize(user: string, f: Flow): Promise<Response> {
  return call("/oauth/authorize", {
    method: "POST",
    key: user,
    redirect: "manual",
    body: {
      response_type: "code",
      client_id: f.clientId,
      redirect_uri: f.redirectUri ?? REDIRECT,
      scope: f.scope,
      state: "xyz",
      code_challenge: f.challenge,
      code_challenge_method: f.method ?? "S256",
      project_id: f.projectId,
      decision: f.decision ?? "approve",
    },
  });
}

function token(form: Record<string, string>): Promise<Response> {
  return call("/oauth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  scope: string;
  project_id: string;
  project_url: string;
  expires_in: number;
  token_type: string;
}

/** Approve + exchange: the whole happy path. */
async function connect(user: string, f: Flow): Promise<Tokens> {
  const { verifier, challenge } = await pkce();
  const res = await authorize(user, { ...f, challenge });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get("location")!);
  expect(location.searchParams.get("state")).toBe("xyz");
  const code = location.searchParams.get("code")!;
  const t = await token({
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT,
    client_id: f.clientId,
    code_verifier: verifier,
  });
  expect(t.status).toBe(200);
  return (await t.json()) as Tokens;
}

const count = async (table: string) =>
  Number((await catalog.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())!.n);

describe("apps and OAuth", () => {
  it("registers an app, grants scoped access, refreshes, and revokes without losing data", async () => {
    const dev = await account("o-dev");
    const alice = await account("o-alice");
    const app = await registerApp(dev, { "com.example.todos": TODOS, "com.example.notes": NOTES });
    expect(app.clientId).toMatch(/^app_/);
    expect(app.clientSecret).toBeUndefined();
    const listed = (await (await call("/v1/apps", { key: dev })).json()) as { clientId: string }[];
    expect(listed.map((a) => a.clientId)).toContain(app.clientId);

    const p = await ownedProject(alice);
    expect((await putSchema(p, { tables: { private: TODOS } })).status).toBe(200);
    const t = await connect(alice, {
      clientId: app.clientId,
      projectId: p.id,
      scope: "db:com.example.todos:write db:com.example.notes:read",
    });
    expect(t).toMatchObject({ token_type: "Bearer", expires_in: 3600, project_id: p.id });
    expect(t.project_url).toBe(p.url);
    expect(t.scope).toBe("db:com.example.notes:read db:com.example.todos:write");

    // The app's tables were added next to the project's own.
    const schema = (await (await call(`${p.url}/schema`, { key: p.serviceKey })).json()) as {
      tables: object;
    };
    expect(Object.keys(schema.tables).sort()).toEqual(["com.example.notes", "com.example.todos", "private"]);

    // Scope matrix, with the token as Bearer and as apikey.
    const key = t.access_token;
    expect(
      (await rest(p, "/com.example.todos", { method: "POST", key, body: { id: 1, title: "milk" } })).status,
    ).toBe(201);
    const apikeyRead = await call(`${p.url}/rest/v1/com.example.todos`, { headers: { apikey: key } });
    expect(await apikeyRead.json()).toEqual([{ id: 1, title: "milk" }]);
    expect((await rest(p, "/com.example.notes", { key })).status).toBe(200);
    const noWrite = await rest(p, "/com.example.notes", { method: "POST", key, body: { id: 1, body: "x" } });
    expect(noWrite.status).toBe(403);
    expect(((await noWrite.json()) as { code: string }).code).toBe("42501");
    expect((await rest(p, "/private", { key })).status).toBe(403);
    // schema and admin endpoints refuse app tokens
    expect((await call(`${p.url}/schema`, { key })).status).toBe(403);
    expect((await call("/v1/projects", { key })).status).toBe(403);
    // another project refuses the token
    const other = await ownedProject(alice);
    expect((await rest(other, "/com.example.todos", { key })).status).toBe(401);

    // Refresh rotates; presenting the old refresh token again revokes the chain.
    const r1 = await token({
      grant_type: "refresh_token",
      refresh_token: t.refresh_token,
      client_id: app.clientId,
    });
    expect(r1.status).toBe(200);
    const t2 = (await r1.json()) as Tokens;
    expect(t2.refresh_token).not.toBe(t.refresh_token);
    const reuse = await token({
      grant_type: "refresh_token",
      refresh_token: t.refresh_token,
      client_id: app.clientId,
    });
    expect(reuse.status).toBe(400);
    expect(((await reuse.json()) as { error: string }).error).toBe("invalid_grant");
    const afterReuse = await token({
      grant_type: "refresh_token",
      refresh_token: t2.refresh_token,
      client_id: app.clientId,
    });
    expect(afterReuse.status).toBe(400);

    // The user lists and revokes the grant; the app is refused, the data stays.
    const grants = (await (await call("/account/grants", { key: alice })).json()) as {
      id: string;
      app: { clientId: string; name: string };
      projectId: string;
      scopes: string[];
      lastUsedAt: string | null;
    }[];
    const g = grants.find((x) => x.app.clientId === app.clientId)!;
    expect(g).toMatchObject({ projectId: p.id, app: { name: "Todo <b>App</b>" } });
    expect(g.scopes).toEqual(["db:com.example.notes:read", "db:com.example.todos:write"]);
    expect(g.lastUsedAt).not.toBeNull();
    expect((await call(`/account/grants/${g.id}`, { method: "DELETE", key: dev })).status).toBe(404);
    expect((await call(`/account/grants/${g.id}`, { method: "DELETE", key: alice })).status).toBe(204);
    expect((await rest(p, "/com.example.todos", { key: t2.access_token })).status).toBe(401);
    expect(await (await rest(p, "/com.example.todos")).json()).toEqual([{ id: 1, title: "milk" }]);
    expect(await (await rest(p, "/com.example.todos", { key: alice })).json()).toEqual([
      { id: 1, title: "milk" },
    ]);
    const listedAfter = (await (await call("/account/grants", { key: alice })).json()) as { id: string }[];
    expect(listedAfter.map((x) => x.id)).not.toContain(g.id);
  });

  it("owner tables give the app the account's own rows; two apps share a namespaced table", async () => {
    const dev = await account("o-dev2");
    const bob = await account("o-bob");
    const p = await ownedProject(bob);
    const a = await registerApp(dev, { "org.shared.notes": NOTES, "org.a.only": TODOS });
    const b = await registerApp(dev, { "org.shared.notes": NOTES }, true);
    expect(b.clientSecret).toMatch(/^hcs_/);
    const ta = await connect(bob, {
      clientId: a.clientId,
      projectId: p.id,
      scope: "db:org.shared.notes:write",
    });
    expect(
      (
        await rest(p, "/org.shared.notes", {
          method: "POST",
          key: ta.access_token,
          body: { id: 1, body: "from a" },
        })
      ).status,
    ).toBe(201);

    // Confidential client B: the exchange needs its secret.
    const { verifier, challenge } = await pkce();
    const res = await authorize(bob, {
      clientId: b.clientId,
      projectId: p.id,
      scope: "db:org.shared.notes:read",
      challenge,
    });
    const code = new URL(res.headers.get("location")!).searchParams.get("code")!;
    const form = {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      client_id: b.clientId,
      code_verifier: verifier,
    };
    const noSecret = await token(form);
    expect(noSecret.status).toBe(401);
    expect(((await noSecret.json()) as { error: string }).error).toBe("invalid_client");
    const tb = (await (await token({ ...form, client_secret: b.clientSecret! })).json()) as Tokens;
    const rows = (await (await rest(p, "/org.shared.notes", { key: tb.access_token })).json()) as {
      body: string;
      owner_id: string;
    }[];
    expect(rows).toMatchObject([{ id: 1, body: "from a", owner_id: "o-bob" }]);
    // B was not granted org.a.only (nor declared it)
    expect((await rest(p, "/org.a.only", { key: tb.access_token })).status).toBe(403);

    // A conflicting declaration of an existing table is refused, nothing is written.
    const c = await registerApp(dev, { "org.shared.notes": TODOS });
    const grantsBefore = await count("grants");
    const { challenge: ch } = await pkce();
    const conflict = await authorize(bob, {
      clientId: c.clientId,
      projectId: p.id,
      scope: "db:org.shared.notes:read",
      challenge: ch,
    });
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { code: string }).code).toBe("HEARTH_APP_TABLE_CONFLICT");
    expect(await count("grants")).toBe(grantsBefore);
  });

  it("refuses every bad input of /oauth/* with the RFC error and writes nothing", async () => {
    const dev = await account("o-dev3");
    const carol = await account("o-carol");
    const p = await ownedProject(carol);
    const app = await registerApp(dev, { "net.x.items": TODOS });
    const scope = "db:net.x.items:read";
    const { verifier, challenge } = await pkce();
    const before = {
      grants: await count("grants"),
      codes: await count("oauth_codes"),
      refresh: await count("oauth_refresh_tokens"),
    };
    const error = async (res: Response) => ((await res.json()) as { error: string }).error;
    const redirected = (res: Response) => new URL(res.headers.get("location")!).searchParams;

    // unknown client and bad redirect_uri: shown, never redirected
    let res = await authorize(carol, { clientId: "app_nope", projectId: p.id, scope, challenge });
    expect([res.status, await error(res)]).toEqual([400, "invalid_client"]);
    res = await authorize(carol, {
      clientId: app.clientId,
      projectId: p.id,
      scope,
      challenge,
      redirectUri: "https://evil.example/cb",
    });
    expect([res.status, await error(res)]).toEqual([400, "invalid_request"]);
    res = await call(`/oauth/authorize?client_id=app_nope&redirect_uri=${encodeURIComponent(REDIRECT)}`, {
      redirect: "manual",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("text/html");
    // plain PKCE, bad scopes: back to the app
    res = await authorize(carol, {
      clientId: app.clientId,
      projectId: p.id,
      scope,
      challenge: verifier.slice(0, 43),
      method: "plain",
    });
    expect(res.status).toBe(302);
    expect(redirected(res).get("error")).toBe("invalid_request");
    expect(redirected(res).get("state")).toBe("xyz");
    res = await authorize(carol, {
      clientId: app.clientId,
      projectId: p.id,
      scope: "db:other.table:read",
      challenge,
    });
    expect(redirected(res).get("error")).toBe("invalid_scope");
    res = await authorize(carol, {
      clientId: app.clientId,
      projectId: p.id,
      scope,
      challenge,
      decision: "deny",
    });
    expect(redirected(res).get("error")).toBe("access_denied");
    expect({ grants: await count("grants"), codes: await count("oauth_codes") }).toEqual({
      grants: before.grants,
      codes: before.codes,
    });

    res = await authorize(carol, { clientId: app.clientId, projectId: p.id, scope, challenge });
    const code = redirected(res).get("code")!;
    const form = {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      client_id: app.clientId,
      code_verifier: verifier,
    };
    const wrongVerifier = await token({ ...form, code_verifier: (await pkce()).verifier });
    expect([wrongVerifier.status, await error(wrongVerifier)]).toEqual([400, "invalid_grant"]);
    const wrongRedirect = await token({ ...form, redirect_uri: "https://app.example/other" });
    expect(await error(wrongRedirect)).toBe("invalid_grant");
    const unknownClient = await token({ ...form, client_id: "app_nope" });
    expect([unknownClient.status, await error(unknownClient)]).toEqual([401, "invalid_client"]);
    expect(await error(await token({ ...form, grant_type: "password" }))).toBe("unsupported_grant_type");
    const asJson = await call("/oauth/token", { method: "POST", body: form });
    expect(await error(asJson)).toBe("invalid_request");
    expect(await count("oauth_refresh_tokens")).toBe(before.refresh);

    // the code still works after the refused attempts, exactly once
    const ok = await token(form);
    expect(ok.status).toBe(200);
    const first = (await ok.json()) as Tokens;
    const reused = await token(form);
    expect([reused.status, await error(reused)]).toEqual([400, "invalid_grant"]);
    // replaying the code revoked what it had issued
    const afterReplay = await token({
      grant_type: "refresh_token",
      refresh_token: first.refresh_token,
      client_id: app.clientId,
    });
    expect(await error(afterReplay)).toBe("invalid_grant");

    // an expired code
    res = await authorize(carol, { clientId: app.clientId, projectId: p.id, scope, challenge });
    const stale = redirected(res).get("code")!;
    await catalog
      .prepare("UPDATE oauth_codes SET expires_at = ? WHERE used_at IS NULL")
      .bind(Date.now() - 1)
      .run();
    const expired = await token({ ...form, code: stale });
    expect([expired.status, await error(expired)]).toEqual([400, "invalid_grant"]);

    // revoke: always 200
    const revoke = (body: string) =>
      call("/oauth/revoke", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      });
    expect((await revoke("token=nonsense")).status).toBe(200);
  });

  it("renders the consent page with escaping for a signed-in browser, and a sign-in form otherwise", async () => {
    const dev = await account("o-dev4");
    const app = await registerApp(dev, { "io.y.things": TODOS });
    const { challenge } = await pkce();
    const q = new URLSearchParams({
      response_type: "code",
      client_id: app.clientId,
      redirect_uri: REDIRECT,
      scope: "db:io.y.things:write",
      state: "s",
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    const res = await call(`/oauth/authorize?${q}`);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('name="password"');
    expect(page).toContain("Todo &lt;b&gt;App&lt;/b&gt;");
    expect(page).not.toContain("<b>App</b>");
  });
});

/** The consent page's sign-in form as a browser gets it: its login cookie and `login_csrf` token. */
async function signInForm(
  params: Record<string, string>,
  cookie?: string,
): Promise<{ cookie: string; token: string }> {
  const res = await call(
    `/oauth/authorize?${new URLSearchParams(params)}`,
    cookie ? { headers: { cookie } } : {},
  );
  const page = await res.text();
  expect(res.status, page).toBe(200);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const token = /name="login_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!token) throw new Error(`no login_csrf on the sign-in form: ${page}`);
  const set = res.headers.get("set-cookie") ?? "";
  expect(set).toMatch(
    /^hearth_oauth_login=[A-Za-z0-9_-]{43}; Max-Age=3600; Path=\/oauth; HttpOnly; SameSite=Lax$/,
  );
  return { cookie: set.split(";")[0]!, token };
}

/** An account with a confirmed email and a password, as the sign-in form needs. */
async function passwordAccount(tag: string): Promise<{ id: string; email: string }> {
  const email = `${tag}-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const signup = await call("/auth/v1/signup", {
    method: "POST",
    headers: {
      "cf-connecting-ip": `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`,
    },
    body: { email, password: "correct horse battery" },
  });
  expect(signup.status).toBe(200);
  const row = await catalog
    .prepare("SELECT id FROM accounts WHERE email = ?")
    .bind(email)
    .first<{ id: string }>();
  await catalog
    .prepare("UPDATE accounts SET email_confirmed_at = ? WHERE id = ?")
    .bind(new Date().toISOString(), row!.id)
    .run();
  return { id: row!.id, email };
}

describe("consent page (browser)", () => {
  it("signs in with a password, approves with the CSRF token, and refuses a forged form", async () => {
    const dev = await account("o-dev5");
    const app = await registerApp(dev, { "io.z.items": TODOS });
    const email = "o-dana@example.test";
    const signup = await call("/auth/v1/signup", {
      method: "POST",
      body: { email, password: "correct horse battery" },
    });
    expect(signup.status).toBe(200);
    const dana = await catalog
      .prepare("SELECT id FROM accounts WHERE email = ?")
      .bind(email)
      .first<{ id: string }>();
    await catalog
      .prepare("UPDATE accounts SET email_confirmed_at = ? WHERE id = ?")
      .bind(new Date().toISOString(), dana!.id)
      .run();
    const p = await ownedProject(await account(dana!.id));
    const { challenge } = await pkce();
    const params = {
      response_type: "code",
      client_id: app.clientId,
      redirect_uri: REDIRECT,
      scope: "db:io.z.items:read",
      state: "s",
      code_challenge: challenge,
      code_challenge_method: "S256",
      project_id: p.id,
    };
    const form = (fields: Record<string, string>, cookie?: string) =>
      call("/oauth/authorize", {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
        body: new URLSearchParams({ ...params, ...fields }).toString(),
      });
    const login = await signInForm(params);
    const bad = await form(
      { action: "signin", email, password: "wrong password!", login_csrf: login.token },
      login.cookie,
    );
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain(`name="login_csrf" value="${login.token}"`);
    const signin = await form(
      { action: "signin", email, password: "correct horse battery", login_csrf: login.token },
      login.cookie,
    );
    expect(signin.status).toBe(303);
    const cookie = signin.headers.get("set-cookie")!.split(";")[0]!;
    expect(cookie).toMatch(/^hearth_oauth_session=/);
    const page = await (await call(signin.headers.get("location")!, { headers: { cookie } })).text();
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(page)![1]!;
    expect((await form({ decision: "approve", csrf_token: "forged" }, cookie)).status).toBe(403);
    const approved = await form({ decision: "approve", csrf_token: csrf }, cookie);
    expect(approved.status).toBe(302);
    expect(new URL(approved.headers.get("location")!).searchParams.get("code")).toMatch(/^hc_/);
  });

  it("refuses a sign-in form without its login token (login CSRF): 403, no session, no cookie", async () => {
    const dev = await account("o-dev6");
    const app = await registerApp(dev, { "io.w.items": TODOS });
    const erin = await passwordAccount("o-erin");
    const { challenge } = await pkce();
    const params = {
      response_type: "code",
      client_id: app.clientId,
      redirect_uri: REDIRECT,
      scope: "db:io.w.items:read",
      state: "s",
      code_challenge: challenge,
      code_challenge_method: "S256",
    };
    const post = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      call("/oauth/authorize", {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams({ ...params, action: "signin", ...fields }).toString(),
      });
    const sessions = async () =>
      (await catalog
        .prepare("SELECT count(*) AS n FROM sessions WHERE account_id = ?")
        .bind(erin.id)
        .first<{ n: number }>())!.n;
    const before = await sessions();
    const a = await signInForm(params);
    const b = await signInForm(params);
    expect(b.cookie).not.toBe(a.cookie);
    // The same browser keeps its cookie and token (a form open in another tab stays valid).
    expect(await signInForm(params, a.cookie)).toEqual(a);
    // "My data"'s sign-in form: another cookie and another label.
    const me = await call("/me");
    const meToken = /name="login_csrf" value="([^"]+)"/.exec(await me.text())![1]!;
    const meCookie = (me.headers.get("set-cookie") ?? "").split(";")[0]!;
    const creds = { email: erin.email, password: "correct horse battery" };
    const refused: [string, Record<string, string>, Record<string, string>][] = [
      ["no token, no cookie", creds, {}],
      ["cookie, no token", creds, { cookie: a.cookie }],
      ["token, no cookie", { ...creds, login_csrf: a.token }, {}],
      ["forged token", { ...creds, login_csrf: "forged" }, { cookie: a.cookie }],
      ["another cookie's token", { ...creds, login_csrf: b.token }, { cookie: a.cookie }],
      [
        "/me's cookie value and token",
        { ...creds, login_csrf: meToken },
        { cookie: meCookie.replace("hearth_me_login", "hearth_oauth_login") },
      ],
      ["cross-site", { ...creds, login_csrf: a.token }, { cookie: a.cookie, "sec-fetch-site": "cross-site" }],
      ["same-site", { ...creds, login_csrf: a.token }, { cookie: a.cookie, "sec-fetch-site": "same-site" }],
      [
        "foreign Origin",
        { ...creds, login_csrf: a.token },
        { cookie: a.cookie, origin: "https://evil.example" },
      ],
    ];
    for (const [why, fields, headers] of refused) {
      const res = await post(fields, headers);
      const page = await res.text();
      expect(res.status, why).toBe(403);
      expect(res.headers.get("content-type"), why).toMatch(/^text\/html/);
      expect(page, why).toContain("The form expired or did not come from this site; reload the page.");
      expect(res.headers.get("set-cookie"), why).toBeNull();
    }
    expect(await sessions()).toBe(before);
    const ok = await post(
      { ...creds, login_csrf: a.token },
      { cookie: a.cookie, "sec-fetch-site": "same-origin", origin: "null" },
    );
    expect(ok.status).toBe(303);
    expect(ok.headers.get("set-cookie")).toMatch(/^hearth_oauth_session=/);
    expect(await sessions()).toBe(before + 1);
  });
});
