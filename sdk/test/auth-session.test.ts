/**
 * Account sign-in against GoTrue's `/auth/v1` subset: the exact requests, the session kept in
 * storage (and read back by a new client), the silent refresh before expiry (timer), one
 * refresh at a time (refresh tokens rotate), a refused refresh ending the session, adopting a
 * session another tab rotated, the events, and sign-out.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { type AuthEvent, createClient, HearthError, memoryStorage, type Session } from "../src/index.ts";
import { fakeFetch, json, networkError, PLATFORM, PROJECT } from "./fixtures/fake-fetch.ts";

const USER = { id: "u1", email: "ada@example.com", aud: "authenticated", role: "authenticated" };
const session = (n: number, expiresIn = 3600) => ({
  access_token: `access-${n}`,
  token_type: "bearer",
  expires_in: expiresIn,
  expires_at: 0, // the client computes its own from expires_in
  refresh_token: `refresh-${n}`,
  user: USER,
});

function recorder() {
  const events: [AuthEvent, string | null][] = [];
  return {
    events,
    listener: (e: AuthEvent, s: Session | null) => events.push([e, s?.access_token ?? null]),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("account sign-in", () => {
  it("signUp and signInWithPassword send GoTrue's requests to {url}/auth/v1 with the project key", async () => {
    const f = fakeFetch(json(200, session(1)), json(200, session(2)));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    const up = await hearth.auth.signUp({
      email: "ada@example.com",
      password: "correct horse",
      data: { name: "Ada" },
    });
    expect(f.calls[0]).toMatchObject({
      method: "POST",
      url: `${PROJECT}/auth/v1/signup`,
      headers: { apikey: "anon", "content-type": "application/json" },
    });
    expect(JSON.parse(f.calls[0]!.body!)).toEqual({
      email: "ada@example.com",
      password: "correct horse",
      data: { name: "Ada" },
    });
    expect(up).toMatchObject({ kind: "account", access_token: "access-1", user: USER });
    expect(up.expires_at).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 3599);

    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "correct horse" });
    expect(f.calls[1]).toMatchObject({ method: "POST", url: `${PROJECT}/auth/v1/token?grant_type=password` });
    expect(JSON.parse(f.calls[1]!.body!)).toEqual({ email: "ada@example.com", password: "correct horse" });
  });

  it("without a key, accounts sign in at the platform root", async () => {
    const f = fakeFetch(json(200, session(1)));
    const hearth = createClient(PROJECT, { fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    expect(f.calls[0]!.url).toBe(`${PLATFORM}/auth/v1/token?grant_type=password`);
    expect(f.calls[0]!.headers.apikey).toBeUndefined();
  });

  it("a refusal is a HearthError with GoTrue's code, and never retried", async () => {
    const f = fakeFetch(
      json(400, {
        code: "invalid_credentials",
        error_code: "invalid_credentials",
        msg: "Invalid login credentials",
      }),
    );
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    const err = await hearth.auth.signInWithPassword({ email: "a@b.c", password: "nope" }).catch((e) => e);
    expect(err).toBeInstanceOf(HearthError);
    expect(err).toMatchObject({
      code: "invalid_credentials",
      status: 400,
      message: "Invalid login credentials",
    });
    expect(f.calls).toHaveLength(1);
  });

  it("a sign-in POST that meets a network error is not retried, even with retry.writes", async () => {
    const f = fakeFetch({ throws: networkError() });
    const hearth = createClient(PROJECT, {
      key: "anon",
      fetch: f.fetch,
      auth: { storage: "memory" },
      retry: { writes: true, baseDelayMs: 1 },
    });
    await expect(hearth.auth.signInWithPassword({ email: "a@b.c", password: "pw" })).rejects.toMatchObject({
      code: "HEARTH_NETWORK",
    });
    expect(f.calls).toHaveLength(1);
  });

  it("keeps the session in storage: a new client with the same storage is signed in", async () => {
    const storage = memoryStorage();
    const f = fakeFetch(json(200, session(1)), json(200, USER));
    const first = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage } });
    await first.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    const second = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage } });
    const { listener, events } = recorder();
    second.auth.onAuthStateChange(listener);
    expect((await second.auth.getSession())?.access_token).toBe("access-1");
    expect(events).toEqual([["INITIAL_SESSION", "access-1"]]);
    expect(await second.auth.getUser()).toEqual(USER);
    expect(f.calls[1]).toMatchObject({
      method: "GET",
      url: `${PROJECT}/auth/v1/user`,
      headers: { authorization: "Bearer access-1", apikey: "anon" },
    });
  });

  it("getUser and refreshSession without a session reject with HEARTH_NOT_SIGNED_IN", async () => {
    const hearth = createClient(PROJECT, {
      key: "anon",
      fetch: fakeFetch().fetch,
      auth: { storage: "memory" },
    });
    await expect(hearth.auth.getUser()).rejects.toMatchObject({ code: "HEARTH_NOT_SIGNED_IN" });
    await expect(hearth.auth.refreshSession()).rejects.toMatchObject({ code: "HEARTH_NOT_SIGNED_IN" });
  });
});

describe("refresh", () => {
  it("refreshes silently refreshMarginMs before expiry, and again after each refresh", async () => {
    vi.useFakeTimers({ now: new Date("2026-01-01T00:00:00Z") });
    const f = fakeFetch(json(200, session(1)), json(200, session(2)), json(200, session(3)));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    const { listener, events } = recorder();
    hearth.auth.onAuthStateChange(listener);
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });

    await vi.advanceTimersByTimeAsync(3540_000 - 1); // 60 s before expiry, minus 1 ms
    expect(f.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(f.calls).toHaveLength(2);
    expect(f.calls[1]).toMatchObject({
      method: "POST",
      url: `${PROJECT}/auth/v1/token?grant_type=refresh_token`,
    });
    expect(JSON.parse(f.calls[1]!.body!)).toEqual({ refresh_token: "refresh-1" });
    expect((await hearth.auth.getSession())?.access_token).toBe("access-2");

    await vi.advanceTimersByTimeAsync(3540_000);
    expect(f.calls).toHaveLength(3);
    expect(JSON.parse(f.calls[2]!.body!)).toEqual({ refresh_token: "refresh-2" });
    expect(events).toEqual([
      ["INITIAL_SESSION", null],
      ["SIGNED_IN", "access-1"],
      ["TOKEN_REFRESHED", "access-2"],
      ["TOKEN_REFRESHED", "access-3"],
    ]);
    hearth.auth.stopAutoRefresh();
  });

  it("a short-lived token refreshes at half its lifetime, not after it expired", async () => {
    vi.useFakeTimers({ now: new Date("2026-01-01T00:00:00Z") });
    const f = fakeFetch(json(200, session(1, 60)), json(200, session(2, 60)));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await vi.advanceTimersByTimeAsync(29_999);
    expect(f.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(f.calls).toHaveLength(2);
    hearth.auth.stopAutoRefresh();
  });

  it("autoRefresh: false sets no timer, but a token about to expire is refreshed before use", async () => {
    vi.useFakeTimers({ now: new Date("2026-01-01T00:00:00Z") });
    const f = fakeFetch(json(200, session(1)), json(200, session(2)), json(200, []));
    const hearth = createClient(PROJECT, {
      key: "anon",
      fetch: f.fetch,
      auth: { storage: "memory", autoRefresh: false },
    });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await vi.advanceTimersByTimeAsync(3595_000);
    expect(f.calls).toHaveLength(1);
    await hearth.from("t").select();
    expect(f.calls.map((c) => c.url)).toEqual([
      `${PROJECT}/auth/v1/token?grant_type=password`,
      `${PROJECT}/auth/v1/token?grant_type=refresh_token`,
      `${PROJECT}/rest/v1/t?select=*`,
    ]);
    expect(f.calls[2]!.headers.authorization).toBe("Bearer access-2");
  });

  it("concurrent refreshes share one request (a rotated refresh token must not be sent twice)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const f = fakeFetch(json(200, session(1)), async () => {
      await gate;
      return new Response(JSON.stringify(session(2)), { status: 200 });
    });
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    const both = Promise.all([hearth.auth.refreshSession(), hearth.auth.refreshSession()]);
    release();
    const [a, b] = await both;
    expect(a.access_token).toBe("access-2");
    expect(b).toBe(a);
    expect(f.calls).toHaveLength(2);
  });

  it("a refused refresh token ends the session: cleared from storage, SIGNED_OUT", async () => {
    const storage = memoryStorage();
    const f = fakeFetch(
      json(200, session(1)),
      json(400, {
        code: "refresh_token_already_used",
        error_code: "refresh_token_already_used",
        msg: "Invalid Refresh Token: Already Used",
      }),
    );
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage, storageKey: "s" } });
    const { listener, events } = recorder();
    hearth.auth.onAuthStateChange(listener);
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await expect(hearth.auth.refreshSession()).rejects.toMatchObject({ code: "refresh_token_already_used" });
    expect(await hearth.auth.getSession()).toBeNull();
    expect(await storage.getItem("s")).toBeNull();
    expect(events.map(([e]) => e)).toEqual(["INITIAL_SESSION", "SIGNED_IN", "SIGNED_OUT"]);
  });

  it("a refresh that meets a network error keeps the session and tries again later", async () => {
    vi.useFakeTimers({ now: new Date("2026-01-01T00:00:00Z") });
    const f = fakeFetch(json(200, session(1)), { throws: networkError() }, json(200, session(2)));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await vi.advanceTimersByTimeAsync(3540_000);
    expect(f.calls).toHaveLength(2);
    expect(hearth.auth.currentSession()?.access_token).toBe("access-1");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(f.calls).toHaveLength(3);
    expect(hearth.auth.currentSession()?.access_token).toBe("access-2");
    hearth.auth.stopAutoRefresh();
  });

  it("adopts a session another tab already rotated instead of reusing the old refresh token", async () => {
    const storage = memoryStorage();
    const f = fakeFetch(json(200, session(1)), json(200, session(2)));
    const tabA = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage } });
    await tabA.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    const tabB = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage } });
    await tabB.auth.refreshSession(); // rotates refresh-1 → refresh-2 into the shared storage
    const adopted = await tabA.auth.refreshSession();
    expect(adopted.refresh_token).toBe("refresh-2");
    expect(f.calls).toHaveLength(2); // tab A sent nothing
  });
});

describe("signOut", () => {
  it("clears the session at once, then logs out on the server with the scope", async () => {
    const f = fakeFetch(json(200, session(1)), json(204, null), json(200, []));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    const { listener, events } = recorder();
    hearth.auth.onAuthStateChange(listener);
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await hearth.auth.signOut({ scope: "local" });
    expect(f.calls[1]).toMatchObject({
      method: "POST",
      url: `${PROJECT}/auth/v1/logout?scope=local`,
      headers: { authorization: "Bearer access-1", apikey: "anon" },
    });
    expect(await hearth.auth.getSession()).toBeNull();
    expect(events.at(-1)).toEqual(["SIGNED_OUT", null]);
    await hearth.from("t").select();
    expect(f.calls[2]!.headers.authorization).toBe("Bearer anon");
  });

  it("ignores the server saying the session had already ended", async () => {
    const f = fakeFetch(
      json(200, session(1)),
      json(403, { code: "session_not_found", error_code: "session_not_found", msg: "Session not found" }),
    );
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await hearth.auth.signOut();
    expect(f.calls[1]!.url).toBe(`${PROJECT}/auth/v1/logout?scope=global`);
    expect(await hearth.auth.getSession()).toBeNull();
  });

  it("scope others keeps this session", async () => {
    const f = fakeFetch(json(200, session(1)), json(204, null));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await hearth.auth.signOut({ scope: "others" });
    expect(f.calls[1]!.url).toBe(`${PROJECT}/auth/v1/logout?scope=others`);
    expect((await hearth.auth.getSession())?.access_token).toBe("access-1");
  });
});
