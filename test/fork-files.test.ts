/**
 * Forks carry the parent's files (durable-objects/fork-files.ts): buckets with their settings,
 * object rows and bytes, copied to the fork's own prefix, so that changing or deleting
 * either project never reaches the other's files. A copy, a flush or the catalog batch that
 * fails leaves no fork behind: no catalog row, no key under the fork's prefix.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { signKey } from "../workers/auth/keys.ts";
import { readConfig } from "../workers/config.ts";
import type { Env } from "../workers/env.ts";
import worker from "../workers/index.ts";
import {
  ADMIN_KEY,
  adminCall,
  call,
  ORIGIN,
  projectWithSchema,
  rest,
  type TestProject,
} from "./helpers/api.ts";
import { faultyBucket, stubOf } from "./helpers/faults.ts";
import { binary, blobKeys, files, ok, projectPrefixes, put } from "./helpers/files.ts";

const testEnv = env as unknown as Env;
const SCHEMA = { tables: { notes: { columns: { id: { type: "text", primaryKey: true } } } } };

async function text(p: TestProject, path: string): Promise<string | number> {
  const res = await files(p, `/object/${path}`);
  if (res.status !== 200) {
    await res.body?.cancel();
    return res.status;
  }
  return res.text();
}

async function names(p: TestProject, bucket: string, prefix = ""): Promise<string[]> {
  const rows = (await ok(
    files(p, `/object/list/${bucket}`, { method: "POST", body: { prefix, limit: 1000 } }),
  )) as { name: string; metadata: { size: number; mimetype: string } | null }[];
  return rows.map((r) => (r.metadata ? `${r.name} ${r.metadata.size} ${r.metadata.mimetype}` : `${r.name}/`));
}

async function projectIds(): Promise<string[]> {
  const rows = await testEnv.CATALOG.prepare("SELECT id FROM projects ORDER BY id").all<{ id: string }>();
  return rows.results.map((r) => r.id);
}

async function allKeys(): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await testEnv.BUCKET.list({ prefix: "projects/", ...(cursor ? { cursor } : {}) });
    n += page.objects.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return n;
}

function fork(p: TestProject): Promise<Response> {
  return call(`/v1/projects/${p.id}/fork`, { method: "POST", key: ADMIN_KEY, body: { name: "fork" } });
}

async function parentWithFiles(): Promise<TestProject> {
  const p = await projectWithSchema(SCHEMA);
  expect((await rest(p, "/notes", { method: "POST", body: { id: "n1" } })).status).toBe(201);
  await ok(
    files(p, "/bucket", {
      method: "POST",
      body: { id: "pics", public: true, file_size_limit: 500_000, allowed_mime_types: ["image/*", "text/*"] },
    }),
  );
  await ok(files(p, "/bucket", { method: "POST", body: { id: "docs" } }));
  await ok(files(p, "/quota", { method: "PUT", body: { quotaBytes: 5_000_000 } }));
  await put(p, "pics/a.png", binary(200_000), { "content-type": "image/png" });
  await put(p, "docs/keep.txt", "kept");
  await put(p, "docs/replace.txt", "old");
  await put(p, "docs/sub/remove.txt", "to remove");
  return p;
}

// Each test makes projects with files and reads them back: seconds under load, more than the default 5.
describe("a fork's files", { timeout: 30_000 }, () => {
  it("are the parent's, copied: each side's changes and deletion stay its own", async () => {
    const parent = await parentWithFiles();
    const res = await fork(parent);
    expect(res.status, await res.clone().text()).toBe(201);
    const child = (await res.json()) as TestProject;

    // Same buckets, settings, listing, bytes and quota.
    const bucketOf = async (p: TestProject, id: string) => {
      const {
        created_at: _c,
        updated_at: _u,
        ...rest
      } = (await ok(files(p, `/bucket/${id}`))) as Record<string, unknown>;
      return rest;
    };
    for (const id of ["pics", "docs"]) expect(await bucketOf(child, id)).toEqual(await bucketOf(parent, id));
    expect(await names(child, "docs")).toEqual(["keep.txt 4 text/plain", "replace.txt 3 text/plain", "sub/"]);
    expect(await names(child, "pics")).toEqual(await names(parent, "pics"));
    const png = await files(child, "/object/pics/a.png");
    expect(new Uint8Array(await png.arrayBuffer())).toEqual(binary(200_000));
    expect((await call(`${child.url}/storage/v1/object/public/pics/a.png`)).status).toBe(200);
    const usage = (p: TestProject) => ok(files(p, "/usage")) as Promise<Record<string, number>>;
    expect(await usage(child)).toMatchObject({ objects: 4, quotaBytes: 5_000_000 });
    expect((await usage(child)).storedBytes).toBe((await usage(parent)).storedBytes);
    // The tables came along too, and the files' rows are a starting state, not changes.
    expect(await (await rest(child, "/notes?select=id")).json()).toEqual([{ id: "n1" }]);
    const wal = await runInDurableObject(stubOf(child), (_i: ProjectDO, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM _hearth_wal WHERE tbl LIKE '_storage.%'").one(),
    );
    expect(wal.n).toBe(0);

    // Copied under the fork's own prefix.
    const childKeys = await blobKeys(child.id);
    expect(childKeys).toHaveLength(4);
    expect(childKeys.every((k) => k.startsWith(`projects/${child.id}/blobs/`))).toBe(true);

    // The parent replaces and removes; the fork keeps its files.
    await put(parent, "docs/replace.txt", "new in parent", { "x-upsert": "true" });
    await ok(files(parent, "/object/docs", { method: "DELETE", body: { prefixes: ["sub/remove.txt"] } }));
    expect(await text(child, "docs/replace.txt")).toBe("old");
    expect(await text(child, "docs/sub/remove.txt")).toBe("to remove");
    // The fork changes its own; the parent does not see it.
    await put(child, "docs/replace.txt", "new in fork", { "x-upsert": "true" });
    await ok(files(child, "/object/docs", { method: "DELETE", body: { prefixes: ["keep.txt"] } }));
    expect(await text(parent, "docs/replace.txt")).toBe("new in parent");
    expect(await text(parent, "docs/keep.txt")).toBe("kept");

    // Deleting the parent leaves the fork's files whole.
    expect((await call(`/v1/projects/${parent.id}`, { method: "DELETE", key: ADMIN_KEY })).status).toBe(204);
    expect(await blobKeys(parent.id)).toEqual([]);
    expect(await text(child, "docs/replace.txt")).toBe("new in fork");
    expect(await text(child, "docs/sub/remove.txt")).toBe("to remove");
    const again = await files(child, "/object/pics/a.png");
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(binary(200_000));
  });

  it("a file replaced while the fork copies is copied as replaced; one removed is left out", async () => {
    const parent = await parentWithFiles();
    // The parent's R2, as seen by its object: the first read of two keys finds them gone,
    // because (as a concurrent upsert and remove would) the files changed just then.
    await runInDurableObject(stubOf(parent), (instance: ProjectDO, state) => {
      const sql = state.storage.sql;
      const keyOf = (name: string) =>
        String(
          sql.exec("SELECT key FROM _hearth_storage_objects WHERE bucket = 'docs' AND name = ?", name).one()
            .key,
        );
      const replaced = keyOf("replace.txt");
      const removed = keyOf("sub/remove.txt");
      const real = testEnv.BUCKET;
      const racing = Object.create(real) as R2Bucket;
      racing.put = (...args: Parameters<R2Bucket["put"]>) => real.put(...args);
      racing.delete = (keys: string | string[]) => real.delete(keys);
      racing.get = async (...args: Parameters<R2Bucket["get"]>) => {
        const key = args[0];
        if (key === replaced) {
          const next = `${replaced}-v2`;
          await real.put(next, "replaced while forking");
          sql.exec(
            "UPDATE _hearth_storage_objects SET key = ?, size = 22 WHERE bucket = 'docs' AND name = 'replace.txt'",
            next,
          );
          await real.delete(replaced);
          return null;
        }
        if (key === removed) {
          sql.exec("DELETE FROM _hearth_storage_objects WHERE bucket = 'docs' AND name = 'sub/remove.txt'");
          await real.delete(removed);
          return null;
        }
        return real.get(...args);
      };
      instance.bucketOverride = racing;
    });
    const res = await fork(parent);
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      instance.bucketOverride = null;
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const child = (await res.json()) as TestProject;
    expect(await text(child, "docs/replace.txt")).toBe("replaced while forking");
    expect(await text(child, "docs/sub/remove.txt")).toBe(404);
    expect(await names(child, "docs")).toEqual(["keep.txt 4 text/plain", "replace.txt 22 text/plain"]);
    expect(await blobKeys(child.id)).toHaveLength(3);
  });

  it("a copy that fails half-way: 503, and no fork, no copied bytes left", async () => {
    const parent = await parentWithFiles();
    // Flushed now, so that the fork's own flush has nothing to put and only file copies fail.
    expect((await adminCall(parent, "flush", "POST")).status).toBe(200);
    const before = await projectIds();
    const prefixesBefore = await projectPrefixes();
    const keysBefore = await allKeys();
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      let puts = 0;
      const real = testEnv.BUCKET;
      const failing = Object.create(real) as R2Bucket;
      failing.get = (...args: Parameters<R2Bucket["get"]>) => real.get(...args);
      failing.put = (...args: Parameters<R2Bucket["put"]>) =>
        ++puts > 2 ? Promise.reject(new Error("injected put failure")) : real.put(...args);
      failing.delete = (keys: string | string[]) => real.delete(keys);
      instance.bucketOverride = failing;
    });
    const res = await fork(parent);
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      instance.bucketOverride = null;
    });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "HEARTH_STORAGE_UNAVAILABLE" });
    expect(await projectIds()).toEqual(before);
    expect(await projectPrefixes()).toEqual(prefixesBefore);
    expect(await allKeys()).toBe(keysBefore);
    // The parent is unharmed and writable, and forks once R2 is back.
    expect(await text(parent, "docs/keep.txt")).toBe("kept");
    expect((await rest(parent, "/notes", { method: "POST", body: { id: "n2" } })).status).toBe(201);
    const again = await fork(parent);
    expect(again.status).toBe(201);
    const child = (await again.json()) as TestProject;
    expect(await text(child, "docs/keep.txt")).toBe("kept");
    expect(await (await rest(child, "/notes?select=id&order=id")).json()).toEqual([
      { id: "n1" },
      { id: "n2" },
    ]);
  });

  it("R2 failing during the parent's flush: 503 HEARTH_STORAGE_UNAVAILABLE, no fork", async () => {
    const parent = await parentWithFiles();
    const before = await projectIds();
    const prefixesBefore = await projectPrefixes();
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      instance.bucketOverride = faultyBucket(testEnv.BUCKET, { put: true });
    });
    const res = await fork(parent);
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      instance.bucketOverride = null;
    });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "HEARTH_STORAGE_UNAVAILABLE" });
    expect(await projectIds()).toEqual(before);
    // The flush wrote segments under the parent's prefix only (unreferenced until a flush succeeds).
    expect(await projectPrefixes()).toEqual(prefixesBefore);
    expect((await fork(parent)).status).toBe(201);
  });

  it("the catalog failing at the fork's batch: the adopted object is emptied, its prefix deleted, its id unknown", async () => {
    const parent = await parentWithFiles();
    const before = await projectIds();
    // The fork's id, from the keys its files are copied to.
    let forkId = "";
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      const real = testEnv.BUCKET;
      const watching = Object.create(real) as R2Bucket;
      watching.get = (...args: Parameters<R2Bucket["get"]>) => real.get(...args);
      watching.delete = (keys: string | string[]) => real.delete(keys);
      watching.put = (...args: Parameters<R2Bucket["put"]>) => {
        const id = /^projects\/([a-z0-9]{20})\/blobs\//.exec(args[0])?.[1];
        if (id && id !== parent.id) forkId = id;
        return real.put(...args);
      };
      instance.bucketOverride = watching;
    });
    // Reads go through; only the batch that writes the fork's rows fails (the last catalog call).
    const real = testEnv.CATALOG;
    const batchFails = {
      prepare: (query: string) => real.prepare(query),
      batch: () => Promise.reject(new Error("injected D1 failure")),
      exec: (query: string) => real.exec(query),
    } as unknown as D1Database;
    const res = await worker.fetch(
      new Request(`${ORIGIN}/v1/projects/${parent.id}/fork`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: "{}",
      }),
      { ...testEnv, CATALOG: batchFails },
    );
    await runInDurableObject(stubOf(parent), (instance: ProjectDO) => {
      instance.bucketOverride = null;
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await res.json()).toMatchObject({ code: "HEARTH_CATALOG_UNAVAILABLE" });
    expect(forkId).toMatch(/^[a-z0-9]{20}$/);
    expect(await projectIds()).toEqual(before);
    expect((await testEnv.BUCKET.list({ prefix: `projects/${forkId}/` })).objects).toEqual([]);
    // Not reachable: the platform API does not know it, and even a key signed for it finds no project.
    const got = await call(`/v1/projects/${forkId}`, { key: ADMIN_KEY });
    expect(got.status).toBe(404);
    await got.body?.cancel();
    const key = await signKey(readConfig(testEnv).jwtSecret, {
      ref: forkId,
      role: "service",
      jti: crypto.randomUUID(),
      iat: Math.floor(Date.now() / 1000),
    });
    const read = await call(`/p/${forkId}/rest/v1/notes`, { key });
    expect(read.status).toBe(404);
    expect(await read.json()).toMatchObject({ code: "HEARTH_PROJECT_NOT_FOUND" });
  });
});
