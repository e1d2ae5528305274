/**
 * The "My data" page's routes in workerd: every bad input answers a clear HTML page (never a
 * 500, nothing changed), forms without the session's CSRF token are refused, the sign-in form
 * without its login-CSRF token too, values are escaped, and signing out ends the session. The
 * full browser flow is test/e2e/pages.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, type TestProject } from "./helpers/api.ts";

const PASSWORD = "correct horse battery";
const catalog = (env as unknown as { CATALOG: D1Database }).CATALOG;

/** A unique client address: sign-in rate limits count per IP (docs/gotchas.md). */
function ip(): string {
  const b = crypto.getRandomValues(new Uint8Array(3));
  return `10.${b[0]}.${b[1]}.${b[2]}`;
}

function form(path: string, fields: Record<string, string>, cookie?: string): Promise<Response> {
  return call(path, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "cf-connecting-ip": ip(),
      ...(cookie ? { cookie } : {}),
    },
    body: new URLSearchParams(fields).toString(),
  });
}

/** The sign-in form as a browser gets it: its login cookie (`name=value`) and `login_csrf` token. */
async function signInForm(cookie?: string): Promise<{ cookie: string; token: string }> {
  const res = await call("/me", cookie ? { headers: { cookie } } : {});
  const page = await res.text();
  const token = /name="login_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!token) throw new Error(`no login_csrf on the sign-in form: ${page}`);
  const set = res.headers.get("set-cookie") ?? "";
  expect(set).toMatch(/^hearth_me_login=[A-Za-z0-9_-]{43};/);
  return { cookie: set.split(";")[0]!, token };
}

async function signup(tag: string): Promise<{ email: string; token: string }> {
  const email = `${tag}-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const res = await call("/auth/v1/signup", {
    method: "POST",
    headers: { "cf-connecting-ip": ip() },
    body: { email, password: PASSWORD },
  });
  expect(res.status).toBe(200);
  return { email, token: ((await res.json()) as { access_token: string }).access_token };
}

/** Signs up, signs in on /me; returns the cookie, the page's CSRF token and the personal project. */
async function signedIn(tag: string) {
  const { email, token } = await signup(tag);
  const login = await signInForm();
  const res = await form("/me/signin", { email, password: PASSWORD, login_csrf: login.token }, login.cookie);
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/me");
  const setCookie = res.headers.get("set-cookie") ?? "";
  expect(setCookie).toMatch(/HttpOnly/i);
  expect(setCookie).toMatch(/Path=\/me/);
  expect(setCookie).toMatch(/SameSite=Lax/i);
  const cookie = setCookie.split(";")[0]!;
  const page = await (await call("/me", { headers: { cookie } })).text();
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error(`no CSRF token on the page: ${page}`);
  const [personal] = (await (await call("/v1/projects", { key: token })).json()) as { id: string }[];
  const project = (await (await call(`/v1/projects/${personal!.id}`, { key: token })).json()) as TestProject;
  return { email, token, cookie, csrf, project };
}

async function html(res: Response, status: number): Promise<string> {
  const body = await res.text();
  expect(res.status, body).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^text\/html/);
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(res.headers.get("x-frame-options")).toBe("DENY");
  return body;
}

describe("/me without a session", () => {
  it("shows the sign-in form, and sends every other page back to it", async () => {
    const page = await html(await call("/me"), 200);
    expect(page).toContain('<form method="post" action="/me/signin">');
    expect(page).toContain('<label for="password">');
    const table = await call("/me/projects/aaaaaaaaaaaaaaaaaaaa/tables/t", { redirect: "manual" });
    expect(table.status).toBe(302);
    expect(table.headers.get("location")).toBe("/me");
    const revoke = await form("/me/grants/nope/revoke", { csrf_token: "x" });
    expect(revoke.status).toBe(303);
    await html(await call("/me/nothing-here"), 404);
  });

  it("refuses a wrong password with the form again, the email escaped", async () => {
    const email = `x"><b>y-${crypto.randomUUID().slice(0, 6)}@example.test`;
    const login = await signInForm();
    const wrong = await form(
      "/me/signin",
      { email, password: "wrong password", login_csrf: login.token },
      login.cookie,
    );
    const page = await html(wrong, 400);
    expect(page).toContain("Invalid email or password.");
    expect(page).toContain("x&quot;&gt;&lt;b&gt;y-");
    expect(page).not.toContain('"><b>');
    // The form shown again still signs in: same login cookie, same token.
    expect(page).toContain(`name="login_csrf" value="${login.token}"`);
    await html(await form("/me/signin", { login_csrf: login.token }, login.cookie), 400);
  });

  it("gives the sign-in form a short-lived HttpOnly login cookie, kept across renders", async () => {
    const res = await call("/me");
    await html(res, 200);
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(
      /^hearth_me_login=[A-Za-z0-9_-]{43}; Max-Age=3600; Path=\/me; HttpOnly; SameSite=Lax$/,
    );
    const first = await signInForm();
    const again = await signInForm(first.cookie);
    expect(again).toEqual(first);
    const other = await signInForm();
    expect(other.cookie).not.toBe(first.cookie);
    expect(other.token).not.toBe(first.token);
  });

  it("refuses a sign-in without its form's login token (login CSRF): 403, no session, no cookie", async () => {
    const { email } = await signup("me-login-csrf");
    const account = await catalog
      .prepare("SELECT id FROM accounts WHERE email = ?")
      .bind(email)
      .first<{ id: string }>();
    const sessions = async () =>
      (await catalog
        .prepare("SELECT count(*) AS n FROM sessions WHERE account_id = ?")
        .bind(account!.id)
        .first<{ n: number }>())!.n;
    const before = await sessions();
    const a = await signInForm();
    const b = await signInForm();
    const creds = { email, password: PASSWORD };
    const refused: [string, Promise<Response>][] = [
      ["no token, no cookie", form("/me/signin", creds)],
      ["cookie, no token", form("/me/signin", creds, a.cookie)],
      ["token, no cookie", form("/me/signin", { ...creds, login_csrf: a.token })],
      ["forged token", form("/me/signin", { ...creds, login_csrf: "forged" }, a.cookie)],
      ["another cookie's token", form("/me/signin", { ...creds, login_csrf: b.token }, a.cookie)],
      [
        "the value under the consent page's cookie name",
        form(
          "/me/signin",
          { ...creds, login_csrf: a.token },
          a.cookie.replace("hearth_me_login", "hearth_oauth_login"),
        ),
      ],
    ];
    for (const [why, pending] of refused) {
      const res = await pending;
      const page = await html(res, 403);
      expect(page, why).toContain("The form expired or did not come from this page; reload it.");
      expect(res.headers.get("set-cookie"), why).toBeNull();
    }
    // A valid pair posted from another site is refused too (Sec-Fetch-Site, Origin).
    const crossSite = (headers: Record<string, string>) =>
      call("/me/signin", {
        method: "POST",
        redirect: "manual",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "cf-connecting-ip": ip(),
          cookie: a.cookie,
          ...headers,
        },
        body: new URLSearchParams({ ...creds, login_csrf: a.token }).toString(),
      });
    for (const headers of [
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: "https://evil.example" },
    ]) {
      const res = await crossSite(headers);
      await html(res, 403);
      expect(res.headers.get("set-cookie"), JSON.stringify(headers)).toBeNull();
    }
    expect(await sessions()).toBe(before);
    // The browser's own form post (same-origin, and Origin: null under no-referrer) signs in.
    const ok = await crossSite({ "sec-fetch-site": "same-origin", origin: "null" });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("set-cookie")).toMatch(/^hearth_me_session=/);
    expect(await sessions()).toBe(before + 1);
  });
});

describe("/me signed in", () => {
  it("lists tables and rows through the project, escaped", async () => {
    const s = await signedIn("me-rows");
    const schema = {
      tables: {
        notes: {
          columns: {
            id: { type: "integer", primaryKey: true },
            body: { type: "text" },
            meta: { type: "json" },
          },
        },
      },
    };
    const put = await call(`${s.project.url}/schema`, {
      method: "PUT",
      key: s.project.serviceKey,
      body: schema,
    });
    expect(put.status).toBe(200);
    const insert = await call(`${s.project.url}/rest/v1/notes`, {
      method: "POST",
      key: s.token,
      body: [
        { id: 1, body: "<img src=x onerror=alert(1)>", meta: { a: "</td>" } },
        { id: 2, body: null, meta: null },
      ],
    });
    expect(insert.status).toBe(201);
    const home = await html(await call("/me", { headers: { cookie: s.cookie } }), 200);
    expect(home).toContain(`/me/projects/${s.project.id}/tables/notes`);
    expect(home).toMatch(/<code>notes<\/code><\/a><\/th><td class="num">2<\/td>/);
    const rows = await html(
      await call(`/me/projects/${s.project.id}/tables/notes?page=abc`, { headers: { cookie: s.cookie } }),
      200,
    );
    expect(rows).toContain("Rows 1–2 of 2.");
    expect(rows).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(rows).not.toContain("<img");
    expect(rows).toContain("{&quot;a&quot;:&quot;&lt;/td&gt;&quot;}");
    expect(rows).toContain('<td class="null">null</td>');
    const far = await html(
      await call(`/me/projects/${s.project.id}/tables/notes?page=9`, { headers: { cookie: s.cookie } }),
      200,
    );
    expect(far).toContain("No rows on page 9; the table has 2.");
    const exported = await call(`/me/projects/${s.project.id}/export`, { headers: { cookie: s.cookie } });
    expect(exported.status).toBe(200);
    expect(exported.headers.get("content-type")).toBe("application/zip");
    expect(new Uint8Array(await exported.arrayBuffer()).slice(0, 2)).toEqual(new Uint8Array([0x50, 0x4b]));
  });

  it("answers unknown projects, tables and grants with 404 pages, and forged forms with 403", async () => {
    const s = await signedIn("me-bad");
    const other = await signedIn("me-other");
    const get = (path: string) => call(path, { headers: { cookie: s.cookie } });
    await html(await get("/me/projects/not-an-id/tables/x"), 404);
    await html(await get(`/me/projects/${other.project.id}/tables/x`), 404);
    await html(await get(`/me/projects/${other.project.id}/export`), 404);
    const missing = await html(await get(`/me/projects/${s.project.id}/tables/nope`), 404);
    expect(missing).toContain("no table &quot;nope&quot;");
    await html(await form("/me/grants/nope/revoke", { csrf_token: s.csrf }, s.cookie), 404);
    // Another session's token is not this session's.
    await html(await form("/me/grants/nope/revoke", { csrf_token: other.csrf }, s.cookie), 403);
    await html(await form("/me/signout", { csrf_token: "forged" }, s.cookie), 403);
    expect(await (await get("/me")).text()).toContain("Sign out");
  });

  it("signs out: the session ends, so the old cookie no longer opens the page", async () => {
    const s = await signedIn("me-out");
    const out = await form("/me/signout", { csrf_token: s.csrf }, s.cookie);
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/hearth_me_session=;.*Max-Age=0/i);
    const page = await html(await call("/me", { headers: { cookie: s.cookie } }), 200);
    expect(page).toContain("Sign in to see your data");
    // The account's API token (another session) still works.
    expect((await call("/v1/projects", { key: s.token })).status).toBe(200);
  });
});
