/**
 * Apps and OAuth over real HTTP against `npm start` (global-setup.ts): register an app,
 * approve it as JSON with an account token from `/auth/v1/signup`, exchange the code with
 * PKCE, then use the app token with an unmodified supabase-js `createClient`. Then the
 * refusals of RFC 6749 (wrong verifier, reused code, mismatched redirect URI, unknown scope),
 * and two apps sharing one user's `com.example.todos` through a revocation and a re-grant.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { beforeAll, describe, expect, inject, it } from "vitest";
import ws from "ws";
import {
  type Account,
  type Api,
  type AppTokens,
  authorize,
  codeFrom,
  connectApp,
  grantOf,
  type OAuthErrorBody,
  pkce,
  REDIRECT_URI,
  registerApp,
  revokeGrant,
  signup,
  tokenRequest,
} from "../helpers/oauth.ts";

const origin = inject("hearthUrl");
const api: Api = { origin, fetch: (url, init) => fetch(url, init) };

const TODOS = "com.example.todos";
const TODOS_TABLE = {
  columns: {
    id: { type: "uuid", primaryKey: true, default: "random" },
    title: { type: "text", notNull: true },
    done: { type: "boolean", default: false },
  },
};
const OTHER_REDIRECT = "https://app.example/other-callback";

interface Todo {
  id: string;
  title: string;
  done: boolean;
}

function client(t: AppTokens): SupabaseClient {
  return createClient(t.project_url, t.access_token, {
    realtime: { transport: ws as never }, // ws's types differ from supabase-js's WebSocketLike
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

async function personalProjectId(account: Account): Promise<string> {
  const res = await fetch(`${origin}/v1/projects`, {
    headers: { authorization: `Bearer ${account.accessToken}` },
  });
  expect(res.status).toBe(200);
  const projects = (await res.json()) as { id: string; personal: boolean }[];
  const personal = projects.find((p) => p.personal);
  if (!personal) throw new Error(`no personal project in ${JSON.stringify(projects)}`);
  return personal.id;
}

async function oauthError(res: Response): Promise<{ status: number; error: string }> {
  const body = (await res.json()) as OAuthErrorBody;
  return { status: res.status, error: body.error };
}

let dev: Account;
let user: Account;

beforeAll(async () => {
  dev = await signup(api, "e2e-oauth-dev");
  user = await signup(api, "e2e-oauth-user");
});

describe("OAuth 2.1 with PKCE over HTTP", () => {
  it("registers an app, approves as JSON, exchanges the code, and supabase-js reads and writes with the token", async () => {
    const app = await registerApp(api, dev.accessToken, "E2E Todos", { [TODOS]: TODOS_TABLE });
    expect(app.clientId).toMatch(/^app_/);

    const { verifier, challenge } = await pkce();
    const approved = await authorize(api, user.accessToken, {
      clientId: app.clientId,
      scope: `db:${TODOS}:write`,
      challenge,
      state: "e2e-state",
    });
    const location = new URL(approved.headers.get("location") ?? "");
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    const code = await codeFrom(approved, "e2e-state");

    const exchanged = await tokenRequest(api, {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      client_id: app.clientId,
      code_verifier: verifier,
    });
    expect(exchanged.status).toBe(200);
    const t = (await exchanged.json()) as AppTokens;
    const projectId = await personalProjectId(user); // no project_id: the personal project
    expect(t).toMatchObject({
      token_type: "Bearer",
      expires_in: 3600,
      scope: `db:${TODOS}:write`,
      project_id: projectId,
      project_url: `${origin}/p/${projectId}`,
    });
    expect(t.refresh_token).toMatch(/^hr_/);

    const db = client(t);
    const inserted = await db.from(TODOS).insert({ title: "buy milk" }).select();
    expect(inserted.error).toBeNull();
    expect(inserted.status).toBe(201);
    const [milk] = inserted.data as Todo[];
    expect(milk).toMatchObject({ title: "buy milk", done: false });

    const updated = await db.from(TODOS).update({ done: true }).eq("id", milk!.id).select();
    expect(updated.error).toBeNull();
    expect(updated.data).toEqual([{ ...milk, done: true }]);

    const read = await db.from(TODOS).select("id, title, done").order("title");
    expect(read.error).toBeNull();
    expect(read.data).toEqual([{ id: milk!.id, title: "buy milk", done: true }]);

    // The token is scoped to the app's table: the project's schema endpoint refuses it.
    const schema = await fetch(`${t.project_url}/schema`, {
      headers: { authorization: `Bearer ${t.access_token}` },
    });
    expect(schema.status).toBe(403);

    // The refresh token rotates and the new access token works with supabase-js too.
    const refreshed = await tokenRequest(api, {
      grant_type: "refresh_token",
      refresh_token: t.refresh_token,
      client_id: app.clientId,
    });
    expect(refreshed.status).toBe(200);
    const t2 = (await refreshed.json()) as AppTokens;
    expect(t2.refresh_token).not.toBe(t.refresh_token);
    const again = await client(t2).from(TODOS).select("id");
    expect(again.data).toEqual([{ id: milk!.id }]);
  });

  it("answers the RFC 6749 errors: wrong verifier, reused code, mismatched redirect URI, unknown scope", async () => {
    const app = await registerApp(api, dev.accessToken, "E2E Errors", { [TODOS]: TODOS_TABLE }, [
      REDIRECT_URI,
      OTHER_REDIRECT,
    ]);
    const scope = `db:${TODOS}:read`;
    const { verifier, challenge } = await pkce();
    const code = await codeFrom(
      await authorize(api, user.accessToken, { clientId: app.clientId, scope, challenge }),
    );
    const exchange = (over: Record<string, string>) =>
      tokenRequest(api, {
        grant_type: "authorization_code",
        code,
        redirect_uri: REDIRECT_URI,
        client_id: app.clientId,
        code_verifier: verifier,
        ...over,
      });

    // Wrong verifier (well-formed, another pair's): invalid_grant; the code stays usable.
    const other = await pkce();
    expect(await oauthError(await exchange({ code_verifier: other.verifier }))).toEqual({
      status: 400,
      error: "invalid_grant",
    });
    // Another registered redirect URI than the authorization request's: invalid_grant.
    expect(await oauthError(await exchange({ redirect_uri: OTHER_REDIRECT }))).toEqual({
      status: 400,
      error: "invalid_grant",
    });
    // An unregistered one too.
    expect(await oauthError(await exchange({ redirect_uri: "https://evil.example/cb" }))).toEqual({
      status: 400,
      error: "invalid_grant",
    });

    // The rightful holder still gets its tokens after those refusals.
    const good = await exchange({});
    expect(good.status).toBe(200);
    const issued = (await good.json()) as AppTokens;

    // Reusing the code: invalid_grant, and the refresh token it issued is revoked.
    expect(await oauthError(await exchange({}))).toEqual({ status: 400, error: "invalid_grant" });
    const refresh = await tokenRequest(api, {
      grant_type: "refresh_token",
      refresh_token: issued.refresh_token,
      client_id: app.clientId,
    });
    expect(await oauthError(refresh)).toEqual({ status: 400, error: "invalid_grant" });

    // Unknown scope: the authorization endpoint redirects back with error=invalid_scope and the state.
    for (const bad of ["db:com.example.nope:read", `db:${TODOS}:admin`, "openid"]) {
      const res = await authorize(api, user.accessToken, {
        clientId: app.clientId,
        scope: bad,
        challenge,
        state: "s-scope",
      });
      expect(res.status, bad).toBe(302);
      const params = new URL(res.headers.get("location") ?? "").searchParams;
      expect(params.get("error"), bad).toBe("invalid_scope");
      expect(params.get("state")).toBe("s-scope");
      expect(params.get("code")).toBeNull();
    }

    // A redirect URI the app never registered is never redirected to (RFC 6749 §4.1.2.1).
    const unregistered = await authorize(api, user.accessToken, {
      clientId: app.clientId,
      scope,
      challenge,
      redirectUri: "https://evil.example/cb",
    });
    expect(unregistered.status).toBe(400);
    expect(unregistered.headers.get("location")).toBeNull();
    await unregistered.arrayBuffer();
  });
});

describe("two apps share one user's table", () => {
  it("A writes, B reads; revoking A refuses A only; re-granting A restores the same data", async () => {
    const appA = await registerApp(api, dev.accessToken, "E2E App A", { [TODOS]: TODOS_TABLE });
    const appB = await registerApp(api, dev.accessToken, "E2E App B", { [TODOS]: TODOS_TABLE });
    const owner = await signup(api, "e2e-oauth-sharer");
    const a = await connectApp(api, owner.accessToken, {
      clientId: appA.clientId,
      scope: `db:${TODOS}:write`,
    });
    const b = await connectApp(api, owner.accessToken, {
      clientId: appB.clientId,
      scope: `db:${TODOS}:read`,
    });
    expect(b.project_id).toBe(a.project_id);

    const dbA = client(a);
    const dbB = client(b);
    const titles = ["one", "two", "three"];
    const written = await dbA
      .from(TODOS)
      .insert(titles.map((title) => ({ title })))
      .select();
    expect(written.error).toBeNull();
    const rows = (written.data as Todo[]).sort((x, y) => x.id.localeCompare(y.id));
    expect(rows.map((r) => r.title).sort()).toEqual([...titles].sort());

    const readB = await dbB.from(TODOS).select("*").order("id");
    expect(readB.error).toBeNull();
    expect(readB.data).toEqual(rows);
    // B was granted read only.
    const writeB = await dbB.from(TODOS).insert({ title: "from B" });
    expect(writeB.status).toBe(403);
    expect(writeB.error?.code).toBe("42501");

    // Revoke A's grant.
    const grantA = await grantOf(api, owner.accessToken, appA.clientId, a.project_id);
    await revokeGrant(api, owner.accessToken, grantA.id);
    const refusedRead = await dbA.from(TODOS).select("*");
    expect(refusedRead.status).toBe(401);
    expect(refusedRead.error?.code).toBe("PGRST301");
    const refusedWrite = await dbA.from(TODOS).insert({ title: "after revoke" });
    expect(refusedWrite.status).toBe(401);
    const refreshA = await tokenRequest(api, {
      grant_type: "refresh_token",
      refresh_token: a.refresh_token,
      client_id: appA.clientId,
    });
    expect(await oauthError(refreshA)).toEqual({ status: 400, error: "invalid_grant" });

    // B still reads everything A wrote, and nothing else.
    const stillB = await dbB.from(TODOS).select("*").order("id");
    expect(stillB.error).toBeNull();
    expect(stillB.data).toEqual(rows);

    // Re-granting A restores access to the same rows.
    const a2 = await connectApp(api, owner.accessToken, {
      clientId: appA.clientId,
      scope: `db:${TODOS}:write`,
    });
    expect(a2.project_id).toBe(a.project_id);
    const dbA2 = client(a2);
    const back = await dbA2.from(TODOS).select("*").order("id");
    expect(back.error).toBeNull();
    expect(back.data).toEqual(rows);
    const more = await dbA2.from(TODOS).insert({ title: "four" }).select();
    expect(more.status).toBe(201);
    const four = (more.data as Todo[])[0]!;
    const seenByB = await dbB.from(TODOS).select("id").eq("id", four.id);
    expect(seenByB.data).toEqual([{ id: four.id }]);
    // The old, revoked token stays refused.
    expect((await dbA.from(TODOS).select("id")).status).toBe(401);
  });
});
