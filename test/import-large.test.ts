/**
 * `POST {url}/import` of zips larger than a request body (HEARTH_MAX_BODY_BYTES is 4 MiB in
 * vitest.config.ts): the gateway stages the zip in R2, the DO reads it with ranged gets
 * (durable-objects/zip-directory.ts, import-zip.ts) and streams the files to their keys.
 * The staging object never outlives the import; the alarm's sweep deletes an orphan.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { strToU8, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { beginStaging } from "../durable-objects/import-staging.ts";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import {
  memoryReader,
  type RangeReader,
  readDirectory,
  ZipFormatError,
} from "../durable-objects/zip-directory.ts";
import type { Env } from "../workers/env.ts";
import worker from "../workers/index.ts";
import { call, createProject, ORIGIN, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";
import { files, ok, put } from "./helpers/files.ts";

const testEnv = env as unknown as Env;
const BODY_LIMIT = Number(testEnv.HEARTH_MAX_BODY_BYTES);

/** Random bytes (incompressible: the zip is as large as the files). */
function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65_536)));
  return out;
}

async function stagedKeys(projectId: string): Promise<string[]> {
  const list = await testEnv.BUCKET.list({ prefix: `projects/${projectId}/imports/` });
  return list.objects.map((o) => o.key);
}

async function pendingUploads(p: TestProject): Promise<number> {
  return ((await ok(files(p, "/usage"))) as { pendingUploads: number }).pendingUploads;
}

function importZip(p: TestProject, zip: Uint8Array | ReadableStream, envOverride?: Partial<Env>) {
  const headers = new Headers({ authorization: `Bearer ${p.serviceKey}`, "content-type": "application/zip" });
  const req = new Request(`${ORIGIN}/p/${p.id}/import`, { method: "POST", headers, body: zip });
  return worker.fetch(req, envOverride ? ({ ...testEnv, ...envOverride } as Env) : testEnv);
}

describe("zip directory through ranges", () => {
  it("lists a zip's members with their sizes and offsets", async () => {
    const zip = zipSync({
      "schema.json": strToU8("{}"),
      "blobs/b/x.bin": [noise(1000), { level: 0 }],
      "blobs/b/é.txt": [strToU8("hello hello hello"), { level: 6 }],
    });
    const entries = await readDirectory(memoryReader(zip), 1 << 20);
    expect(entries.map((e) => [e.name, e.method, e.size])).toEqual([
      ["schema.json", 8, 2],
      ["blobs/b/x.bin", 0, 1000],
      ["blobs/b/é.txt", 8, 17],
    ]);
    expect(entries[0]!.localOffset).toBe(0);
  });

  it("refuses truncated and foreign bytes", async () => {
    const zip = zipSync({ "schema.json": strToU8("{}") });
    for (const bad of [
      zip.slice(0, zip.length - 5),
      zip.slice(10),
      strToU8("not a zip at all, no"),
      new Uint8Array(0),
    ]) {
      await expect(readDirectory(memoryReader(bad), 1 << 20)).rejects.toBeInstanceOf(ZipFormatError);
    }
  });

  it("reads zip64 sizes and offsets past 4 GiB", async () => {
    // A sparse 6 GiB archive: one 5 GiB stored member at offset 0, its directory entry at
    // 5 GiB + header, with sizes and offset in the zip64 extra field, then the zip64 records.
    const GiB = 2 ** 30;
    const size = 5 * GiB;
    const name = strToU8("blobs/b/huge.bin");
    const dirOffset = 30 + name.length + size;
    const extra = new DataView(new ArrayBuffer(4 + 24));
    extra.setUint16(0, 1, true);
    extra.setUint16(2, 24, true);
    extra.setBigUint64(4, BigInt(size), true); // uncompressed
    extra.setBigUint64(12, BigInt(size), true); // compressed
    extra.setBigUint64(20, 0n, true); // local header offset (not saturated, still read)
    const entry = new DataView(new ArrayBuffer(46 + name.length + 28));
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(10, 0, true);
    entry.setUint32(20, 0xffffffff, true);
    entry.setUint32(24, 0xffffffff, true);
    entry.setUint16(28, name.length, true);
    entry.setUint16(30, 28, true);
    entry.setUint32(42, 0, true);
    new Uint8Array(entry.buffer).set(name, 46);
    new Uint8Array(entry.buffer).set(new Uint8Array(extra.buffer), 46 + name.length);
    const dir = new Uint8Array(entry.buffer);
    const z64At = dirOffset + dir.length;
    const tail = new DataView(new ArrayBuffer(56 + 20 + 22));
    tail.setUint32(0, 0x06064b50, true);
    tail.setBigUint64(32, 1n, true);
    tail.setBigUint64(40, BigInt(dir.length), true);
    tail.setBigUint64(48, BigInt(dirOffset), true);
    tail.setUint32(56, 0x07064b50, true);
    tail.setBigUint64(56 + 8, BigInt(z64At), true);
    tail.setUint32(76, 0x06054b50, true);
    tail.setUint16(76 + 10, 0xffff, true);
    tail.setUint32(76 + 12, 0xffffffff, true);
    tail.setUint32(76 + 16, 0xffffffff, true);
    const tailBytes = new Uint8Array(tail.buffer);
    const total = z64At + tailBytes.length;
    const reads: [number, number][] = [];
    const sparse: RangeReader = {
      size: total,
      read: async (offset, length) => {
        reads.push([offset, length]);
        const out = new Uint8Array(length);
        for (const [at, bytes] of [
          [dirOffset, dir],
          [z64At, tailBytes],
        ] as const) {
          const from = Math.max(offset, at);
          const to = Math.min(offset + length, at + bytes.length);
          if (from < to) out.set(bytes.subarray(from - at, to - at), from - offset);
        }
        return out;
      },
      stream: async () => {
        throw new Error("not here");
      },
    };
    const entries = await readDirectory(sparse, 1 << 20);
    expect(entries).toEqual([
      { name: "blobs/b/huge.bin", method: 0, flags: 0, compressedSize: size, size, localOffset: 0 },
    ]);
    // a few small reads, never the member
    expect(reads.every(([, n]) => n < 70_000)).toBe(true);
  });
});

describe("POST {url}/import of a zip larger than a request body", { timeout: 60_000 }, () => {
  it("restores files that total more than HEARTH_MAX_BODY_BYTES, byte for byte", async () => {
    const from = await projectWithSchema({
      tables: { notes: { columns: { id: { type: "text", primaryKey: true } } } },
    });
    expect((await rest(from, "/notes", { method: "POST", body: { id: "n1" } })).status).toBe(201);
    await ok(files(from, "/bucket", { method: "POST", body: { id: "big" } }));
    const a = noise(Math.ceil(BODY_LIMIT * 0.75));
    const b = noise(Math.ceil(BODY_LIMIT * 0.5));
    await put(from, "big/a.bin", a, { "content-type": "application/octet-stream" });
    await put(from, "big/dir/b.bin", b, { "content-type": "application/octet-stream" });
    const exported = await call(`${from.url}/export`, { key: from.serviceKey });
    expect(exported.status).toBe(200);
    const zip = new Uint8Array(await exported.arrayBuffer());
    expect(zip.length).toBeGreaterThan(BODY_LIMIT);

    const to = await createProject("import-large");
    const res = await importZip(to, zip);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({
      tables: { notes: 1 },
      files: { buckets: 1, objects: 2, bytes: a.length + b.length },
    });
    for (const [path, bytes] of [
      ["big/a.bin", a],
      ["big/dir/b.bin", b],
    ] as const) {
      const got = await files(to, `/object/${path}`);
      expect(got.status).toBe(200);
      const body = new Uint8Array(await got.arrayBuffer());
      expect(body.length).toBe(bytes.length);
      expect(body.every((v, i) => v === bytes[i])).toBe(true);
    }
    expect(await (await rest(to, "/notes")).json()).toEqual([{ id: "n1" }]);
    expect(await stagedKeys(to.id)).toEqual([]);
    expect(await pendingUploads(to)).toBe(0);
  });

  it("a deflated file member is inflated as it streams", async () => {
    const text = strToU8("a line of text that compresses well\n".repeat(200_000));
    expect(text.length).toBeGreaterThan(BODY_LIMIT);
    const zip = zipSync({
      "schema.json": strToU8('{"tables":{}}'),
      "blobs/docs/long.txt": [text, { level: 6 }],
    });
    const to = await createProject("import-deflated");
    const res = await importZip(to, zip);
    expect(res.status, await res.clone().text()).toBe(200);
    const got = new Uint8Array(await (await files(to, "/object/docs/long.txt")).arrayBuffer());
    expect(got.length).toBe(text.length);
    expect(got.every((v, i) => v === text[i])).toBe(true);
  });
});

describe("POST {url}/import refuses, leaving nothing visible and no staged zip", { timeout: 60_000 }, () => {
  async function expectNothing(p: TestProject) {
    const schema = await call(`${p.url}/schema`, { key: p.serviceKey });
    expect(await schema.json()).toEqual({ tables: {} });
    expect(await (await files(p, "/bucket")).json()).toEqual([]);
    expect(await stagedKeys(p.id)).toEqual([]);
    const listed = await testEnv.BUCKET.list({ prefix: `projects/${p.id}/` });
    expect(listed.objects.map((o) => o.key)).toEqual([]);
  }

  const big = () =>
    zipSync({
      "schema.json": strToU8('{"tables":{}}'),
      "blobs/big/a.bin": [noise(BODY_LIMIT + 100_000), { level: 0 }],
      "blobs/big/b.txt": [strToU8("b".repeat(100_000)), { level: 6 }],
    });

  it("a truncated zip: 400 HEARTH_IMPORT_INVALID", async () => {
    const zip = big();
    const p = await createProject("import-truncated");
    const res = await importZip(p, zip.slice(0, zip.length - 100));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: "HEARTH_IMPORT_INVALID",
      message: expect.stringContaining("not a zip"),
    });
    await expectNothing(p);
  });

  it("a member whose bytes are damaged: 400 naming it, the files stored before it deleted", async () => {
    const zip = big();
    // Damage the deflated member's data (the second member), after the first was stored.
    const bad = zip.slice();
    const dir = await readDirectory(memoryReader(zip), 1 << 20);
    const second = dir.find((e) => e.name === "blobs/big/b.txt")!;
    bad.fill(
      0xff,
      second.localOffset + 60,
      second.localOffset + 60 + Math.min(40, second.compressedSize - 30),
    );
    const p = await createProject("import-damaged");
    const res = await importZip(p, bad);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: "HEARTH_IMPORT_INVALID",
      message: expect.stringContaining("blobs/big/b.txt"),
    });
    await expectNothing(p);
    expect(await pendingUploads(p)).toBe(0);
  });

  it("past HEARTH_MAX_IMPORT_BYTES: 413 HEARTH_IMPORT_TOO_LARGE, declared or counted while streaming", async () => {
    const zip = big();
    const p = await createProject("import-too-large");
    const limit = { HEARTH_MAX_IMPORT_BYTES: String(BODY_LIMIT) };
    const declared = await importZip(p, zip, limit);
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ code: "HEARTH_IMPORT_TOO_LARGE" });
    // without a Content-Length: counted as it streams to R2 (a multipart upload, aborted)
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < zip.length; i += 1 << 20) c.enqueue(zip.slice(i, i + (1 << 20)));
        c.close();
      },
    });
    const counted = await importZip(p, stream, limit);
    expect(counted.status).toBe(413);
    expect(await counted.json()).toMatchObject({ code: "HEARTH_IMPORT_TOO_LARGE" });
    await expectNothing(p);
    expect(await pendingUploads(p)).toBe(0);
  });

  it("an import that died before its run: the alarm's sweep deletes the staged zip", async () => {
    const p = await createProject("import-orphan");
    const key = await runInDurableObject(stubOf(p), async (_i: ProjectDO, state) => {
      const staged = beginStaging(state.storage.sql, p.id);
      await testEnv.BUCKET.put(staged.key, noise(1000));
      return staged.key;
    });
    expect(await stagedKeys(p.id)).toEqual([key]);
    expect(await pendingUploads(p)).toBe(1);
    // FileStore.sweep, which the alarm runs, here on demand
    expect(await ok(files(p, "/sweep", { method: "POST", body: { olderThanSeconds: 0 } }))).toMatchObject({
      abortedUploads: 1,
    });
    expect(await stagedKeys(p.id)).toEqual([]);
    expect(await pendingUploads(p)).toBe(0);
  });
});
