/**
 * What each request carries: the project key as `apikey` and bearer token, the session's
 * token instead while signed in, the client's own headers, and a query's own header over
 * both; where it goes (`{url}/rest/v1`, or an app session's `project_url`); and the refusals
 * when there is no project to talk to.
 */
import { describe, expect, it } from "vitest";
import { createClient, HearthError, memoryStorage } from "../src/index.ts";
import { fakeFetch, fakeJwt, json, PLATFORM, PROJECT } from "./fixtures/fake-fetch.ts";

const SESSION = {
  access_token: "account-token",
  token_type: "bearer",
  expires_in: 3600,
  expires_at: 0,
  refresh_token: "r1",
  user: { id: "u1", email: "ada@example.com" },
};

describe("headers", () => {
  it("a key goes as apikey and as the bearer token, to {url}/rest/v1/<table>", async () => {
    const f = fakeFetch(json(200, []));
    const hearth = createClient(PROJECT, { key: "anon-key", fetch: f.fetch });
    await hearth.from("com.example.todos").select("id,title").eq("done", false);
    expect(f.calls[0]!.url).toBe(`${PROJECT}/rest/v1/com.example.todos?select=id%2Ctitle&done=eq.false`);
    expect(f.calls[0]!.headers).toMatchObject({ apikey: "anon-key", authorization: "Bearer anon-key" });
  });

  it("a signed-in account's token replaces the key as bearer, the key stays as apikey", async () => {
    const f = fakeFetch(json(200, SESSION), json(201, null));
    const hearth = createClient(PROJECT, { key: "anon-key", fetch: f.fetch, auth: { storage: "memory" } });
    await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
    await hearth.from("todos").insert({ title: "x" });
    expect(f.calls[1]!.headers).toMatchObject({ apikey: "anon-key", authorization: "Bearer account-token" });
  });

  it("the client's headers go on every request; a query's own header wins", async () => {
    const f = fakeFetch(json(200, []), json(200, []));
    const hearth = createClient(PROJECT, { key: "k", fetch: f.fetch, headers: { "x-trace": "t1" } });
    await hearth.from("t").select();
    await hearth.from("t").select().setHeader("authorization", "Bearer other");
    expect(f.calls[0]!.headers).toMatchObject({ "x-trace": "t1", authorization: "Bearer k" });
    expect(f.calls[1]!.headers).toMatchObject({
      "x-trace": "t1",
      authorization: "Bearer other",
      apikey: "k",
    });
  });

  it("without key nor session, nothing is invented: the server answers its 401", async () => {
    const f = fakeFetch(json(401, { code: "HEARTH_UNAUTHORIZED", message: "No API key found in request." }));
    const hearth = createClient(PROJECT, { fetch: f.fetch });
    const { error } = await hearth.from("t").select();
    expect(f.calls[0]!.headers.authorization).toBeUndefined();
    expect(f.calls[0]!.headers.apikey).toBeUndefined();
    expect(error).toMatchObject({ code: "HEARTH_UNAUTHORIZED", status: 401 });
  });

  it("authHeaders() answers what a request would carry now", async () => {
    const hearth = createClient(PROJECT, { key: "k", fetch: fakeFetch().fetch });
    expect(await hearth.authHeaders()).toEqual({ apikey: "k", authorization: "Bearer k" });
  });
});

describe("which project", () => {
  it("an app session sends queries to its project_url with its token, and no key of another project", async () => {
    const storage = memoryStorage();
    const appSession = {
      kind: "app",
      access_token: fakeJwt({ sub: "acc-1", typ: "app" }),
      refresh_token: "hr_1",
      token_type: "bearer",
      expires_in: 3600,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      client_id: "app_1",
      scope: "db:com.example.todos:write",
      project_id: "zzzzzzzzzzzzzzzzzzzz",
      project_url: `${PLATFORM}/p/zzzzzzzzzzzzzzzzzzzz`,
      user: { id: "acc-1" },
    };
    await storage.setItem("k", JSON.stringify(appSession));
    const f = fakeFetch(json(200, []));
    const hearth = createClient(PROJECT, {
      key: "anon-of-other",
      fetch: f.fetch,
      auth: { storage, storageKey: "k" },
    });
    const query = hearth.from("com.example.todos").select(); // built before the session loaded
    await query;
    expect(f.calls[0]!.url).toBe(`${PLATFORM}/p/zzzzzzzzzzzzzzzzzzzz/rest/v1/com.example.todos?select=*`);
    expect(f.calls[0]!.headers.authorization).toBe(`Bearer ${appSession.access_token}`);
    expect(f.calls[0]!.headers.apikey).toBeUndefined();
    expect(hearth.projectUrl).toBe(appSession.project_url);
  });

  it("a platform-root client has no project before an app signs in: HEARTH_NO_PROJECT, nothing sent", async () => {
    const f = fakeFetch();
    const hearth = createClient(PLATFORM, { fetch: f.fetch });
    expect(hearth.projectUrl).toBeNull();
    const { error } = await hearth.from("t").select();
    expect(error).toBeInstanceOf(HearthError);
    expect(error).toMatchObject({ code: "HEARTH_NO_PROJECT", status: 0 });
    expect(f.calls).toEqual([]);
  });

  it("client.fetch reaches the current project only", async () => {
    const f = fakeFetch(json(200, { tables: {} }));
    const hearth = createClient(PROJECT, { key: "service", fetch: f.fetch });
    const res = await hearth.fetch("/schema");
    expect(await res.json()).toEqual({ tables: {} });
    expect(f.calls[0]).toMatchObject({ url: `${PROJECT}/schema`, headers: { apikey: "service" } });
    await expect(hearth.fetch("http://elsewhere.test/steal")).rejects.toThrow(TypeError);
    await expect(hearth.fetch(`${PROJECT}0/schema`)).rejects.toThrow(TypeError);
  });

  it("refuses URLs that are not http(s) project or platform URLs", () => {
    expect(() => createClient("not a url")).toThrow(TypeError);
    expect(() => createClient("ftp://hearth.test/p/abc")).toThrow(TypeError);
    expect(() => createClient(`${PROJECT}?x=1`)).toThrow(TypeError);
    expect(() => createClient(PROJECT, { key: "" })).toThrow(TypeError);
    expect(createClient(`${PROJECT}/`).projectUrl).toBe(PROJECT);
    expect(createClient(`${PLATFORM}/`).platformUrl).toBe(PLATFORM);
    expect(createClient(PROJECT).platformUrl).toBe(PLATFORM);
  });
});
