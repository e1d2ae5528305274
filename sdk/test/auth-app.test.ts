/**
 * App sign-in (OAuth 2.1 + PKCE S256): the challenge per RFC 7636's test vector, the authorize
 * URL, the redirect's `state` checked before anything is exchanged, the token exchange's exact
 * form, the app session (its project becomes the client's), refresh and revocation.
 */
import { describe, expect, it } from "vitest";
import { codeChallengeS256, createPkcePair, randomString } from "../src/auth/pkce.ts";
import { createClient, HearthError, memoryStorage } from "../src/index.ts";
import { fakeFetch, fakeJwt, json, PLATFORM } from "./fixtures/fake-fetch.ts";

const REDIRECT = "https://todos.example/callback";
const GRANTED = "abcdefghijklmnopqrst";
const tokenAnswer = (n: number) => ({
  access_token: fakeJwt({ sub: "acc-1", typ: "app", n }),
  token_type: "Bearer",
  expires_in: 3600,
  refresh_token: `hr_${n}`,
  scope: "db:com.example.todos:write",
  project_id: GRANTED,
  project_url: `${PLATFORM}/p/${GRANTED}`,
});

function form(body: string | null): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body ?? "").entries());
}

async function startSignIn(f: ReturnType<typeof fakeFetch>, storage = memoryStorage()) {
  const hearth = createClient(PLATFORM, { fetch: f.fetch, auth: { storage } });
  const { url } = await hearth.auth.signInWithApp({
    clientId: "app_1",
    redirectUri: REDIRECT,
    scopes: ["db:com.example.todos:write"],
  });
  return { hearth, url: new URL(url), storage };
}

describe("PKCE", () => {
  it("S256 of RFC 7636's verifier is its challenge (appendix B)", async () => {
    // RFC 7636 appendix B (and `openssl dgst -sha256 -binary | base64url` agree).
    expect(await codeChallengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).toBe(
      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
  });

  it("verifiers are 43 unreserved characters, fresh each time, with their challenge", async () => {
    const a = await createPkcePair();
    const b = await createPkcePair();
    expect(a.verifier).toMatch(/^[A-Za-z0-9\-_]{43}$/);
    expect(a.challenge).toMatch(/^[A-Za-z0-9\-_]{43}$/);
    expect(a.verifier).not.toBe(b.verifier);
    expect(await codeChallengeS256(a.verifier)).toBe(a.challenge);
    expect(randomString(16)).toMatch(/^[A-Za-z0-9\-_]{22}$/);
  });
});

describe("signInWithApp", () => {
  it("builds the authorize URL with state and S256 challenge, and sends nothing", async () => {
    const f = fakeFetch();
    const { url } = await startSignIn(f);
    expect(url.origin + url.pathname).toBe(`${PLATFORM}/oauth/authorize`);
    const q = Object.fromEntries(url.searchParams.entries());
    expect(q).toEqual({
      response_type: "code",
      client_id: "app_1",
      redirect_uri: REDIRECT,
      scope: "db:com.example.todos:write",
      state: expect.stringMatching(/^[A-Za-z0-9\-_]{43}$/),
      code_challenge: expect.stringMatching(/^[A-Za-z0-9\-_]{43}$/),
      code_challenge_method: "S256",
    });
    expect(f.calls).toEqual([]);
  });

  it("adds project_id when asked, and joins scopes given as a list", async () => {
    const hearth = createClient(PLATFORM, { fetch: fakeFetch().fetch, auth: { storage: "memory" } });
    const { url } = await hearth.auth.signInWithApp({
      clientId: "app_1",
      redirectUri: REDIRECT,
      scopes: ["db:a.b:read", "db:a.c:write"],
      projectId: GRANTED,
    });
    const q = new URL(url).searchParams;
    expect(q.get("scope")).toBe("db:a.b:read db:a.c:write");
    expect(q.get("project_id")).toBe(GRANTED);
  });

  it("handleRedirect exchanges the code with the verifier whose S256 was sent, then queries the granted project", async () => {
    const f = fakeFetch(json(200, tokenAnswer(1)), json(200, [{ id: "t1" }]));
    const { hearth, url } = await startSignIn(f);
    const events: string[] = [];
    hearth.auth.onAuthStateChange((e) => events.push(e));
    const state = url.searchParams.get("state")!;
    const session = await hearth.auth.handleRedirect(`${REDIRECT}?code=hc_123&state=${state}`);

    const exchange = f.calls[0]!;
    expect(exchange.method).toBe("POST");
    expect(exchange.url).toBe(`${PLATFORM}/oauth/token`);
    expect(exchange.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    const sent = form(exchange.body);
    expect(sent).toEqual({
      grant_type: "authorization_code",
      code: "hc_123",
      redirect_uri: REDIRECT,
      client_id: "app_1",
      code_verifier: expect.any(String),
    });
    expect(await codeChallengeS256(sent.code_verifier!)).toBe(url.searchParams.get("code_challenge"));

    expect(session).toMatchObject({
      kind: "app",
      client_id: "app_1",
      refresh_token: "hr_1",
      project_id: GRANTED,
      project_url: `${PLATFORM}/p/${GRANTED}`,
      user: { id: "acc-1" },
    });
    expect(hearth.projectUrl).toBe(`${PLATFORM}/p/${GRANTED}`);
    expect(events).toEqual(["INITIAL_SESSION", "SIGNED_IN"]);

    const { data } = await hearth.from("com.example.todos").select("id");
    expect(data).toEqual([{ id: "t1" }]);
    expect(f.calls[1]!.url).toBe(`${PLATFORM}/p/${GRANTED}/rest/v1/com.example.todos?select=id`);
    expect(f.calls[1]!.headers.authorization).toBe(`Bearer ${session.access_token}`);
  });

  it("refuses a redirect whose state is not the one sent: nothing is exchanged, the real redirect still works", async () => {
    const f = fakeFetch(json(200, tokenAnswer(1)));
    const { hearth, url } = await startSignIn(f);
    const err = await hearth.auth.handleRedirect(`${REDIRECT}?code=hc_evil&state=forged`).catch((e) => e);
    expect(err).toBeInstanceOf(HearthError);
    expect(err.code).toBe("HEARTH_OAUTH_STATE");
    await expect(hearth.auth.handleRedirect(`${REDIRECT}?code=hc_evil`)).rejects.toMatchObject({
      code: "HEARTH_OAUTH_STATE",
    });
    expect(f.calls).toEqual([]);
    expect(await hearth.auth.getSession()).toBeNull();

    await hearth.auth.handleRedirect(`${REDIRECT}?code=hc_1&state=${url.searchParams.get("state")}`);
    expect(f.calls).toHaveLength(1);
    // One use: the same redirect again has no pending sign-in.
    await expect(
      hearth.auth.handleRedirect(`${REDIRECT}?code=hc_1&state=${url.searchParams.get("state")}`),
    ).rejects.toMatchObject({ code: "HEARTH_OAUTH_STATE" });
  });

  it("refuses a redirect when no sign-in is pending (another storage)", async () => {
    const f = fakeFetch();
    const hearth = createClient(PLATFORM, { fetch: f.fetch, auth: { storage: "memory" } });
    await expect(hearth.auth.handleRedirect(`${REDIRECT}?code=hc&state=s`)).rejects.toMatchObject({
      code: "HEARTH_OAUTH_STATE",
    });
    expect(f.calls).toEqual([]);
  });

  it("turns error=access_denied into a HearthError with that code", async () => {
    const f = fakeFetch();
    const { hearth, url } = await startSignIn(f);
    const state = url.searchParams.get("state")!;
    await expect(
      hearth.auth.handleRedirect(
        `${REDIRECT}?error=access_denied&error_description=The+user+denied&state=${state}`,
      ),
    ).rejects.toMatchObject({ code: "access_denied", message: "The user denied", status: 0 });
    expect(f.calls).toEqual([]);
  });

  it("surfaces the token endpoint's OAuth error (invalid_grant) and stays signed out", async () => {
    const f = fakeFetch(
      json(400, { error: "invalid_grant", error_description: "code_verifier does not match" }),
    );
    const { hearth, url } = await startSignIn(f);
    const state = url.searchParams.get("state")!;
    await expect(hearth.auth.handleRedirect(`${REDIRECT}?code=hc&state=${state}`)).rejects.toMatchObject({
      code: "invalid_grant",
      status: 400,
      message: "code_verifier does not match",
    });
    expect(await hearth.auth.getSession()).toBeNull();
  });

  it("refreshes with grant_type=refresh_token and signs out by revoking the refresh token", async () => {
    const f = fakeFetch(json(200, tokenAnswer(1)), json(200, tokenAnswer(2)), json(200, null));
    const { hearth, url } = await startSignIn(f);
    await hearth.auth.handleRedirect(`${REDIRECT}?code=hc&state=${url.searchParams.get("state")}`);
    const refreshed = await hearth.auth.refreshSession();
    expect(form(f.calls[1]!.body)).toEqual({
      grant_type: "refresh_token",
      refresh_token: "hr_1",
      client_id: "app_1",
    });
    expect(refreshed.refresh_token).toBe("hr_2");
    await hearth.auth.signOut();
    expect(f.calls[2]!.url).toBe(`${PLATFORM}/oauth/revoke`);
    expect(form(f.calls[2]!.body)).toEqual({ token: "hr_2", client_id: "app_1" });
    expect(await hearth.auth.getSession()).toBeNull();
    expect(hearth.projectUrl).toBeNull();
  });
});
