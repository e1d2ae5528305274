import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { accessToken, account, TEST_JWT_SECRET } from "./helpers/accounts.ts";
import { projectWithSchema, rest, type TestProject } from "./helpers/api.ts";

const SECRET = TEST_JWT_SECRET;
const catalog = (env as unknown as { CATALOG: D1Database }).CATALOG;

async function member(projectId: string, accountId: string, role: string): Promise<void> {
  await account(accountId);
  await catalog
    .prepare("INSERT INTO project_members (project_id, account_id, role, created_at) VALUES (?, ?, ?, ?)")
    .bind(projectId, accountId, role, new Date().toISOString())
    .run();
}

const SCHEMA = {
  tables: {
    notes: {
      columns: { id: { type: "integer", primaryKey: true }, text: { type: "text" } },
      policy: { read: "owner", write: "owner" },
    },
    shared: {
      columns: { id: { type: "integer", primaryKey: true }, text: { type: "text" } },
    },
    board: {
      columns: { id: { type: "integer", primaryKey: true }, text: { type: "text" } },
      policy: { read: "public", write: "members" },
    },
    vault: {
      columns: { id: { type: "integer", primaryKey: true } },
      policy: { read: "service", write: "service" },
    },
  },
};

describe("table policies for account tokens", () => {
  let p: TestProject;
  let alice: string;
  let bob: string;
  let reader: string;
  let writer: string;
  beforeAll(async () => {
    p = await projectWithSchema(SCHEMA);
    await account("alice");
    await account("bob");
    await member(p.id, "reader", "reader");
    await member(p.id, "writer", "writer");
    alice = await accessToken("alice");
    bob = await accessToken("bob");
    reader = await accessToken("reader");
    writer = await accessToken("writer");
  });

  it("owner: each caller reads and writes only its own rows", async () => {
    let res = await rest(p, "/notes", { method: "POST", key: alice, body: { id: 1, text: "alice's" } });
    expect(res.status).toBe(201);
    res = await rest(p, "/notes", { method: "POST", key: bob, body: { id: 2, text: "bob's" } });
    expect(res.status).toBe(201);
    res = await rest(p, "/notes?select=id,text,owner_id", { key: alice });
    expect(await res.json()).toEqual([{ id: 1, text: "alice's", owner_id: "alice" }]);
    res = await rest(p, "/notes?id=eq.1", {
      method: "PATCH",
      key: bob,
      body: { text: "hacked" },
      headers: { prefer: "return=representation" },
    });
    expect(await res.json()).toEqual([]);
    res = await rest(p, "/notes?id=eq.1", { method: "DELETE", key: bob });
    expect(res.status).toBe(204);
    res = await rest(p, "/notes", {
      method: "POST",
      key: bob,
      body: { id: 3, text: "as alice", owner_id: "alice" },
    });
    expect(res.status).toBe(403);
    res = await rest(p, "/notes?select=id&order=id");
    expect(await res.json()).toEqual([{ id: 1 }, { id: 2 }]);
    // the upsert path cannot take over another owner's row either
    res = await rest(p, "/notes", {
      method: "POST",
      key: bob,
      headers: { prefer: "resolution=merge-duplicates" },
      body: { id: 1, text: "taken" },
    });
    res = await rest(p, "/notes?id=eq.1&select=text");
    expect(await res.json()).toEqual([{ text: "alice's" }]);
  });

  it("members: owner and members only, readers cannot write", async () => {
    let res = await rest(p, "/shared", { key: alice });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "42501" });
    res = await rest(p, "/shared", { method: "POST", key: writer, body: { id: 1, text: "w" } });
    expect(res.status).toBe(201);
    res = await rest(p, "/shared?select=id", { key: reader });
    expect(await res.json()).toEqual([{ id: 1 }]);
    res = await rest(p, "/shared", { method: "POST", key: reader, body: { id: 2 } });
    expect(res.status).toBe(403);
    res = await rest(p, "/shared", { key: p.anonKey });
    expect(res.status).toBe(401);
  });

  it("public read with member writes, and service-only tables", async () => {
    let res = await rest(p, "/board", { method: "POST", key: writer, body: { id: 1, text: "hi" } });
    expect(res.status).toBe(201);
    res = await rest(p, "/board?select=text", { key: p.anonKey });
    expect(await res.json()).toEqual([{ text: "hi" }]);
    res = await rest(p, "/board", { method: "POST", key: p.anonKey, body: { id: 2 } });
    expect(res.status).toBe(401);
    res = await rest(p, "/vault", { key: writer });
    expect(res.status).toBe(403);
    res = await rest(p, "/vault", { key: p.serviceKey });
    expect(res.status).toBe(200);
  });

  it("refuses an expired or foreign-signed account token", async () => {
    const expired = await new SignJWT({ role: "authenticated" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("hearth")
      .setSubject("alice")
      .setIssuedAt(1000)
      .setExpirationTime(2000)
      .sign(SECRET);
    let res = await rest(p, "/board", { key: expired });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "PGRST301", message: "JWT expired" });
    const forged = await new SignJWT({ role: "authenticated" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("hearth")
      .setSubject("alice")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-another-secret-another-secret"));
    res = await rest(p, "/board", { key: forged });
    expect(res.status).toBe(401);
  });
});
