import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readWal } from "../durable-objects/wal.ts";
import { BLOG_SCHEMA, call, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";

async function wal(p: TestProject, after = 0) {
  return runInDurableObject(stubOf(p), (_i, state) => readWal(state.storage.sql, after, 1000));
}

describe("WAL", () => {
  it("records every insert, update and delete with LSN, table, op, key and values", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const a = "11111111-1111-4111-8111-111111111111";
    await rest(p, "/authors", { method: "POST", body: { id: a, name: "Ada" } });
    await rest(p, "/posts", {
      method: "POST",
      body: [
        { title: "one", author_id: a, meta: { x: 1 } },
        { title: "two", author_id: null, meta: null },
      ],
    });
    await rest(p, "/posts?id=eq.1", { method: "PATCH", body: { published: true } });
    await rest(p, "/posts?id=eq.2", { method: "DELETE" });
    const entries = await wal(p);
    expect(entries.map((e) => [e.table, e.op, e.pk])).toEqual([
      ["authors", "INSERT", [a]],
      ["posts", "INSERT", [1]],
      ["posts", "INSERT", [2]],
      ["posts", "UPDATE", [1]],
      ["posts", "DELETE", [2]],
    ]);
    const lsns = entries.map((e) => e.lsn);
    expect([...lsns].sort((x, y) => x - y)).toEqual(lsns);
    expect(new Set(lsns).size).toBe(lsns.length);
    expect(entries[1]!.new).toMatchObject({
      id: 1,
      title: "one",
      author_id: a,
      published: false,
      meta: { x: 1 },
    });
    expect(entries[3]!.old).toMatchObject({ published: false });
    expect(entries[3]!.new).toMatchObject({ published: true });
    expect(entries[4]!.new).toBeNull();
    expect(entries[4]!.old).toMatchObject({ id: 2, title: "two" });
    // rows of one request share a transaction id; different requests do not
    expect(entries[1]!.tx).toBe(entries[2]!.tx);
    expect(entries[3]!.tx).not.toBe(entries[2]!.tx);
  });

  it("records upserts as INSERT or UPDATE and cascaded deletes too", async () => {
    const p = await projectWithSchema({
      tables: {
        lists: { columns: { id: { type: "integer", primaryKey: true }, name: { type: "text" } } },
        items: {
          columns: {
            id: { type: "integer", primaryKey: true },
            list_id: { type: "integer", references: "lists.id", onDelete: "cascade" },
          },
        },
      },
    });
    await rest(p, "/lists", { method: "POST", body: [{ id: 1, name: "a" }] });
    await rest(p, "/items", {
      method: "POST",
      body: [
        { id: 10, list_id: 1 },
        { id: 11, list_id: 1 },
      ],
    });
    await rest(p, "/lists", {
      method: "POST",
      headers: { prefer: "resolution=merge-duplicates" },
      body: [
        { id: 1, name: "b" },
        { id: 2, name: "c" },
      ],
    });
    const before = (await wal(p)).length;
    await rest(p, "/lists?id=eq.1", { method: "DELETE" });
    const entries = await wal(p);
    expect(entries.slice(3, 5).map((e) => [e.op, e.pk])).toEqual([
      ["UPDATE", [1]],
      ["INSERT", [2]],
    ]);
    const deletes = entries.slice(before).map((e) => [e.table, e.op, e.pk]);
    expect(deletes).toEqual(
      expect.arrayContaining([
        ["lists", "DELETE", [1]],
        ["items", "DELETE", [10]],
        ["items", "DELETE", [11]],
      ]),
    );
    expect(deletes).toHaveLength(3);
  });

  it("writes nothing, rows or WAL, when a request fails half-way", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    const before = (await wal(p)).length;
    // the second row violates notNull: the whole batch is refused
    const res = await rest(p, "/posts", { method: "POST", body: [{ title: "ok" }, { title: null }] });
    expect(res.status).toBe(400);
    expect((await wal(p)).length).toBe(before);
    expect(await (await rest(p, "/posts")).json()).toEqual([]);
    // a singular write that affects 2 rows is rolled back
    await rest(p, "/posts", { method: "POST", body: [{ title: "a" }, { title: "b" }] });
    const mid = (await wal(p)).length;
    const single = await rest(p, "/posts?id=gt.0", {
      method: "PATCH",
      headers: { prefer: "return=representation", accept: "application/vnd.pgrst.object+json" },
      body: { title: "z" },
    });
    expect(single.status).toBe(406);
    expect((await wal(p)).length).toBe(mid);
    expect(
      ((await (await rest(p, "/posts?select=title&order=id")).json()) as { title: string }[]).map(
        (r) => r.title,
      ),
    ).toEqual(["a", "b"]);
  });
});

describe("durability", () => {
  it("keeps schema, rows, keys and WAL across DO eviction", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    await rest(p, "/posts", { method: "POST", body: [{ title: "kept" }] });
    const walBefore = await wal(p);
    await abortAllDurableObjects(); // drops every DO instance's memory, keeps storage
    const res = await rest(p, "/posts?select=title", { key: p.anonKey });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ title: "kept" }]);
    expect(await wal(p)).toEqual(walBefore);
    const schema = await call(`${p.url}/schema`, { key: p.serviceKey });
    expect(((await schema.json()) as { tables: Record<string, unknown> }).tables).toHaveProperty("posts");
    // LSNs keep increasing after a restart
    await rest(p, "/posts", { method: "POST", body: [{ title: "after" }] });
    const after = await wal(p);
    expect(after.at(-1)!.lsn).toBeGreaterThan(walBefore.at(-1)!.lsn);
  });

  it("forgets a deleted project: keys refused, data gone", async () => {
    const p = await projectWithSchema(BLOG_SCHEMA);
    await rest(p, "/posts", { method: "POST", body: [{ title: "x" }] });
    const del = await call(`/v1/projects/${p.id}`, { method: "DELETE", key: "test-admin-key" });
    expect(del.status).toBe(204);
    const res = await rest(p, "/posts");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "HEARTH_PROJECT_NOT_FOUND" });
    const get = await call(`/v1/projects/${p.id}`, { key: "test-admin-key" });
    expect(get.status).toBe(404);
  });
});
