import { describe, expect, it } from "vitest";
import { account } from "./helpers/accounts.ts";
import { ADMIN_KEY, call, createProject, putSchema, rest } from "./helpers/api.ts";

describe("project members", () => {
  it("owner adds, lists, changes and removes members; roles take effect at once", async () => {
    const owner = await account("m-owner");
    const res0 = await call("/v1/projects", { method: "POST", key: owner, body: { name: "team" } });
    expect(res0.status).toBe(201);
    const p = (await res0.json()) as { id: string; url: string; serviceKey: string; anonKey: string };
    await putSchema(p as never, {
      tables: { docs: { columns: { id: { type: "integer", primaryKey: true }, t: { type: "text" } } } },
    });
    const bob = await account("m-bob");
    const members = `/v1/projects/${p.id}/members`;

    // not a member yet: the project is invisible and its members-only table refused
    expect((await call(`/v1/projects/${p.id}`, { key: bob })).status).toBe(404);
    expect((await rest(p as never, "/docs", { key: bob })).status).toBe(403);

    let res = await call(members, {
      method: "POST",
      key: owner,
      body: { email: "m-bob@example.test", role: "reader" },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ accountId: "m-bob", email: "m-bob@example.test", role: "reader" });
    expect((await rest(p as never, "/docs", { key: bob })).status).toBe(200);
    expect((await rest(p as never, "/docs", { method: "POST", key: bob, body: { id: 1 } })).status).toBe(403);

    res = await call(members, { method: "POST", key: owner, body: { accountId: "m-bob", role: "writer" } });
    expect(res.status).toBe(201);
    expect((await rest(p as never, "/docs", { method: "POST", key: bob, body: { id: 1 } })).status).toBe(201);

    res = await call(members, { key: bob });
    expect(
      ((await res.json()) as { accountId: string; role: string }[]).map((m) => [m.accountId, m.role]),
    ).toEqual([["m-bob", "writer"]]);
    // a writer cannot manage members
    res = await call(members, {
      method: "POST",
      key: bob,
      body: { email: "m-owner@example.test", role: "admin" },
    });
    expect(res.status).toBe(403);
    // the project lists under the member's account
    res = await call("/v1/projects", { key: bob });
    expect(((await res.json()) as { id: string }[]).map((x) => x.id)).toContain(p.id);

    res = await call(`${members}/m-bob`, { method: "DELETE", key: owner });
    expect(res.status).toBe(204);
    expect((await rest(p as never, "/docs", { key: bob })).status).toBe(403);
  });

  it("refuses bad member input", async () => {
    const owner = await account("m-owner2");
    const p = (await (
      await call("/v1/projects", { method: "POST", key: owner, body: { name: "x" } })
    ).json()) as {
      id: string;
    };
    const members = `/v1/projects/${p.id}/members`;
    const cases: [unknown, number][] = [
      [{ email: "nobody@example.test", role: "reader" }, 404],
      [{ email: "m-owner2@example.test", role: "reader" }, 409],
      [{ email: "not-an-email", role: "reader" }, 400],
      [{ email: "m-owner2@example.test", role: "god" }, 400],
      [{ role: "reader" }, 400],
      [{ email: "a@b.c", accountId: "x", role: "reader" }, 400],
    ];
    for (const [body, status] of cases) {
      const res = await call(members, { method: "POST", key: owner, body });
      expect(res.status, JSON.stringify(body)).toBe(status);
    }
    expect((await call(`${members}/nobody`, { method: "DELETE", key: owner })).status).toBe(404);
    // the admin key manages any project
    const other = await createProject();
    expect((await call(`/v1/projects/${other.id}/members`, { key: ADMIN_KEY })).status).toBe(200);
  });
});
