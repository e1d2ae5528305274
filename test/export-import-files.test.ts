/**
 * Stored files through export and import (durable-objects/import-files.ts): the round trip
 * restores buckets with their settings and policies, object metadata and bytes (under the new
 * project's prefix, WAL-logged); a zip the project's limits refuse, or one that fails later
 * (a bad table file, an R2 failure mid-way), leaves no visible object, no bytes and no
 * reservation behind.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { planFiles, STORAGE_MEMBER, stageFiles } from "../durable-objects/import-files.ts";
import { extract, listMembers, openZip } from "../durable-objects/import-zip.ts";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { memoryReader } from "../durable-objects/zip-directory.ts";
import type { Env } from "../workers/env.ts";
import { call, createProject, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";
import { binary, blobKeys, files, ok, put } from "./helpers/files.ts";

const testEnv = env as unknown as Env;
const SCHEMA = { tables: { notes: { columns: { id: { type: "text", primaryKey: true } } } } };

/** A project with tables and files: two buckets with different settings, nested and odd names. */
async function source(): Promise<TestProject> {
  const p = await projectWithSchema(SCHEMA);
  expect((await rest(p, "/notes", { method: "POST", body: { id: "n1" } })).status).toBe(201);
  await ok(
    files(p, "/bucket", {
      method: "POST",
      body: {
        id: "avatars",
        public: true,
        file_size_limit: "1MB",
        allowed_mime_types: ["image/*", "text/plain"],
      },
    }),
  );
  await ok(
    files(p, "/bucket", { method: "POST", body: { id: "docs", policy: { read: "owner", write: "owner" } } }),
  );
  await put(p, "avatars/a.png", binary(70_000), {
    "content-type": "image/png",
    "cache-control": "max-age=60",
  });
  await put(p, "avatars/deep/er/é ✓.txt", "unicode name");
  await put(p, "docs/empty.txt", "");
  await put(p, "docs/report.bin", binary(300_000), {
    "content-type": "application/octet-stream",
    "x-metadata": btoa(JSON.stringify({ author: "ada" })),
  });
  return p;
}

async function exportZip(p: TestProject): Promise<Uint8Array> {
  const res = await call(`${p.url}/export`, { key: p.serviceKey });
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

function importZip(p: TestProject, zip: Uint8Array): Promise<Response> {
  return call(`${p.url}/import`, { method: "POST", key: p.serviceKey, body: zip });
}

async function listing(p: TestProject, bucket: string, prefix = "") {
  const rows = (await ok(
    files(p, `/object/list/${bucket}`, { method: "POST", body: { prefix, limit: 1000 } }),
  )) as { name: string; id: string | null; metadata: Record<string, unknown> | null }[];
  return rows.map((r) => ({
    name: r.name,
    folder: r.id === null,
    size: r.metadata?.size,
    mimetype: r.metadata?.mimetype,
    cacheControl: r.metadata?.cacheControl,
  }));
}

async function bytesOf(p: TestProject, path: string): Promise<Uint8Array> {
  const res = await files(p, `/object/${path}`);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

async function bucket(p: TestProject, id: string) {
  const b = (await ok(files(p, `/bucket/${id}`))) as Record<string, unknown>;
  const { created_at: _c, updated_at: _u, ...rest } = b;
  return rest;
}

async function usage(p: TestProject) {
  return (await ok(files(p, "/usage"))) as { objects: number; storedBytes: number; pendingUploads: number };
}

async function expectNoFiles(p: TestProject) {
  expect(await blobKeys(p.id)).toEqual([]);
  const res = await files(p, "/bucket");
  expect(await res.json()).toEqual([]);
  const u = await usage(p);
  expect([u.objects, u.pendingUploads]).toEqual([0, 0]);
}

// Each test makes projects with files and reads them back: seconds under load, more than the default 5.
describe("files through export and import", { timeout: 30_000 }, () => {
  it("restores buckets, settings, metadata and bytes into a fresh project", async () => {
    const from = await source();
    const zip = await exportZip(from);
    const members = unzipSync(zip);
    expect(Object.keys(members).filter((m) => !m.startsWith("tables/"))).toEqual([
      "schema.json",
      "blobs/avatars/a.png",
      "blobs/avatars/deep/er/é ✓.txt",
      "blobs/docs/empty.txt",
      "blobs/docs/report.bin",
      "storage.json",
    ]);
    const meta = JSON.parse(strFromU8(members["storage.json"]!)) as { objects: Record<string, unknown>[] };
    expect(meta.objects.map((o) => [o.bucket, o.name, o.size])).toEqual([
      ["avatars", "a.png", 70_000],
      ["avatars", "deep/er/é ✓.txt", 12],
      ["docs", "empty.txt", 0],
      ["docs", "report.bin", 300_000],
    ]);
    expect(meta.objects[0]).not.toHaveProperty("key");

    const to = await createProject("import-files");
    const res = await importZip(to, zip);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({
      rows: 1,
      files: { buckets: 2, objects: 4, bytes: 370_012 },
    });

    for (const id of ["avatars", "docs"]) expect(await bucket(to, id)).toEqual(await bucket(from, id));
    for (const [b, prefix] of [
      ["avatars", ""],
      ["avatars", "deep/er"],
      ["docs", ""],
    ] as const) {
      expect(await listing(to, b, prefix)).toEqual(await listing(from, b, prefix));
    }
    for (const path of ["avatars/a.png", "avatars/deep/er/é ✓.txt", "docs/empty.txt", "docs/report.bin"]) {
      expect(await bytesOf(to, path)).toEqual(await bytesOf(from, path));
    }
    const info = (await ok(files(to, "/object/info/docs/report.bin"))) as { metadata: unknown };
    expect(info.metadata).toEqual({ author: "ada" });
    expect((await call(`${to.url}/storage/v1/object/public/avatars/a.png`)).status).toBe(200);
    expect((await usage(to)).storedBytes).toBe((await usage(from)).storedBytes);

    // The bytes are the new project's, under its prefix; the rows are in its WAL.
    expect((await blobKeys(to.id)).length).toBe(4);
    const wal = await runInDurableObject(stubOf(to), (_i: ProjectDO, state) =>
      state.storage.sql
        .exec(
          "SELECT tbl, count(*) AS n FROM _hearth_wal WHERE tbl LIKE '_storage.%' GROUP BY tbl ORDER BY tbl",
        )
        .toArray(),
    );
    expect(wal).toEqual([
      { tbl: "_storage.buckets", n: 2 },
      { tbl: "_storage.objects", n: 4 },
    ]);
    // Deleting the source changes nothing for the copy.
    expect((await call(`/v1/projects/${from.id}`, { method: "DELETE", key: "test-admin-key" })).status).toBe(
      204,
    );
    expect(await bytesOf(to, "docs/report.bin")).toEqual(binary(300_000));
  });

  it("takes blobs/ without storage.json: private buckets, octet-stream files", async () => {
    const p = await createProject("bare-blobs");
    const zip = zipSync({
      "schema.json": strToU8('{"tables":{}}'),
      "blobs/raw/a/b.dat": binary(10),
    });
    const res = await importZip(p, zip);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await bucket(p, "raw")).toMatchObject({
      public: false,
      policy: { read: "members", write: "members" },
    });
    expect(await listing(p, "raw", "a")).toEqual([
      {
        name: "b.dat",
        folder: false,
        size: 10,
        mimetype: "application/octet-stream",
        cacheControl: "3600",
      },
    ]);
  });

  describe("refuses, leaving no object, no bytes and no reservation", () => {
    async function edited(
      change: (meta: { buckets: Record<string, unknown>[]; objects: Record<string, unknown>[] }) => void,
    ) {
      const from = await source();
      const members = unzipSync(await exportZip(from));
      const meta = JSON.parse(strFromU8(members["storage.json"]!));
      change(meta);
      members["storage.json"] = strToU8(JSON.stringify(meta));
      return members;
    }

    async function refused(zip: Uint8Array, status: number, code: string, ...mentions: string[]) {
      const p = await createProject("import-refused");
      const res = await importZip(p, zip);
      const body = (await res.json()) as { code: string; message: string; details: string | null };
      expect([res.status, body.code], body.message).toEqual([status, code]);
      for (const m of mentions) expect(`${body.message} ${body.details}`).toContain(m);
      await expectNoFiles(p);
      return p;
    }

    it("files past the project's quota: 413 before any byte is stored", async () => {
      const zip = await exportZip(await source());
      const p = await createProject("small-quota");
      await ok(files(p, "/quota", { method: "PUT", body: { quotaBytes: 100_000 } }));
      const res = await importZip(p, zip);
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ code: "HEARTH_STORAGE_QUOTA_EXCEEDED" });
      await expectNoFiles(p);
      // With room, the same zip loads.
      await ok(files(p, "/quota", { method: "PUT", body: { quotaBytes: 1_000_000 } }));
      expect((await importZip(p, zip)).status).toBe(200);
    });

    it("a file larger than its bucket's limit, or of a type it refuses", async () => {
      let members = await edited((m) => {
        m.buckets.find((b) => b.id === "docs")!.file_size_limit = 1000;
      });
      await refused(zipSync(members), 413, "HEARTH_STORAGE_TOO_LARGE", "blobs/docs/report.bin");
      members = await edited((m) => {
        m.buckets.find((b) => b.id === "avatars")!.allowed_mime_types = ["image/jpeg"];
      });
      await refused(zipSync(members), 415, "HEARTH_STORAGE_MIME_TYPE", "blobs/avatars/");
    });

    it("storage.json and blobs/ that disagree, bad names and settings", async () => {
      const members = await edited(() => {});
      const { "blobs/docs/empty.txt": _gone, ...missing } = members;
      await refused(zipSync(missing), 400, "HEARTH_IMPORT_INVALID", "blobs/docs/empty.txt", "not in the zip");
      await refused(
        zipSync({ ...members, "blobs/docs/extra.txt": strToU8("x") }),
        400,
        "HEARTH_IMPORT_INVALID",
        "blobs/docs/extra.txt: not listed",
      );
      await refused(
        zipSync({ ...members, "blobs/docs/report.bin": binary(10) }),
        400,
        "HEARTH_IMPORT_INVALID",
        "blobs/docs/report.bin: 10 bytes",
      );
      await refused(
        zipSync({ ...members, "storage.json": strToU8("{not json") }),
        400,
        "HEARTH_IMPORT_INVALID",
        "storage.json: not valid JSON",
      );
      const badPolicy = await edited((m) => {
        (m.buckets[0]!.policy as Record<string, unknown>).read = "everyone";
      });
      await refused(zipSync(badPolicy), 400, "HEARTH_IMPORT_INVALID", "storage.json (buckets[0])");
      const noBucket = await edited((m) => {
        m.buckets = m.buckets.filter((b) => b.id !== "docs");
      });
      await refused(zipSync(noBucket), 400, "HEARTH_IMPORT_INVALID", 'bucket "docs" is not in storage.json');
      await refused(
        zipSync({ "schema.json": strToU8('{"tables":{}}'), "blobs/loose.txt": strToU8("x") }),
        400,
        "HEARTH_IMPORT_INVALID",
        "blobs/loose.txt",
      );
    });

    it("a bad table file found after the bytes were stored: they are deleted", async () => {
      const members = await edited(() => {});
      members["tables/notes.parquet"] = strToU8("not parquet at all");
      await refused(zipSync(members), 400, "HEARTH_IMPORT_INVALID", "tables/notes.parquet");
    });

    it("R2 failing half-way through the bytes: what was stored is deleted", async () => {
      const zip = await exportZip(await source());
      const p = await createProject("r2-fails");
      await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
        let puts = 0;
        const real = testEnv.BUCKET;
        const failing = Object.create(real) as R2Bucket;
        failing.put = (...args: Parameters<R2Bucket["put"]>) =>
          ++puts > 2 ? Promise.reject(new Error("injected put failure")) : real.put(...args);
        failing.delete = (keys: string | string[]) => real.delete(keys);
        failing.list = (opts?: R2ListOptions) => real.list(opts);
        // the staged zip is read through the same bucket
        failing.head = (key: string) => real.head(key);
        failing.get = ((key: string, opts?: R2GetOptions) => real.get(key, opts)) as R2Bucket["get"];
        instance.bucketOverride = failing;
      });
      const res = await importZip(p, zip);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        code: "HEARTH_STORAGE_UNAVAILABLE",
        message: expect.stringContaining("nothing was imported"),
      });
      await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
        instance.bucketOverride = null;
      });
      await expectNoFiles(p);
      expect((await call(`${p.url}/schema`, { key: p.serviceKey }).then((r) => r.json())) as unknown).toEqual(
        {
          tables: {},
        },
      );
    });

    it("a crash between storing the bytes and the commit: nothing visible, and the sweep deletes the bytes", async () => {
      const zip = await exportZip(await source());
      const p = await createProject("import-crash");
      // The first two steps of an import, then nothing: as if the object died before its transaction.
      await runInDurableObject(stubOf(p), async (_i: ProjectDO, state) => {
        const archive = await openZip(memoryReader(zip));
        const { blobs, storage } = listMembers(archive);
        const host = {
          sql: state.storage.sql,
          storage: state.storage,
          r2: testEnv.BUCKET,
          projectId: p.id,
          defaultQuotaBytes: 10 * 2 ** 30,
          armSweep: async () => {},
        };
        const plan = planFiles(host, blobs, storage ? await extract(archive, STORAGE_MEMBER) : null);
        await stageFiles(host, archive, plan!);
      });
      expect(await blobKeys(p.id)).toHaveLength(4);
      expect(await (await files(p, "/bucket")).json()).toEqual([]);
      expect(await usage(p)).toMatchObject({ objects: 0, pendingUploads: 4 });
      // The alarm's sweep (FileStore.sweep), here on demand: uploads that never committed go.
      expect(await ok(files(p, "/sweep", { method: "POST", body: { olderThanSeconds: 0 } }))).toMatchObject({
        abortedUploads: 4,
      });
      await expectNoFiles(p);
    });

    it("a project that already has a bucket: 409", async () => {
      const zip = await exportZip(await source());
      const p = await createProject("has-bucket");
      await ok(files(p, "/bucket", { method: "POST", body: { id: "mine" } }));
      const res = await importZip(p, zip);
      expect(res.status).toBe(409);
      expect(await res.json()).toMatchObject({ code: "HEARTH_IMPORT_NOT_EMPTY" });
      expect(await blobKeys(p.id)).toEqual([]);
      expect((await usage(p)).pendingUploads).toBe(0);
    });
  });
});
