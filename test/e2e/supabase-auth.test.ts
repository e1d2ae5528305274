/**
 * Accounts through an unmodified supabase-js `createClient(projectUrl, anonKey).auth` against the
 * real `npm start` server: sign-up, password sign-in, user, refresh, update, email OTP (the code
 * read from the local mailbox), sign-out, and owner-policy rows seen only by their owner.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { beforeAll, describe, expect, inject, it } from "vitest";
import ws from "ws";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const SCHEMA = {
  tables: {
    todos: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        title: { type: "text", notNull: true },
      },
      policy: { read: "owner", write: "owner" },
    },
  },
};

function client(url: string, key: string): SupabaseClient {
  return createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: ws as never },
  });
}

function email(tag: string): string {
  return `${tag}-${crypto.randomUUID().slice(0, 8)}@example.test`;
}

async function mailboxCode(address: string): Promise<string> {
  const res = await fetch(`${server.url}/dev/mailbox?email=${encodeURIComponent(address)}`);
  expect(res.status).toBe(200);
  const [latest] = (await res.json()) as { otp: string }[];
  if (!latest) throw new Error(`no mail for ${address}`);
  return latest.otp;
}

describe("supabase-js auth against a project url", () => {
  let project: Project;
  beforeAll(async () => {
    project = await createProject(server, "auth-e2e");
    await putSchema(project, SCHEMA);
  });

  it("signs up, signs in, reads, refreshes and updates the user, then signs out", async () => {
    const sb = client(project.url, project.anonKey);
    const address = email("ada");
    const up = await sb.auth.signUp({
      email: address,
      password: "correct horse",
      options: { data: { name: "Ada" } },
    });
    expect(up.error).toBeNull();
    expect(up.data.session?.access_token).toBeTruthy();
    expect(up.data.user).toMatchObject({ email: address, user_metadata: { name: "Ada" } });
    const userId = up.data.user!.id;

    const dup = await sb.auth.signUp({ email: address, password: "correct horse" });
    expect(dup.error?.code).toBe("user_already_exists");
    const weak = await sb.auth.signUp({ email: email("weak"), password: "short" });
    expect(weak.error?.name).toBe("AuthWeakPasswordError");
    expect(weak.error?.code).toBe("weak_password");

    const wrong = await sb.auth.signInWithPassword({ email: address, password: "wrong password" });
    expect(wrong.error).toMatchObject({ status: 400, code: "invalid_credentials" });
    const signedIn = await sb.auth.signInWithPassword({ email: address, password: "correct horse" });
    expect(signedIn.error).toBeNull();
    expect(signedIn.data.user?.id).toBe(userId);

    const got = await sb.auth.getUser();
    expect(got.error).toBeNull();
    expect(got.data.user?.id).toBe(userId);

    const before = signedIn.data.session!.refresh_token;
    const refreshed = await sb.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    expect(refreshed.data.session?.refresh_token).toBeTruthy();
    expect(refreshed.data.session?.refresh_token).not.toBe(before);

    const updated = await sb.auth.updateUser({ data: { theme: "dark" } });
    expect(updated.error).toBeNull();
    expect(updated.data.user?.user_metadata).toEqual({ name: "Ada", theme: "dark" });

    const token = (await sb.auth.getSession()).data.session!.access_token;
    const out = await sb.auth.signOut();
    expect(out.error).toBeNull();
    expect((await sb.auth.getSession()).data.session).toBeNull();
    // the signed-out token is refused by the gateway too
    const res = await fetch(`${project.url}/rest/v1/todos`, {
      headers: { apikey: project.anonKey, authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(401);
  });

  it("signs in with an emailed one-time code", async () => {
    const sb = client(project.url, project.anonKey);
    const address = email("otp");
    const sent = await sb.auth.signInWithOtp({ email: address, options: { shouldCreateUser: true } });
    expect(sent.error).toBeNull();
    const code = await mailboxCode(address);
    const verified = await sb.auth.verifyOtp({ email: address, token: code, type: "email" });
    expect(verified.error).toBeNull();
    expect(verified.data.session?.access_token).toBeTruthy();
    expect(verified.data.user?.email).toBe(address);
    const again = await sb.auth.verifyOtp({ email: address, token: code, type: "email" });
    expect(again.error?.code).toBe("otp_expired");
    expect((await sb.auth.getUser()).data.user?.email).toBe(address);
  });

  it("after sign-in, an owner-policy table returns only the user's rows", async () => {
    const ada = client(project.url, project.anonKey);
    const bob = client(project.url, project.anonKey);
    expect((await ada.auth.signUp({ email: email("ada"), password: "correct horse" })).error).toBeNull();
    expect((await bob.auth.signUp({ email: email("bob"), password: "correct horse" })).error).toBeNull();
    const adaId = (await ada.auth.getUser()).data.user!.id;

    const a = await ada.from("todos").insert({ title: "ada's" }).select();
    expect(a.error).toBeNull();
    expect(a.data).toEqual([expect.objectContaining({ title: "ada's", owner_id: adaId })]);
    expect((await bob.from("todos").insert([{ title: "bob's 1" }, { title: "bob's 2" }])).error).toBeNull();

    const mine = await ada.from("todos").select("title, owner_id");
    expect(mine.error).toBeNull();
    expect(mine.data).toEqual([{ title: "ada's", owner_id: adaId }]);
    const bobs = await bob.from("todos").select("title").order("title");
    expect(bobs.data).toEqual([{ title: "bob's 1" }, { title: "bob's 2" }]);
    // the anon key alone sees nothing of an owner table
    const anon = await client(project.url, project.anonKey).from("todos").select("title");
    expect(anon.error).not.toBeNull();
  });
});

describe("supabase-js auth at the platform root", () => {
  it("signs up; the access token lists the personal project", async () => {
    const sb = client(server.url, "platform");
    const up = await sb.auth.signUp({ email: email("root"), password: "correct horse" });
    expect(up.error).toBeNull();
    const res = await fetch(`${server.url}/v1/projects`, {
      headers: { authorization: `Bearer ${up.data.session!.access_token}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([expect.objectContaining({ name: "personal", personal: true })]);
  });
});
