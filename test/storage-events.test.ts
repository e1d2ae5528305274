/**
 * File events inside workerd: realtime postgres_changes on schema "storage" (objects and
 * buckets) for every kind of file change, cut by the bucket policies and app scopes (the
 * access matrix, and a revoked grant), sync pulls of `storage.objects` (snapshot, live,
 * catch-up from the WAL, read-only), and the alarm's WAL trim for a project whose only
 * changes are files. supabase-js over the wire: test/e2e/storage-events.test.ts.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import { trimIdleWal, walFloor } from "../durable-objects/sync/retention.ts";
import { account } from "./helpers/accounts.ts";
import { call, createProject, putSchema, type TestProject, workerApi } from "./helpers/api.ts";
import { stubOf } from "./helpers/faults.ts";
import {
  type Api,
  addMember,
  connectApp,
  createOwnedProject,
  grantOf,
  registerApp,
  revokeGrant,
  signup,
} from "./helpers/oauth.ts";
import { connectRealtime, type PhxClient } from "./helpers/realtime.ts";
import { applyAll, connectSync } from "./helpers/sync.ts";

const api: Api = workerApi;

type Data = Record<string, unknown> & {
  type: string;
  schema: string;
  table: string;
  record: Record<string, unknown>;
  old_record: Record<string, unknown>;
  columns: { name: string; type: string }[];
};

function storage(p: TestProject, path: string, init: Parameters<typeof call>[1] = {}) {
  return call(`${p.url}/storage/v1${path}`, { key: p.serviceKey, ...init });
}

async function ok(res: Promise<Response>): Promise<Response> {
  const r = await res;
  expect(r.status, await r.clone().text()).toBeLessThan(300);
  return r;
}

function bucket(p: TestProject, id: string, read = "members", write = "members", key = p.serviceKey) {
  return ok(storage(p, "/bucket", { method: "POST", key, body: { id, policy: { read, write } } }));
}

function upload(p: TestProject, path: string, body: string, opts: { key?: string; upsert?: boolean } = {}) {
  return ok(
    storage(p, `/object/${path}`, {
      method: "POST",
      key: opts.key ?? p.serviceKey,
      headers: { "content-type": "text/plain", ...(opts.upsert ? { "x-upsert": "true" } : {}) },
      body,
    }),
  );
}

function files(p: TestProject, op: "move" | "copy", bucketId: string, from: string, to: string) {
  return ok(
    storage(p, `/object/${op}`, {
      method: "POST",
      body: { bucketId, sourceKey: from, destinationKey: to },
    }),
  );
}

function remove(p: TestProject, bucketId: string, names: string[]) {
  return ok(storage(p, `/object/${bucketId}`, { method: "DELETE", body: { prefixes: names } }));
}

async function joinFiles(c: PhxClient, topic: string, bindings: Record<string, unknown>[], token?: string) {
  const reply = await c.join(topic, { postgres_changes: bindings }, token);
  expect(reply.status, JSON.stringify(reply)).toBe("ok");
  return reply;
}

/** `bucket/name` of each file event a client received on `topic`, with its type. */
function seen(c: PhxClient, topic: string): string[] {
  return (c.changes(topic) as Data[]).map((d) => {
    const r = d.type === "DELETE" ? d.old_record : d.record;
    return `${d.type} ${r.bucket_id}/${r.name}`;
  });
}

/** Waits until `c` has an event on `topic` for `bucket/name` (later ones are then not yet sent). */
function waitName(c: PhxClient, topic: string, bucketId: string, name: string) {
  return c.waitFor((f) => {
    if (f[2] !== `realtime:${topic}` || f[3] !== "postgres_changes") return false;
    const d = (f[4] as { data: Data }).data;
    const r = d.type === "DELETE" ? d.old_record : d.record;
    return r.bucket_id === bucketId && r.name === name;
  });
}

describe("realtime: file events", () => {
  it("sends uploads, upserts, updates, moves, copies and removes as storage.objects changes, filtered by bucket", async () => {
    // No schema at all: file events need none.
    const p = await createProject("files-rt");
    await bucket(p, "avatars");
    await bucket(p, "other");
    const c = await connectRealtime(p, p.serviceKey);
    const reply = await joinFiles(c, "files", [
      { event: "*", schema: "storage", table: "objects", filter: "bucket_id=eq.avatars" },
    ]);
    expect(reply.response).toEqual({
      postgres_changes: [
        { id: 1, event: "*", schema: "storage", table: "objects", filter: "bucket_id=eq.avatars" },
      ],
    });
    await upload(p, "avatars/a.png", "one");
    await upload(p, "avatars/a.png", "two!", { upsert: true });
    await ok(
      storage(p, "/object/avatars/a.png", {
        method: "PUT",
        headers: { "content-type": "text/plain" },
        body: "three",
      }),
    );
    await files(p, "move", "avatars", "a.png", "b.png");
    await files(p, "copy", "avatars", "b.png", "c.png");
    await upload(p, "other/x.txt", "not for this filter");
    await remove(p, "avatars", ["b.png", "c.png"]);
    await waitName(c, "files", "avatars", "c.png");
    await c.waitFor((f) => f[3] === "postgres_changes" && (f[4].data as Data).old_record?.name === "c.png");
    expect(seen(c, "files")).toEqual([
      "INSERT avatars/a.png",
      "UPDATE avatars/a.png",
      "UPDATE avatars/a.png",
      "UPDATE avatars/b.png",
      "INSERT avatars/c.png",
      "DELETE avatars/b.png",
      "DELETE avatars/c.png",
    ]);
    const events = c.changes("files") as Data[];
    const [ins, upsert, , moved, copied] = events as [Data, Data, Data, Data, Data];
    expect(ins.schema).toBe("storage");
    expect(ins.table).toBe("objects");
    expect(ins.record).toMatchObject({
      bucket_id: "avatars",
      name: "a.png",
      owner: null,
      metadata: { size: 3, mimetype: "text/plain", contentLength: 3, httpStatusCode: 200 },
    });
    expect(String((ins.record.metadata as Record<string, unknown>).eTag)).toMatch(/^"[0-9a-f]{32}"$/);
    expect(ins.record.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ins.old_record).toEqual({});
    // An upsert and a move keep the object's id; a copy is a new object.
    expect(upsert.record.id).toBe(ins.record.id);
    expect(upsert.record.metadata).toMatchObject({ size: 4 });
    expect(upsert.old_record.metadata).toMatchObject({ size: 3 });
    expect(moved.record).toMatchObject({ id: ins.record.id, name: "b.png" });
    expect(moved.old_record).toMatchObject({ id: ins.record.id, name: "a.png" });
    expect(copied.record.id).not.toBe(ins.record.id);
    expect(copied.record.metadata).toMatchObject({ size: 5 });
    expect(ins.columns).toContainEqual({ name: "bucket_id", type: "text" });
    expect(ins.columns).toContainEqual({ name: "metadata", type: "jsonb" });
    c.close();
  });

  it("sends bucket changes on storage.buckets, and refuses unknown storage tables and bad filters", async () => {
    const p = await createProject("files-rt-buckets");
    const c = await connectRealtime(p, p.serviceKey);
    await joinFiles(c, "b", [{ event: "*", schema: "storage", table: "buckets" }]);
    await joinFiles(c, "all", [{ event: "INSERT", schema: "storage", table: "*" }]);
    for (const [binding, words] of [
      [{ event: "*", schema: "storage", table: "nope" }, "storage.nope"],
      [{ event: "*", schema: "storage", table: "objects", filter: "size=eq.1" }, "size"],
      [{ event: "*", schema: "storage", filter: "name=eq.a" }, "filter needs a table"],
    ] as const) {
      const r = await c.join(`bad-${words}`, { postgres_changes: [binding] });
      expect(r.status, JSON.stringify(binding)).toBe("error");
      expect(String(r.response.reason)).toContain(words);
    }
    await ok(storage(p, "/bucket", { method: "POST", body: { id: "docs", public: true } }));
    await ok(storage(p, "/bucket/docs", { method: "PUT", body: { public: false } }));
    await upload(p, "docs/a.txt", "a");
    await waitName(c, "all", "docs", "a.txt");
    await ok(storage(p, "/bucket/docs/empty", { method: "POST" }));
    await ok(storage(p, "/bucket/docs", { method: "DELETE" }));
    await c.waitFor(
      (f) => f[2] === "realtime:b" && f[3] === "postgres_changes" && (f[4].data as Data).type === "DELETE",
    );
    const b = c.changes("b") as Data[];
    expect(b.map((d) => d.type)).toEqual(["INSERT", "UPDATE", "DELETE"]);
    expect(b[0]!.table).toBe("buckets");
    expect(b[0]!.record).toMatchObject({ id: "docs", name: "docs", public: true });
    expect(b[1]!.record).toMatchObject({ public: false });
    expect(b[2]!.old_record).toMatchObject({ id: "docs" });
    // table "*" on schema storage: objects and buckets, never schema tables.
    expect((c.changes("all") as Data[]).map((d) => `${d.table}:${d.type}`)).toEqual([
      "buckets:INSERT",
      "objects:INSERT",
    ]);
    c.close();
  });

  it("sends each subscriber only the files it could read: bucket policies, owners, members, apps; a revoked grant stops", async () => {
    const owner = await signup(api, "files-owner");
    const reader = await signup(api, "files-reader");
    const p = (await createOwnedProject(api, owner.accessToken, "files-matrix")) as TestProject;
    await addMember(api, owner.accessToken, p.id, reader.email, "reader");
    const outsider = await account(`files-outsider-${crypto.randomUUID()}`);
    await bucket(p, "pub", "public", "members");
    await bucket(p, "mem", "members", "members");
    await bucket(p, "own", "owner", "owner");
    await bucket(p, "svc", "service", "service");
    const dev = await signup(api, "files-dev");
    const { clientId } = await registerApp(api, dev.accessToken, "Files RT app", {
      "com.example.notes": { columns: { id: { type: "uuid", primaryKey: true, default: "random" } } },
    });
    const app = await connectApp(api, owner.accessToken, {
      clientId,
      scope: "db:com.example.notes:read storage:mem:read",
      projectId: p.id,
    });

    const subscribers: Record<string, string> = {
      anon: p.anonKey,
      outsider,
      reader: reader.accessToken,
      owner: owner.accessToken,
      app: app.access_token,
      service: p.serviceKey,
    };
    const clients: Record<string, PhxClient> = {};
    for (const [who, token] of Object.entries(subscribers)) {
      const c = await connectRealtime(p, p.anonKey);
      // Every credential may join; what it is sent is decided per event.
      await joinFiles(c, "m", [{ event: "*", schema: "storage", table: "objects" }], token);
      clients[who] = c;
    }
    await upload(p, "pub/a.txt", "a");
    await upload(p, "mem/a.txt", "a");
    await upload(p, "svc/a.txt", "a");
    await upload(p, "own/owner.txt", "o", { key: owner.accessToken });
    await upload(p, "own/reader.txt", "r", { key: reader.accessToken });
    await upload(p, "pub/z.txt", "z");
    await upload(p, "mem/z.txt", "z");
    // Delivery is in LSN order per socket: once the last visible event is in, nothing else comes.
    for (const who of ["anon", "outsider"]) await waitName(clients[who]!, "m", "pub", "z.txt");
    for (const who of ["reader", "owner", "app", "service"])
      await waitName(clients[who]!, "m", "mem", "z.txt");
    const got = Object.fromEntries(Object.entries(clients).map(([who, c]) => [who, seen(c, "m")]));
    expect(got).toEqual({
      anon: ["INSERT pub/a.txt", "INSERT pub/z.txt"],
      outsider: ["INSERT pub/a.txt", "INSERT pub/z.txt"],
      reader: [
        "INSERT pub/a.txt",
        "INSERT mem/a.txt",
        "INSERT own/reader.txt",
        "INSERT pub/z.txt",
        "INSERT mem/z.txt",
      ],
      owner: [
        "INSERT pub/a.txt",
        "INSERT mem/a.txt",
        "INSERT own/owner.txt",
        "INSERT pub/z.txt",
        "INSERT mem/z.txt",
      ],
      app: ["INSERT mem/a.txt", "INSERT mem/z.txt"],
      service: [
        "INSERT pub/a.txt",
        "INSERT mem/a.txt",
        "INSERT svc/a.txt",
        "INSERT own/owner.txt",
        "INSERT own/reader.txt",
        "INSERT pub/z.txt",
        "INSERT mem/z.txt",
      ],
    });

    // A bucket made service-only: its next events go to the service key alone.
    await ok(
      storage(p, "/bucket/mem", { method: "PUT", body: { policy: { read: "service", write: "service" } } }),
    );
    await upload(p, "mem/hidden.txt", "h");
    await upload(p, "pub/after.txt", "x");
    await waitName(clients.reader!, "m", "pub", "after.txt");
    await waitName(clients.service!, "m", "pub", "after.txt");
    expect(seen(clients.reader!, "m").slice(-2)).toEqual(["INSERT mem/z.txt", "INSERT pub/after.txt"]);
    expect(seen(clients.service!, "m").slice(-2)).toEqual(["INSERT mem/hidden.txt", "INSERT pub/after.txt"]);

    // Revoking the app's grant closes its channel; nothing more reaches it.
    await ok(
      storage(p, "/bucket/mem", { method: "PUT", body: { policy: { read: "members", write: "members" } } }),
    );
    const grant = await grantOf(api, owner.accessToken, clientId, p.id);
    await revokeGrant(api, owner.accessToken, grant.id);
    await clients.app!.waitFor((f) => f[2] === "realtime:m" && f[3] === "phx_close");
    const before = clients.app!.frames.length;
    await upload(p, "mem/after-revoke.txt", "r");
    await waitName(clients.owner!, "m", "mem", "after-revoke.txt");
    expect(clients.app!.frames.slice(before).some((f) => f[3] === "postgres_changes")).toBe(false);
    for (const c of Object.values(clients)) c.close();
  });
});

describe("file events across hibernation", () => {
  it("a storage binding (with its filter) and a storage.objects pull come back when the object wakes", async () => {
    const p = await createProject("files-wake");
    await bucket(p, "a", "public", "members");
    await bucket(p, "b", "public", "members");
    const rt = await connectRealtime(p, p.anonKey);
    await joinFiles(rt, "w", [
      { event: "INSERT", schema: "storage", table: "objects", filter: "bucket_id=eq.b" },
    ]);
    const sync = await connectSync(p, p.anonKey);
    await sync.pull(null, ["storage.objects"]);
    const from = sync.frames.length;
    // Hibernation drops memory, keeps storage and the sockets: rebuild the object's state.
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      (instance as unknown as { load(): void }).load();
    });
    await upload(p, "a/1.txt", "x");
    await upload(p, "b/2.txt", "y");
    await waitName(rt, "w", "b", "2.txt");
    expect(seen(rt, "w")).toEqual(["INSERT b/2.txt"]);
    await sync.waitFor(
      (f) => f.type === "changes" && JSON.stringify(f.changes).includes("2.txt"),
      10_000,
      from,
    );
    expect(sync.changes(from).map((ch) => `${ch.row?.bucket_id}/${ch.row?.name}`)).toEqual([
      "a/1.txt",
      "b/2.txt",
    ]);
    rt.close();
    sync.close();
  });
});

describe("sync: file metadata", () => {
  it("follows storage.objects: a snapshot of what the principal may read, then live changes keyed by id", async () => {
    const p = await createProject("files-sync");
    await bucket(p, "pub", "public", "members");
    await bucket(p, "mem", "members", "members");
    await upload(p, "pub/a.txt", "a");
    await upload(p, "mem/secret.txt", "s");
    const c = await connectSync(p, p.anonKey);
    const { cursor } = await c.pull(null, ["storage.objects"]);
    const snap = c.frames.filter((f) => f.type === "snapshot");
    expect(
      snap.flatMap((f) => (f.rows as Record<string, unknown>[]).map((r) => `${r.bucket_id}/${r.name}`)),
    ).toEqual(["pub/a.txt"]);
    expect(snap[0]).toMatchObject({ table: "storage.objects" });
    const from = c.frames.length;
    await upload(p, "pub/b.txt", "bb");
    await upload(p, "mem/hidden.txt", "h");
    await files(p, "move", "pub", "b.txt", "c.txt");
    await remove(p, "pub", ["a.txt"]);
    const last = await c.waitFor(
      (f) => f.type === "changes" && JSON.stringify(f.changes).includes('"delete"'),
      10_000,
      from,
    );
    const live = c.changes(from);
    expect(live.map((ch) => `${ch.op} ${ch.row?.name ?? ""}`)).toEqual([
      "insert b.txt",
      "update c.txt",
      "delete ",
    ]);
    expect(live.every((ch) => ch.table === "storage.objects" && Object.keys(ch.pk).join() === "id")).toBe(
      true,
    );
    expect(live[1]!.pk).toEqual(live[0]!.pk);
    expect(live[0]!.row).toMatchObject({ bucket_id: "pub", metadata: { size: 2, mimetype: "text/plain" } });
    // The replica a client builds is exactly what the storage API lists.
    const replica = applyAll(new Map(), c.frames, (r) => String(r.id));
    expect([...replica.values()].map((r) => `${r.bucket_id}/${r.name}`)).toEqual(["pub/c.txt"]);

    // Catching up from the WAL (SQL path) sends the same changes as live delivery did.
    const d = await connectSync(p, p.anonKey);
    const caught = await d.pull(cursor, ["storage.objects"]);
    expect(caught.changes).toEqual(live);
    expect(caught.cursor).toBe(last.cursor);

    // Read-only: a push is rejected, recorded, and changes nothing.
    const [res] = await c.push("files-client", [
      { id: 1, op: "delete", table: "storage.objects", pk: { id: live[0]!.pk.id } },
    ]);
    expect(res).toMatchObject({ status: "rejected", error: { code: "HEARTH_FORBIDDEN" } });
    expect(res!.error!.message).toContain("read-only");
    const list = (await (
      await storage(p, "/object/list/pub", { method: "POST", body: { prefix: "" } })
    ).json()) as { name: string }[];
    expect(list.map((f) => f.name)).toEqual(["c.txt"]);
    c.close();
    d.close();
  });

  it("cuts catch-up, snapshots and live changes per account (owner buckets, members)", async () => {
    const owner = await signup(api, "files-sync-owner");
    const p = (await createOwnedProject(api, owner.accessToken, "files-sync-acc")) as TestProject;
    const other = await account(`files-sync-other-${crypto.randomUUID()}`);
    await bucket(p, "own", "owner", "owner");
    await upload(p, "own/o1.txt", "o", { key: owner.accessToken });
    await upload(p, "own/x1.txt", "x", { key: other });
    const co = await connectSync(p, owner.accessToken);
    const cx = await connectSync(p, other);
    // From cursor 0: the whole history out of the WAL, cut per account.
    const o = await co.pull(0, ["storage.objects", "storage.buckets"]);
    const x = await cx.pull(0, ["storage.objects", "storage.buckets"]);
    expect(o.changes.map((ch) => `${ch.table} ${ch.op} ${ch.row?.name}`)).toEqual([
      "storage.buckets insert own",
      "storage.objects insert o1.txt",
    ]);
    // `own` buckets are visible to any account (it may write its own files there).
    expect(x.changes.map((ch) => `${ch.table} ${ch.op} ${ch.row?.name}`)).toEqual([
      "storage.buckets insert own",
      "storage.objects insert x1.txt",
    ]);
    const from = cx.frames.length;
    await upload(p, "own/o2.txt", "o", { key: owner.accessToken });
    await upload(p, "own/x2.txt", "x", { key: other });
    await cx.waitFor((f) => f.type === "changes", 10_000, from);
    expect(cx.changes(from).map((ch) => ch.row?.name)).toEqual(["x2.txt"]);
    co.close();
    cx.close();
  });

  it("cuts the replica again (resync) when a bucket's read policy or the principal's membership changes", async () => {
    const owner = await signup(api, "files-resync-owner");
    const member = await signup(api, "files-resync-member");
    const p = (await createOwnedProject(api, owner.accessToken, "files-resync")) as TestProject;
    await addMember(api, owner.accessToken, p.id, member.email, "reader");
    await bucket(p, "pub", "public", "members");
    await bucket(p, "mem", "members", "members");
    await upload(p, "pub/a.txt", "a");
    await upload(p, "mem/m.txt", "m");
    const anon = await connectSync(p, p.anonKey);
    const { cursor } = await anon.pull(null, ["storage.objects"]);
    const names = (c: typeof anon, from = 0) =>
      [...applyAll(new Map(), c.frames.slice(from), (r) => String(r.id)).values()]
        .map((r) => `${r.bucket_id}/${r.name}`)
        .sort();
    expect(names(anon)).toEqual(["pub/a.txt"]);

    // mem becomes public: live, the anon replica is cut again and now holds mem's files.
    const from = anon.frames.length;
    await ok(
      storage(p, "/bucket/mem", { method: "PUT", body: { policy: { read: "public", write: "members" } } }),
    );
    await anon.waitFor((f) => f.type === "resync", 10_000, from);
    expect(anon.frames.slice(from).find((f) => f.type === "resync")).toMatchObject({
      reason: "access_changed",
    });
    await anon.waitFor((f) => f.type === "live", 10_000, from);
    expect(names(anon)).toEqual(["mem/m.txt", "pub/a.txt"]);

    // Catching up across the change from an older cursor resyncs too (the WAL path).
    const late = await connectSync(p, p.anonKey);
    const at = late.frames.length;
    await late.pull(cursor, ["storage.objects"]);
    expect(late.frames.slice(at).map((f) => f.type)).toContain("resync");
    expect(names(late, at)).toEqual(["mem/m.txt", "pub/a.txt"]);

    // mem back to members; a member loses its membership: its replica loses mem's files.
    await ok(
      storage(p, "/bucket/mem", { method: "PUT", body: { policy: { read: "members", write: "members" } } }),
    );
    const m = await connectSync(p, member.accessToken);
    await m.pull(null, ["storage.objects"]);
    expect(names(m)).toEqual(["mem/m.txt", "pub/a.txt"]);
    const before = m.frames.length;
    await call(`/v1/projects/${p.id}/members/${member.id}`, { method: "DELETE", key: owner.accessToken });
    // The next change makes the socket check its token again: the new membership restarts the pull.
    await upload(p, "pub/b.txt", "b");
    await m.waitFor((f) => f.type === "resync", 10_000, before);
    await m.waitFor((f) => f.type === "live", 10_000, before);
    expect(names(m)).toEqual(["pub/a.txt", "pub/b.txt"]);
    for (const c of [anon, late, m]) c.close();
  });

  it("reserves the names storage.objects and storage.buckets in the schema", async () => {
    const p = await createProject("files-reserved");
    const res = await putSchema(p, {
      tables: { "storage.objects": { columns: { id: { type: "integer", primaryKey: true } } } },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("reserved");
  });
});

describe("WAL trimming without flushes", () => {
  it("the alarm trims a file-only project's WAL under the retention; sync cursors below it resync", async () => {
    const p = await createProject("files-trim");
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.walRetention = { changes: 3, ms: 0 };
    });
    await bucket(p, "b");
    for (let i = 0; i < 8; i++) await upload(p, `b/f${i}.txt`, "x");
    // 9 entries (a bucket, 8 objects), no table: nothing to flush. The change feed has
    // gone past them (the alarm never trims what it has not delivered).
    await runInDurableObject(stubOf(p), (instance: ProjectDO) =>
      (instance as unknown as { feed: { pump(): Promise<void> } }).feed.pump(),
    );
    const before = await runInDurableObject(stubOf(p), (_i, state) => walFloor(state.storage.sql));
    expect(before).toBe(0);
    expect(await runDurableObjectAlarm(stubOf(p))).toBe(true);
    const after = await runInDurableObject(stubOf(p), (_i, state) => ({
      floor: walFloor(state.storage.sql),
      rows: Number(state.storage.sql.exec("SELECT count(*) AS n FROM _hearth_wal").one().n),
    }));
    expect(after).toEqual({ floor: 6, rows: 3 });
    const c = await connectSync(p, p.serviceKey);
    const at = c.frames.length;
    const { changes } = await c.pull(6, ["storage.objects"]);
    expect(c.frames[at]).toMatchObject({ type: "catchup", cursor: 6 });
    expect(changes.map((ch) => ch.row?.name)).toEqual(["f5.txt", "f6.txt", "f7.txt"]);
    const again = c.frames.length;
    await c.pull(5, ["storage.objects"]);
    expect(c.frames[again]).toMatchObject({ type: "resync", reason: "cursor_too_old" });
    c.close();
  });

  it("keeps what the change feed has not delivered, young entries under the age rule, and does nothing within the count", async () => {
    const p = await createProject("files-trim-rules");
    await bucket(p, "b");
    for (let i = 0; i < 9; i++) await upload(p, `b/f${i}.txt`, "x");
    const cuts = await runInDurableObject(stubOf(p), (_i, state) => {
      const sql = state.storage.sql;
      const now = Date.now();
      const out: number[] = [];
      out.push(trimIdleWal(state.storage, { changes: 20, ms: 0 }, 10, now)); // 10 entries: within the count
      out.push(trimIdleWal(state.storage, { changes: 2, ms: 60_000 }, 10, now)); // all young
      out.push(trimIdleWal(state.storage, { changes: 2, ms: 0 }, 6, now)); // the feed is at 6
      out.push(walFloor(sql));
      out.push(trimIdleWal(state.storage, { changes: 2, ms: 0 }, 10, now));
      out.push(walFloor(sql));
      return out;
    });
    expect(cuts).toEqual([0, 0, 4, 4, 8, 8]);
  });
});
