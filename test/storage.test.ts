/**
 * Files inside workerd, where R2 and the DO can be inspected: every file change is in the WAL,
 * an upload the client cuts off leaves no key in R2, one whose gateway died is swept by the
 * alarm, metadata survives eviction and a freeze (archived to R2, restored by the wake), a
 * project with an upload in flight does not freeze, and deleting the project deletes its blobs. The wire behaviour is tested with supabase-js in
 * test/e2e/supabase-storage.test.ts.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import type { StorageResult, UploadTicket } from "../durable-objects/storage/types.ts";
import type { Env } from "../workers/env.ts";
import { ADMIN_KEY, call, createProject, type TestProject } from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";

const testEnv = env as unknown as Env;

function storage(p: TestProject, path: string, init: Parameters<typeof call>[1] = {}) {
  return call(`${p.url}/storage/v1${path}`, { key: p.serviceKey, ...init });
}

async function blobKeys(p: TestProject): Promise<string[]> {
  const list = await testEnv.BUCKET.list({ prefix: `projects/${p.id}/blobs/` });
  return list.objects.map((o) => o.key);
}

async function withBucket(name = "files"): Promise<TestProject> {
  const p = await createProject("storage");
  const res = await storage(p, "/bucket", { method: "POST", body: { id: name } });
  expect(res.status, await res.clone().text()).toBe(200);
  return p;
}

function upload(
  p: TestProject,
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
) {
  return storage(p, `/object/${path}`, {
    method: "POST",
    headers: { "content-type": "text/plain", ...headers },
    body,
  });
}

describe("files in the DO and R2", () => {
  it("logs every bucket and object change in the WAL", async () => {
    const p = await withBucket();
    expect((await upload(p, "files/a.txt", "one")).status).toBe(200);
    expect((await upload(p, "files/a.txt", "two", { "x-upsert": "true" })).status).toBe(200);
    const mv = await storage(p, "/object/move", {
      method: "POST",
      body: { bucketId: "files", sourceKey: "a.txt", destinationKey: "b.txt" },
    });
    expect(mv.status).toBe(200);
    const rm = await storage(p, "/object/files", { method: "DELETE", body: { prefixes: ["b.txt"] } });
    expect(rm.status).toBe(200);
    const wal = await runInDurableObject(stubOf(p), (_i: ProjectDO, state) =>
      state.storage.sql
        .exec("SELECT tbl, op, pk, new, old FROM _hearth_wal WHERE tbl LIKE '_storage.%' ORDER BY lsn")
        .toArray(),
    );
    expect(wal.map((e) => `${e.tbl} ${e.op} ${e.pk}`)).toEqual([
      '_storage.buckets INSERT ["files"]',
      '_storage.objects INSERT ["files","a.txt"]',
      '_storage.objects UPDATE ["files","a.txt"]',
      '_storage.objects UPDATE ["files","b.txt"]',
      '_storage.objects DELETE ["files","b.txt"]',
    ]);
    expect(JSON.parse(String(wal[2]!.new))).toMatchObject({ bucket: "files", name: "a.txt", size: 3 });
    // The replaced and the removed versions' bytes are gone from R2.
    expect(await blobKeys(p)).toEqual([]);
  });

  it("leaves no key in R2 when the client cuts the upload off", async () => {
    const p = await withBucket();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 3) {
          controller.error(new Error("client went away"));
          return;
        }
        sent++;
        controller.enqueue(new Uint8Array(64 * 1024).fill(sent));
      },
    });
    const res = await upload(p, "files/cut.bin", body as unknown as Uint8Array, {
      "content-type": "application/octet-stream",
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await blobKeys(p)).toEqual([]);
    const usage = await (await storage(p, "/usage")).json();
    expect(usage).toMatchObject({ objects: 0, pendingUploads: 0, pendingBytes: 0 });
  });

  it("sweeps an upload whose gateway died, at the next alarm", async () => {
    const p = await withBucket();
    const stub = stubOf(p);
    const principal = { role: "service" as const, projectId: p.id, keyId: "" };
    // The key id is the service key's jti: read it from the DO's live keys.
    principal.keyId = await runInDurableObject(stub, (_i: ProjectDO, state) =>
      String(state.storage.sql.exec("SELECT id FROM _hearth_keys WHERE role = 'service'").one().id),
    );
    const begun = (await stub.storage(
      { kind: "principal", principal },
      {
        op: "beginUpload",
        bucket: "files",
        name: "orphan.bin",
        mode: "create",
        contentType: "application/octet-stream",
        declaredSize: 5,
        cacheControl: "3600",
        metadata: null,
      },
    )) as StorageResult;
    expect(begun.ok).toBe(true);
    const ticket = (begun as { value: UploadTicket }).value;
    // Bytes reached R2, then the gateway vanished before committing.
    await testEnv.BUCKET.put(ticket.key, "12345");
    expect(await blobKeys(p)).toEqual([ticket.key]);
    expect(await (await storage(p, "/object/files/orphan.bin")).status).toBe(404);

    await runInDurableObject(stub, (instance: ProjectDO) => {
      instance.tuning.uploadTtlMs = 0;
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await blobKeys(p)).toEqual([]);
    const usage = await (await storage(p, "/usage")).json();
    expect(usage).toMatchObject({ pendingUploads: 0, usedBytes: 0 });
  });

  it("keeps metadata through eviction and a freeze, and deletes blobs with the project", async () => {
    const p = await withBucket();
    expect((await upload(p, "files/keep.txt", "kept")).status).toBe(200);
    expect((await upload(p, "files/dir/two.txt", "second")).status).toBe(200);
    await abortAllDurableObjects();
    const got = await storage(p, "/object/files/keep.txt");
    expect(await got.text()).toBe("kept");

    const lsnBefore = await runInDurableObject(stubOf(p), (_i: ProjectDO, state) =>
      Number(state.storage.sql.exec("SELECT max(lsn) AS n FROM _hearth_wal").one().n),
    );
    const freeze = await call(`${p.url}/admin/v1/freeze`, { method: "POST", key: p.serviceKey });
    expect(await freeze.json()).toMatchObject({ frozen: true });
    expect((await testEnv.BUCKET.head(`projects/${p.id}/storage/meta.json`)) !== null).toBe(true);
    // The next request wakes the project with its files, and the archive is used up.
    const after = await storage(p, "/object/files/dir/two.txt");
    expect(await after.text()).toBe("second");
    expect(await testEnv.BUCKET.head(`projects/${p.id}/storage/meta.json`)).toBeNull();
    const list = await storage(p, "/object/list/files", { method: "POST", body: { prefix: "" } });
    expect(((await list.json()) as { name: string }[]).map((e) => e.name)).toEqual(["dir", "keep.txt"]);
    // Restoring is not a change: no WAL entry for it.
    const restoredLsns = await runInDurableObject(stubOf(p), (_i: ProjectDO, state) =>
      Number(
        state.storage.sql.exec("SELECT count(*) AS n FROM _hearth_wal WHERE lsn > ?", lsnBefore).one().n,
      ),
    );
    expect(restoredLsns).toBe(0);
    expect((await upload(p, "files/new.txt", "after the wake")).status).toBe(200);

    expect(await blobKeys(p)).toHaveLength(3);
    const del = await call(`/v1/projects/${p.id}`, { method: "DELETE", key: ADMIN_KEY });
    expect(del.status).toBe(204);
    expect(await blobKeys(p)).toEqual([]);
  });

  it("does not freeze while an upload is in flight", async () => {
    const p = await withBucket();
    const stub = stubOf(p);
    await runInDurableObject(stub, (_i: ProjectDO, state) => {
      state.storage.sql.exec(
        "INSERT INTO _hearth_storage_uploads (version, bucket, name, key, mode, reserved, max_bytes, content_type, cache_control, created_at) VALUES ('v', 'files', 'x', 'k', 'create', 0, 0, 'text/plain', '3600', ?)",
        Date.now(),
      );
    });
    const freeze = await call(`${p.url}/admin/v1/freeze`, { method: "POST", key: p.serviceKey });
    expect(await freeze.json()).toMatchObject({ frozen: false });
  });
});
