/**
 * Accounts: the GoTrue subset at `/auth/v1` and under every project's `{url}/auth/v1`
 * (workers/auth/). Each test sends its own `cf-connecting-ip` so the per-IP rate limits of one
 * test never spill into another.
 */
import { env } from "cloudflare:workers";
import { decodeJwt } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Env } from "../workers/env.ts";
import worker from "../workers/index.ts";
import { call, createProject, ORIGIN, putSchema, type TestProject } from "./helpers/api.ts";

const catalog = (env as unknown as { CATALOG: D1Database }).CATALOG;

interface Session {
  access_token: string;
  token_type: string;
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: {
    id: string;
    email: string;
    email_confirmed_at: string | null;
    user_metadata: Record<string, unknown>;
  };
}
interface AuthErrorBody {
  code: string;
  error_code: string;
  msg: string;
  weak_password?: { reasons: string[] };
}

let ipCounter = 0;
function freshIp(): string {
  ipCounter++;
  return `10.${Math.floor(Math.random() * 250)}.${ipCounter >> 8}.${ipCounter & 255}`;
}
function freshEmail(tag = "user"): string {
  return `${tag}-${crypto.randomUUID().slice(0, 8)}@Example.test`;
}

interface AuthInit {
  method?: string;
  body?: unknown;
  key?: string | undefined;
  apikey?: string | undefined;
  ip?: string;
  headers?: Record<string, string>;
}

/** An auth request like supabase-js makes it: `apikey` plus `Authorization: Bearer`. */
function auth(base: string, path: string, init: AuthInit = {}): Promise<Response> {
  const headers: Record<string, string> = { "cf-connecting-ip": init.ip ?? freshIp(), ...init.headers };
  if (init.apikey) headers.apikey = init.apikey;
  return call(`${base}/auth/v1${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    ...(init.key ? { key: init.key } : {}),
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}

async function expectAuthError(res: Response, status: number, code: string): Promise<AuthErrorBody> {
  const body = (await res.json()) as AuthErrorBody;
  expect([res.status, body.code, body.error_code], JSON.stringify(body)).toEqual([status, code, code]);
  expect(typeof body.msg).toBe("string");
  expect(res.headers.get("x-supabase-api-version")).toBe("2024-01-01");
  return body;
}

async function accountCount(email: string): Promise<number> {
  const row = await catalog
    .prepare("SELECT count(*) AS n FROM accounts WHERE email = ?")
    .bind(email.toLowerCase())
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** Fixed one-minute windows: start a rate-limit test early in a window so it cannot straddle two. */
async function earlyInWindow(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 15_000) await new Promise((r) => setTimeout(r, left + 100));
}

let project: TestProject;
let other: TestProject;
beforeAll(async () => {
  project = await createProject("auth");
  other = await createProject("auth-other");
});

// Every endpoint behaves the same at the platform root and under a project url (with its key).
const BASES = [
  { name: "platform root", base: () => "", key: () => undefined as string | undefined },
  { name: "project url", base: () => project.url, key: () => project.anonKey },
];

describe.each(BASES)("auth at the $name", ({ base, key }) => {
  const signUp = async (email: string, password = "correct horse", data: unknown = { name: "Ada" }) => {
    const res = await auth(base(), "/signup", { key: key(), apikey: key(), body: { email, password, data } });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Session;
  };
  const signIn = async (email: string, password = "correct horse") => {
    const res = await auth(base(), "/token?grant_type=password", {
      key: key(),
      apikey: key(),
      body: { email, password, gotrue_meta_security: {} },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Session;
  };
  const refresh = (token: string) =>
    auth(base(), "/token?grant_type=refresh_token", {
      key: key(),
      apikey: key(),
      body: { refresh_token: token },
    });
  const getUser = (token: string) => auth(base(), "/user", { key: token, apikey: key() });

  it("signs up (auto-confirm): a session, the user, and a personal project", async () => {
    const email = freshEmail("signup");
    const res = await auth(base(), "/signup", {
      key: key(),
      apikey: key(),
      body: {
        email,
        password: "correct horse",
        data: { name: "Ada" },
        gotrue_meta_security: {},
        code_challenge: null,
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-supabase-api-version")).toBe("2024-01-01");
    const s = (await res.json()) as Session;
    expect(s).toMatchObject({ token_type: "bearer", expires_in: 3600 });
    expect(s.expires_at).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 3590);
    expect(s.expires_at).toBeLessThan(Date.now() / 1000 + 3700); // seconds, not milliseconds
    expect(s.refresh_token.length).toBeGreaterThan(20);
    expect(s.access_token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/); // base64url, no padding
    expect(s.user).toMatchObject({
      email: email.toLowerCase(),
      aud: "authenticated",
      role: "authenticated",
      user_metadata: { name: "Ada" },
      app_metadata: { provider: "email", providers: ["email"] },
      is_anonymous: false,
    });
    expect(s.user.email_confirmed_at).toBeTruthy();
    const claims = decodeJwt(s.access_token);
    expect(claims).toMatchObject({
      iss: "hearth",
      aud: "authenticated",
      role: "authenticated",
      sub: s.user.id,
    });
    expect(claims.email).toBe(email.toLowerCase());
    expect(typeof claims.session_id).toBe("string");
    expect(claims.exp! - claims.iat!).toBe(3600);

    const hash = await catalog
      .prepare("SELECT password_hash AS h FROM accounts WHERE id = ?")
      .bind(s.user.id)
      .first<{ h: string }>();
    expect(hash?.h).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);

    const list = await call("/v1/projects", { key: s.access_token });
    expect(list.status).toBe(200);
    const projects = (await list.json()) as { id: string; name: string; personal: boolean }[];
    expect(projects).toHaveLength(1);
    expect(projects[0]).toMatchObject({ name: "personal", personal: true });
  });

  it("refuses a duplicate email (any case) with 422 user_already_exists", async () => {
    const email = freshEmail("dup");
    await signUp(email);
    const res = await auth(base(), "/signup", {
      key: key(),
      apikey: key(),
      body: { email: email.toUpperCase(), password: "another password" },
    });
    await expectAuthError(res, 422, "user_already_exists");
    expect(await accountCount(email)).toBe(1);
  });

  it("refuses bad signup input with a clear 4xx and writes nothing", async () => {
    const email = freshEmail("bad");
    const cases: [unknown, number, string][] = [
      [{ email, password: "short" }, 422, "weak_password"],
      [{ email: "not-an-email", password: "long enough" }, 400, "validation_failed"],
      [{ password: "long enough" }, 400, "validation_failed"],
      [{ email }, 400, "validation_failed"],
      [{ email, password: 12345678 }, 400, "validation_failed"],
      [{ email, password: "long enough", data: [1, 2] }, 400, "validation_failed"],
      [{ email, password: "x".repeat(2000) }, 400, "validation_failed"],
      [{ phone: "+15550100", password: "long enough" }, 422, "phone_provider_disabled"],
      ["{not json", 400, "bad_json"],
      [[1, 2, 3], 400, "bad_json"],
    ];
    for (const [body, status, code] of cases) {
      const res = await auth(base(), "/signup", {
        key: key(),
        apikey: key(),
        body,
        headers: { "content-type": "application/json;charset=UTF-8" },
      });
      const err = await expectAuthError(res, status, code);
      if (code === "weak_password") expect(err.weak_password).toEqual({ reasons: ["length"] });
    }
    expect(await accountCount(email)).toBe(0);
    const mid = await catalog
      .prepare("SELECT count(*) AS n FROM accounts WHERE email = 'not-an-email'")
      .first();
    expect(mid).toEqual({ n: 0 });
  });

  it("signs in with a password; wrong email and wrong password answer the same", async () => {
    const email = freshEmail("signin");
    const up = await signUp(email);
    const s = await signIn(email.toUpperCase());
    expect(s.user.id).toBe(up.user.id);
    expect(s.refresh_token).not.toBe(up.refresh_token);
    expect(decodeJwt(s.access_token).session_id).not.toBe(decodeJwt(up.access_token).session_id);

    const wrongPassword = await auth(base(), "/token?grant_type=password", {
      key: key(),
      apikey: key(),
      body: { email, password: "wrong password" },
    });
    const unknownEmail = await auth(base(), "/token?grant_type=password", {
      key: key(),
      apikey: key(),
      body: { email: freshEmail("nobody"), password: "correct horse" },
    });
    const a = await expectAuthError(wrongPassword, 400, "invalid_credentials");
    const b = await expectAuthError(unknownEmail, 400, "invalid_credentials");
    expect(a).toEqual(b);

    const missing = await auth(base(), "/token?grant_type=password", { key: key(), apikey: key(), body: {} });
    await expectAuthError(missing, 400, "validation_failed");
    for (const grant of ["client_credentials", ""]) {
      const res = await auth(base(), `/token?grant_type=${grant}`, { key: key(), apikey: key(), body: {} });
      await expectAuthError(res, 400, "unsupported_grant_type");
    }
  });

  it("rotates refresh tokens and revokes the session when a used one comes back", async () => {
    const s0 = await signUp(freshEmail("refresh"));
    let res = await refresh(s0.refresh_token);
    expect(res.status).toBe(200);
    const s1 = (await res.json()) as Session;
    expect(s1.refresh_token).not.toBe(s0.refresh_token);
    expect(s1.user.id).toBe(s0.user.id);
    expect(decodeJwt(s1.access_token).session_id).toBe(decodeJwt(s0.access_token).session_id);
    res = await refresh(s1.refresh_token);
    const s2 = (await res.json()) as Session;
    expect(res.status).toBe(200);

    // s0's token was used: presenting it again is reuse, the whole session ends.
    await expectAuthError(await refresh(s0.refresh_token), 400, "refresh_token_already_used");
    await expectAuthError(await refresh(s2.refresh_token), 400, "refresh_token_not_found");
    await expectAuthError(await getUser(s2.access_token), 403, "session_not_found");
    await expectAuthError(await refresh("no-such-token"), 400, "refresh_token_not_found");
    await expectAuthError(await refresh(""), 400, "validation_failed");
  });

  it("reads and updates the user", async () => {
    const email = freshEmail("update");
    const s = await signUp(email);
    let res = await getUser(s.access_token);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-supabase-api-version")).toBe("2024-01-01");
    expect(await res.json()).toMatchObject({ id: s.user.id, email: email.toLowerCase() });

    const put = (body: unknown) =>
      auth(base(), "/user", { method: "PUT", key: s.access_token, apikey: key(), body });
    res = await put({
      data: { name: "Grace", theme: "dark" },
      code_challenge: null,
      code_challenge_method: null,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Session["user"]).user_metadata).toEqual({ name: "Grace", theme: "dark" });
    res = await put({ data: { theme: null } });
    expect(((await res.json()) as Session["user"]).user_metadata).toEqual({ name: "Grace" });

    await expectAuthError(await put({ password: "short" }), 422, "weak_password");
    await expectAuthError(await put({ password: "correct horse" }), 422, "same_password");
    const taken = freshEmail("taken");
    await signUp(taken);
    await expectAuthError(await put({ email: taken }), 422, "email_exists");
    await expectAuthError(await put({ email: "nope" }), 400, "validation_failed");
    await expectAuthError(await put({ phone: "+15550100" }), 422, "phone_provider_disabled");

    const second = await signIn(email); // another session, ended by the password change
    const newEmail = freshEmail("renamed");
    res = await put({ email: newEmail, password: "battery staple" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ email: newEmail.toLowerCase() });
    await expectAuthError(await getUser(second.access_token), 403, "session_not_found");
    expect((await getUser(s.access_token)).status).toBe(200);
    await signIn(newEmail, "battery staple");
    const old = await auth(base(), "/token?grant_type=password", {
      key: key(),
      apikey: key(),
      body: { email: newEmail, password: "correct horse" },
    });
    await expectAuthError(old, 400, "invalid_credentials");
  });

  it("refuses /user without a user's access token", async () => {
    await expectAuthError(await auth(base(), "/user", { apikey: key() }), 401, "no_authorization");
    await expectAuthError(await getUser("not.a.jwt"), 403, "bad_jwt");
    await expectAuthError(await getUser(project.anonKey), 403, "bad_jwt");
  });

  it("logs out with scope others, local and global", async () => {
    const email = freshEmail("logout");
    const a = await signUp(email);
    const b = await signIn(email);
    const c = await signIn(email);
    const logout = (token: string, scope?: string) =>
      auth(base(), `/logout${scope ? `?scope=${scope}` : ""}`, {
        method: "POST",
        key: token,
        apikey: key(),
        headers: { "content-type": "application/json;charset=UTF-8" },
      });

    await expectAuthError(await logout(a.access_token, "everyone"), 400, "validation_failed");
    let res = await logout(a.access_token, "others");
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect((await getUser(a.access_token)).status).toBe(200);
    await expectAuthError(await getUser(b.access_token), 403, "session_not_found");
    await expectAuthError(await getUser(c.access_token), 403, "session_not_found");
    await expectAuthError(await refresh(b.refresh_token), 400, "refresh_token_not_found");

    res = await logout(a.access_token, "local");
    expect(res.status).toBe(204);
    await expectAuthError(await getUser(a.access_token), 403, "session_not_found");

    const d = await signIn(email);
    const e = await signIn(email);
    res = await logout(d.access_token); // scope defaults to global
    expect(res.status).toBe(204);
    await expectAuthError(await getUser(d.access_token), 403, "session_not_found");
    await expectAuthError(await getUser(e.access_token), 403, "session_not_found");
    await expectAuthError(await logout(e.access_token), 403, "session_not_found");
  });

  it("signs in with an emailed code or magic link token_hash (OTP)", async () => {
    const email = freshEmail("otp").toLowerCase();
    const otp = (body: unknown) => auth(base(), "/otp", { key: key(), apikey: key(), body });
    const verify = (body: unknown) => auth(base(), "/verify", { key: key(), apikey: key(), body });
    const mailbox = async () => {
      const res = await call(`/dev/mailbox?email=${encodeURIComponent(email)}`);
      expect(res.status).toBe(200);
      return (await res.json()) as { to: string; otp: string; token_hash: string; text: string }[];
    };

    await expectAuthError(await otp({ email, create_user: false }), 422, "otp_disabled");
    expect(await mailbox()).toEqual([]);
    let res = await otp({ email, create_user: true, data: { via: "otp" }, gotrue_meta_security: {} });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(await accountCount(email)).toBe(0); // the account comes with the first verification
    const [first] = await mailbox();
    expect(first).toMatchObject({ to: email });
    expect(first!.otp).toMatch(/^\d{6}$/);
    expect(first!.text).toContain(first!.otp);
    const stored = await catalog.prepare("SELECT * FROM one_time_tokens WHERE email = ?").bind(email).all();
    expect(JSON.stringify(stored.results)).not.toContain(first!.otp); // hashes only
    expect(JSON.stringify(stored.results)).not.toContain(first!.token_hash);

    const wrong = first!.otp === "000000" ? "111111" : "000000";
    await expectAuthError(await verify({ email, token: wrong, type: "email" }), 403, "otp_expired");
    await expectAuthError(await verify({ email, token: "abc", type: "email" }), 403, "otp_expired");
    res = await verify({ email, token: first!.otp, type: "email", gotrue_meta_security: {} });
    expect(res.status, await res.clone().text()).toBe(200);
    const s = (await res.json()) as Session;
    expect(s.user).toMatchObject({ email, user_metadata: { via: "otp" } });
    expect((await getUser(s.access_token)).status).toBe(200);
    const projects = (await (await call("/v1/projects", { key: s.access_token })).json()) as {
      personal: boolean;
    }[];
    expect(projects).toEqual([expect.objectContaining({ personal: true })]);
    // one use only
    await expectAuthError(await verify({ email, token: first!.otp, type: "email" }), 403, "otp_expired");

    // magic link: token_hash alone; a newer request replaces the older code
    await otp({ email });
    await otp({ email });
    const [latest, previous] = await mailbox();
    await expectAuthError(
      await verify({ token_hash: previous!.token_hash, type: "magiclink" }),
      403,
      "otp_expired",
    );
    res = await verify({ token_hash: latest!.token_hash, type: "magiclink" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Session).user.id).toBe(s.user.id);

    // expired after an hour
    await otp({ email });
    const [late] = await mailbox();
    await catalog
      .prepare("UPDATE one_time_tokens SET expires_at = ? WHERE email = ?")
      .bind(Date.now() - 1, email)
      .run();
    await expectAuthError(await verify({ email, token: late!.otp, type: "email" }), 403, "otp_expired");

    await expectAuthError(await verify({ email, type: "email" }), 400, "validation_failed");
    await expectAuthError(
      await verify({ email, token: "123456", type: "recovery" }),
      400,
      "validation_failed",
    );
    await expectAuthError(await otp({ email: "nope" }), 400, "validation_failed");
    await expectAuthError(await otp({ phone: "+15550100" }), 422, "phone_provider_disabled");
  });

  it("answers unknown auth routes with a GoTrue 404", async () => {
    await expectAuthError(await auth(base(), "/nope", { apikey: key() }), 404, "not_found");
  });
});

describe("auth under a project url needs the project's key", () => {
  it("refuses a missing, foreign or revoked-looking key; user endpoints take the access token", async () => {
    const body = { email: freshEmail("keys"), password: "correct horse" };
    await expectAuthError(await auth(project.url, "/signup", { body }), 401, "no_authorization");
    await expectAuthError(
      await auth(project.url, "/signup", { body, apikey: other.anonKey }),
      401,
      "invalid_api_key",
    );
    await expectAuthError(
      await auth(project.url, "/signup", { body, key: "test-admin-key" }),
      401,
      "invalid_api_key",
    );
    expect(await accountCount(body.email)).toBe(0);
    let res = await auth(project.url, "/signup", { body, key: project.serviceKey });
    expect(res.status).toBe(200);
    const s = (await res.json()) as Session;

    // /user: the access token authenticates; an apikey beside it must be this project's.
    expect((await auth(project.url, "/user", { key: s.access_token })).status).toBe(200);
    expect((await auth(project.url, "/user", { key: s.access_token, apikey: project.anonKey })).status).toBe(
      200,
    );
    res = await auth(project.url, "/user", { key: s.access_token, apikey: other.anonKey });
    await expectAuthError(res, 401, "invalid_api_key");
    // the same global account pool: a root session works under any project, and back
    expect((await auth(other.url, "/user", { key: s.access_token })).status).toBe(200);
    expect((await auth("", "/user", { key: s.access_token })).status).toBe(200);

    res = await auth("/p/aaaaaaaaaaaaaaaaaaaa", "/user", { key: s.access_token });
    expect(res.status).toBe(404);
    res = await auth("/p/bad", "/signup", { body, apikey: project.anonKey });
    expect(res.status).toBe(404);
  });
});

describe("the personal project", () => {
  it("is usable with the session's access token on an owner-policy table", async () => {
    const alice = (await (
      await auth("", "/signup", { body: { email: freshEmail("alice"), password: "correct horse" } })
    ).json()) as Session;
    const bob = (await (
      await auth("", "/signup", { body: { email: freshEmail("bob"), password: "correct horse" } })
    ).json()) as Session;
    const [personal] = (await (await call("/v1/projects", { key: alice.access_token })).json()) as {
      id: string;
    }[];
    const res = await call(`/v1/projects/${personal!.id}`, { key: alice.access_token });
    const p = (await res.json()) as TestProject & { personal: boolean };
    expect(p.personal).toBe(true);
    const schema = await putSchema(p, {
      tables: {
        notes: {
          columns: { id: { type: "bigint", primaryKey: true, default: "increment" }, text: { type: "text" } },
          policy: { read: "owner", write: "owner" },
        },
      },
    });
    expect(schema.status).toBe(200);

    const restAs = (token: string, path: string, init: { method?: string; body?: unknown } = {}) =>
      call(`${p.url}/rest/v1${path}`, { ...init, key: token, headers: { apikey: p.anonKey } });
    let r = await restAs(alice.access_token, "/notes", { method: "POST", body: { text: "alice's note" } });
    expect(r.status, await r.clone().text()).toBe(201);
    r = await restAs(bob.access_token, "/notes", { method: "POST", body: { text: "bob's note" } });
    expect(r.status).toBe(201);
    r = await restAs(alice.access_token, "/notes?select=text,owner_id");
    expect(await r.json()).toEqual([{ text: "alice's note", owner_id: alice.user.id }]);

    // after logout the gateway refuses the token
    const out = await auth("", "/logout?scope=local", { method: "POST", key: alice.access_token });
    expect(out.status).toBe(204);
    r = await restAs(alice.access_token, "/notes");
    expect(r.status).toBe(401);
    expect(((await r.json()) as { code: string }).code).toBe("PGRST301");
    expect((await call("/v1/projects", { key: alice.access_token })).status).toBe(401);
  });
});

// Up to 15 s waiting for a fresh window, then dozens of password hashes on a loaded machine.
describe("rate limits", { timeout: 60_000 }, () => {
  it("limits password sign-ins per email (10/min) and per IP (30/min)", async () => {
    await earlyInWindow();
    const email = freshEmail("limited");
    const attempt = (e: string, ip: string) =>
      auth("", "/token?grant_type=password", { ip, body: { email: e, password: "wrong password" } });
    for (let i = 0; i < 10; i++) expect((await attempt(email, freshIp())).status).toBe(400);
    const res = await attempt(email, freshIp());
    await expectAuthError(res, 429, "over_request_rate_limit");
    const retry = Number(res.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);

    const ip = freshIp();
    for (let i = 0; i < 30; i++) expect((await attempt(freshEmail("spray"), ip)).status).toBe(400);
    await expectAuthError(await attempt(freshEmail("spray"), ip), 429, "over_request_rate_limit");
    // x-forwarded-for is the fallback address
    const viaProxy = await call("/auth/v1/token?grant_type=password", {
      method: "POST",
      headers: { "x-forwarded-for": `${ip}, 10.0.0.1` },
      body: { email: freshEmail("spray"), password: "x" },
    });
    await expectAuthError(viaProxy, 429, "over_request_rate_limit");
  });

  it("limits OTP requests per email", async () => {
    await earlyInWindow();
    const email = freshEmail("otp-limit");
    for (let i = 0; i < 10; i++) expect((await auth("", "/otp", { body: { email } })).status).toBe(200);
    await expectAuthError(await auth("", "/otp", { body: { email } }), 429, "over_request_rate_limit");
  });
});

describe("mail delivery", () => {
  const production = (extra: Record<string, string> = {}) =>
    ({
      ...(env as unknown as Record<string, unknown>),
      HEARTH_ENV: "production",
      ...extra,
    }) as unknown as Env;
  afterEach(() => vi.restoreAllMocks());

  it("serves /dev/mailbox only in development and test", async () => {
    expect((await call("/dev/mailbox")).status).toBe(200);
    const res = await worker.fetch(new Request(`${ORIGIN}/dev/mailbox`), production());
    expect(res.status).toBe(404);
  });

  it("deployed: OTP is 500 HEARTH_MISCONFIGURED without a webhook, else POSTs the message", async () => {
    const email = freshEmail("hook").toLowerCase();
    const otpRequest = () =>
      new Request(`${ORIGIN}/auth/v1/otp`, {
        method: "POST",
        headers: { "content-type": "application/json", "cf-connecting-ip": freshIp() },
        body: JSON.stringify({ email }),
      });
    let res = await worker.fetch(otpRequest(), production());
    expect(res.status).toBe(500);
    const body = (await res.json()) as AuthErrorBody;
    expect(body.code).toBe("HEARTH_MISCONFIGURED");
    expect(body.msg).toMatch(/email is not configured/i);
    expect(
      await catalog.prepare("SELECT count(*) AS n FROM one_time_tokens WHERE email = ?").bind(email).first(),
    ).toEqual({
      n: 0,
    });

    const sent: { url: string; auth: string | null; body: Record<string, unknown> }[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      sent.push({ url: req.url, auth: req.headers.get("authorization"), body: await req.json() });
      return new Response(null, { status: 202 });
    });
    res = await worker.fetch(
      otpRequest(),
      production({
        HEARTH_EMAIL_WEBHOOK_URL: "https://mail.example.test/hook",
        HEARTH_EMAIL_WEBHOOK_SECRET: "hook-secret",
      }),
    );
    expect(res.status).toBe(200);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ url: "https://mail.example.test/hook", auth: "Bearer hook-secret" });
    expect(sent[0]!.body).toMatchObject({ type: "magiclink", to: email });
    expect(String(sent[0]!.body.otp)).toMatch(/^\d{6}$/);
  });
});
