/**
 * The Hearth SDK's client against a real `npm start` (global-setup.ts): typed queries with the
 * service key (the `Database` type is the one `hearth types` generates for
 * sdk/test/fixtures/schema.json, which this file PUTs), the server's error codes surfacing as
 * `HearthError`, an account's sign-up / sign-in / refresh / sign-out through `client.auth`, and
 * an app's whole OAuth 2.1 + PKCE flow ending in queries on the user's personal project.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, expectTypeOf, inject, it } from "vitest";
import { type AuthEvent, createClient, HearthError, memoryStorage } from "../../sdk/src/index.ts";
import type { Database, Json } from "../../sdk/test/fixtures/database.ts";
import { type Api, authorize, REDIRECT_URI, registerApp, signup, tokenRequest } from "../helpers/oauth.ts";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };
const api: Api = { origin: server.url, fetch: (url, init) => fetch(url, init) };
const SCHEMA = JSON.parse(
  readFileSync(new URL("../../sdk/test/fixtures/schema.json", import.meta.url), "utf8"),
) as {
  tables: Record<string, unknown>;
};
const TODOS = "com.example.todos";
const PASSWORD = "correct horse battery";

let ipCounter = 0;
/** A client IP of its own per account, so sign-up rate limits of other tests never spill over. */
function ipHeaders(): Record<string, string> {
  ipCounter++;
  return { "cf-connecting-ip": `10.77.${Math.floor(Math.random() * 250)}.${ipCounter}` };
}

function email(tag: string): string {
  return `sdk-${tag}-${crypto.randomUUID().slice(0, 8)}@example.test`;
}

/** The error of a result, checked to be a HearthError. */
function hearthError(error: unknown): HearthError {
  if (!(error instanceof HearthError))
    throw new Error(`expected a HearthError, got ${JSON.stringify(error)}`);
  return error;
}

let project: Project;

beforeAll(async () => {
  project = await createProject(server, "sdk-client");
  await putSchema(project, SCHEMA);
});

describe("queries with the service key", () => {
  it("inserts, selects with filters and embeds, updates and deletes, with typed rows", async () => {
    const db = createClient<Database>(project.url, { key: project.serviceKey });
    const authors = await db
      .from("authors")
      .insert([{ name: "Ada" }, { name: "Grace" }])
      .select("id,name");
    expect(authors.error).toBeNull();
    expect(authors.status).toBe(201);
    const [ada, grace] = authors.data!;
    expect(ada!.id).toMatch(/^[0-9a-f-]{36}$/);

    const posts = await db
      .from("posts")
      .insert([
        { title: "A", author_id: ada!.id, score: 4.5, published: true, meta: { tags: ["x"] } },
        { title: "B", author_id: grace!.id, score: 7, published: true, cover: "\\xdeadbeef" },
        { title: "C", author_id: null, score: 1, published: false },
      ])
      .select("id,title,views,meta,cover,created_at");
    expect(posts.error).toBeNull();
    expect(posts.data).toEqual([
      { id: 1, title: "A", views: 0, meta: { tags: ["x"] }, cover: null, created_at: expect.any(String) },
      { id: 2, title: "B", views: 0, meta: null, cover: "\\xdeadbeef", created_at: expect.any(String) },
      { id: 3, title: "C", views: 0, meta: null, cover: null, created_at: expect.any(String) },
    ]);

    const published = await db
      .from("posts")
      .select("id,title,score,author:authors(name)")
      .eq("published", true)
      .gt("score", 1)
      .order("score", { ascending: false });
    expect(published.error).toBeNull();
    expect(published.data).toEqual([
      { id: 2, title: "B", score: 7, author: { name: "Grace" } },
      { id: 1, title: "A", score: 4.5, author: { name: "Ada" } },
    ]);
    type Published = NonNullable<typeof published.data>[number];
    expectTypeOf<Published["title"]>().toEqualTypeOf<string>();
    expectTypeOf<Published["score"]>().toEqualTypeOf<number | null>();
    expectTypeOf<Published["author"]>().toEqualTypeOf<{ name: string } | null>();

    const counted = await db
      .from("posts")
      .select("title", { count: "exact" })
      .in("title", ["A", "C", "Z"])
      .order("id");
    expect({ data: counted.data, count: counted.count }).toEqual({
      data: [{ title: "A" }, { title: "C" }],
      count: 2,
    });

    const updated = await db
      .from("posts")
      .update({ views: 10, meta: [1, 2] })
      .eq("title", "B")
      .select("title,views,meta");
    expect(updated.data).toEqual([{ title: "B", views: 10, meta: [1, 2] }]);
    expectTypeOf<NonNullable<typeof updated.data>[number]["meta"]>().toEqualTypeOf<Json | null>();

    const deleted = await db.from("posts").delete().or("title.eq.C,score.lt.0").select("id,title");
    expect(deleted.data).toEqual([{ id: 3, title: "C" }]);

    const one = await db.from("posts").select("title").eq("id", 1).single();
    expect(one.data).toEqual({ title: "A" });
    const remaining = await db.from("posts").select("*", { count: "exact", head: true });
    expect(remaining.count).toBe(2);
  });

  it("surfaces the server's error codes as HearthError: 23505, PGRST*, HEARTH_*, 42501", async () => {
    const db = createClient<Database>(project.url, { key: project.serviceKey });
    const first = await db.from("settings").insert({ key: "theme", value: "dark" });
    expect(first.error).toBeNull();
    const dup = await db.from("settings").insert({ key: "theme", value: "light" });
    const err = hearthError(dup.error);
    expect({ code: err.code, status: err.status, details: err.details }).toEqual({
      code: "23505",
      status: 409,
      details: "Key (key) already exists.",
    });
    expect(err.requestId).toMatch(/.+/);
    await expect(db.from("settings").insert({ key: "theme" }).throwOnError()).rejects.toMatchObject({
      name: "HearthError",
      code: "23505",
    });

    const untyped = createClient(project.url, { key: project.serviceKey });
    expect(hearthError((await untyped.from("nope").select()).error)).toMatchObject({
      code: "PGRST205",
      status: 404,
    });
    expect(hearthError((await untyped.from("posts").select().filter("id", "zz", "1")).error)).toMatchObject({
      code: "PGRST100",
      status: 400,
    });
    expect(hearthError((await db.from("posts").select().eq("title", "nobody").single()).error)).toMatchObject(
      {
        code: "PGRST116",
        status: 406,
      },
    );
    expect(hearthError((await db.from("posts").select().eq("body", "secret")).error)).toMatchObject({
      code: "HEARTH_UNSUPPORTED",
      status: 400,
    });

    const anon = createClient<Database>(project.url, { key: project.anonKey });
    expect(hearthError((await anon.from("settings").select()).error)).toMatchObject({
      code: "42501",
      status: 401,
    });
    const readable = await anon.from("authors").select("name").order("name");
    expect(readable.data).toEqual([{ name: "Ada" }, { name: "Grace" }]);
  });

  it("a server that does not answer is HEARTH_NETWORK with status 0", async () => {
    const nowhere = createClient("http://127.0.0.1:9/p/aaaaaaaaaaaaaaaaaaaa", {
      key: "k",
      retry: { attempts: 1, baseDelayMs: 1 },
    });
    const { error, status } = await nowhere.from("t").select();
    expect(status).toBe(0);
    expect(hearthError(error)).toMatchObject({ code: "HEARTH_NETWORK", status: 0 });
  });
});

describe("an account through client.auth", () => {
  it("signs up, writes its own rows, refreshes, signs out, and signs in again", async () => {
    const address = email("account");
    const hearth = createClient<Database>(project.url, {
      key: project.anonKey,
      headers: ipHeaders(),
      auth: { storage: "memory" },
    });
    const events: AuthEvent[] = [];
    hearth.auth.onAuthStateChange((event) => events.push(event));

    const session = await hearth.auth.signUp({ email: address, password: PASSWORD, data: { name: "Ada" } });
    expect(session.user).toMatchObject({ email: address, user_metadata: { name: "Ada" } });
    const mine = await hearth.from(TODOS).insert({ title: "mine" }).select("title,done,owner_id");
    expect(mine.data).toEqual([{ title: "mine", done: false, owner_id: session.user.id }]);
    expect((await hearth.auth.getUser()).email).toBe(address);

    // Refresh tokens rotate (the access token may be byte-identical within the same second).
    const refreshed = await hearth.auth.refreshSession();
    expect(refreshed.refresh_token).not.toBe(session.refresh_token);
    expect((await hearth.from(TODOS).select("title")).data).toEqual([{ title: "mine" }]);

    await hearth.auth.signOut();
    expect(await hearth.auth.getSession()).toBeNull();
    const asAnon = await hearth.from(TODOS).select();
    expect(hearthError(asAnon.error)).toMatchObject({ code: "42501", status: 401 });

    await hearth.auth.signInWithPassword({ email: address, password: PASSWORD });
    expect((await hearth.from(TODOS).select("title")).data).toEqual([{ title: "mine" }]);
    expect(events).toEqual(["INITIAL_SESSION", "SIGNED_IN", "TOKEN_REFRESHED", "SIGNED_OUT", "SIGNED_IN"]);

    const other = createClient(project.url, { key: project.anonKey, auth: { storage: memoryStorage() } });
    const err = await other.auth
      .signInWithPassword({ email: address, password: "wrong password" })
      .catch((e: unknown) => hearthError(e));
    expect(err).toMatchObject({ code: "invalid_credentials", status: 400 });
    const again = await createClient(project.url, { key: project.anonKey, headers: ipHeaders() })
      .auth.signUp({ email: address, password: PASSWORD })
      .catch((e: unknown) => hearthError(e));
    expect(again).toMatchObject({ code: "user_already_exists", status: 422 });
  });

  it("a refresh token refused by the server (reused) ends the session on the client", async () => {
    const address = email("reuse");
    const storage = memoryStorage();
    const tabA = createClient(project.url, {
      key: project.anonKey,
      headers: ipHeaders(),
      auth: { storage, storageKey: "a" },
    });
    const first = await tabA.auth.signUp({ email: address, password: PASSWORD });
    await tabA.auth.refreshSession(); // rotates first.refresh_token
    // A second client holding the rotated-out token (a copied session) presents it again.
    await storage.setItem("b", JSON.stringify(first));
    const tabB = createClient(project.url, { key: project.anonKey, auth: { storage, storageKey: "b" } });
    const err = await tabB.auth.refreshSession().catch((e: unknown) => hearthError(e));
    expect(err).toMatchObject({ code: "refresh_token_already_used", status: 400 });
    expect(await tabB.auth.getSession()).toBeNull();
  });
});

describe("an app through OAuth 2.1 + PKCE", () => {
  it("signs in with signInWithApp + handleRedirect, queries the user's project, refreshes and revokes", async () => {
    const dev = await signup(api, "sdk-dev");
    const { clientId } = await registerApp(api, dev.accessToken, "SDK Todos", {
      [TODOS]: SCHEMA.tables[TODOS],
    });

    // The user, with an account session of their own (kept in storage shared with a second client).
    const userStorage = memoryStorage();
    const userRoot = createClient(server.url, {
      headers: ipHeaders(),
      auth: { storage: userStorage, storageKey: "user" },
    });
    const user = await userRoot.auth.signUp({ email: email("user"), password: PASSWORD });

    const app = createClient<Database>(server.url, { auth: { storage: memoryStorage() } });
    expect(app.projectUrl).toBeNull();
    const { url } = await app.auth.signInWithApp({
      clientId,
      redirectUri: REDIRECT_URI,
      scopes: [`db:${TODOS}:write`],
      skipBrowserRedirect: true,
    });
    const q = new URL(url).searchParams;
    expect(url.startsWith(`${server.url}/oauth/authorize?`)).toBe(true);

    // The user approves in their browser: the JSON form of the consent, with their token.
    const approved = await authorize(api, user.access_token, {
      clientId,
      scope: q.get("scope")!,
      challenge: q.get("code_challenge")!,
      state: q.get("state")!,
    });
    expect(approved.status).toBe(302);
    const location = approved.headers.get("location")!;

    // A redirect with another state is refused before anything is exchanged...
    const forged = new URL(location);
    forged.searchParams.set("state", "forged");
    expect(
      await app.auth.handleRedirect(forged.toString()).catch((e: unknown) => hearthError(e)),
    ).toMatchObject({
      code: "HEARTH_OAUTH_STATE",
    });
    // ...so the real one still exchanges its (unused) code.
    const session = await app.auth.handleRedirect(location);
    if (session.kind !== "app") throw new Error("expected an app session");
    expect(session.scope).toBe(`db:${TODOS}:write`);
    expect(session.user.id).toBe(user.user.id);
    expect(app.projectUrl).toBe(session.project_url);
    const personal = (await (
      await fetch(`${server.url}/v1/projects`, { headers: { authorization: `Bearer ${user.access_token}` } })
    ).json()) as { id: string; url: string; personal: boolean }[];
    expect(session.project_url).toBe(personal.find((p) => p.personal)!.url);

    const inserted = await app.from(TODOS).insert({ title: "from the app" }).select("title,done,owner_id");
    expect(inserted.data).toEqual([{ title: "from the app", done: false, owner_id: user.user.id }]);
    // The token reaches the user's personal project only, which has no posts table.
    expect(hearthError((await app.from("posts").select()).error)).toMatchObject({
      code: "PGRST205",
      status: 404,
    });

    // The user's own client on the personal project sees the app's row.
    const userOnProject = createClient<Database>(session.project_url, {
      auth: { storage: userStorage, storageKey: "user" },
    });
    expect((await userOnProject.from(TODOS).select("title")).data).toEqual([{ title: "from the app" }]);

    const refreshed = await app.auth.refreshSession();
    expect(refreshed.refresh_token).not.toBe(session.refresh_token);
    expect((await app.from(TODOS).select("title")).data).toEqual([{ title: "from the app" }]);

    await app.auth.signOut();
    expect(app.projectUrl).toBeNull();
    expect(hearthError((await app.from(TODOS).select()).error).code).toBe("HEARTH_NO_PROJECT");
    const revoked = await tokenRequest(api, {
      grant_type: "refresh_token",
      refresh_token: refreshed.refresh_token,
      client_id: clientId,
    });
    expect({ status: revoked.status, body: await revoked.json() }).toMatchObject({
      status: 400,
      body: { error: "invalid_grant" },
    });
  });

  it("a denied consent comes back as HearthError access_denied", async () => {
    const dev = await signup(api, "sdk-dev-deny");
    const { clientId } = await registerApp(api, dev.accessToken, "Denied", { [TODOS]: SCHEMA.tables[TODOS] });
    const user = await signup(api, "sdk-user-deny");
    const app = createClient(server.url, { auth: { storage: "memory" } });
    const { url } = await app.auth.signInWithApp({
      clientId,
      redirectUri: REDIRECT_URI,
      scopes: `db:${TODOS}:read`,
    });
    const q = new URL(url).searchParams;
    const denied = await authorize(api, user.accessToken, {
      clientId,
      scope: q.get("scope")!,
      challenge: q.get("code_challenge")!,
      state: q.get("state")!,
      decision: "deny",
    });
    const err = await app.auth
      .handleRedirect(denied.headers.get("location")!)
      .catch((e: unknown) => hearthError(e));
    expect(err).toMatchObject({ code: "access_denied" });
    expect(await app.auth.getSession()).toBeNull();
  });
});
