/**
 * Files through an unmodified supabase-js (`createClient(url, key).storage`) against the real
 * `npm start` server (global-setup.ts): buckets, uploads (raw, Blob as multipart, streamed),
 * downloads checked byte for byte, info, exists, list (prefix, limit, offset, sort, search),
 * move, copy, bulk remove, public and signed URLs (expiry, tampering), signed uploads, Range
 * requests, limits and quota, bad input, the policy and grant matrix, an interrupted upload,
 * export with files, and a 200 MB streamed upload during which workerd's resident memory
 * stays bounded.
 */
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { unzipSync } from "fflate";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, inject, it } from "vitest";
import ws from "ws";
import {
  type Api,
  addMember,
  connectApp,
  createOwnedProject,
  grantOf,
  registerApp,
  revokeGrant,
  signup,
} from "../helpers/oauth.ts";
import { createProject, type Project, type Server, workerdRss } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };
const api: Api = { origin: server.url, fetch: (url, init) => fetch(url, init) };
// The local default secret of `npm start` (workers/env.ts DEV_JWT_SECRET).
const DEV_JWT_SECRET = "dev-jwt-secret-do-not-use-in-production-0123456789";

function client(url: string, key: string): SupabaseClient {
  return createClient(url, key, {
    realtime: { transport: ws as never }, // Node 20 has no WebSocket of its own
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

async function bytesOf(blob: Blob | null): Promise<Buffer> {
  expect(blob).not.toBeNull();
  return Buffer.from(await blob!.arrayBuffer());
}

/** R2's ETag of a single-part object: its MD5. */
function md5(b: Uint8Array): string {
  return createHash("md5").update(b).digest("hex");
}

async function storageCall(
  project: Project,
  path: string,
  init: RequestInit & { key?: string | null } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = init.key === undefined ? project.serviceKey : init.key;
  if (key) headers.set("authorization", `Bearer ${key}`);
  return fetch(`${project.url}/storage/v1${path}`, { ...init, headers });
}

/** A POST whose path goes out byte for byte (no URL normalization on the client). */
function rawPost(path: string, key: string): Promise<{ status: number; body: string }> {
  const base = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "text/plain", "content-length": "1" },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end("x");
  });
}

describe("buckets and objects with the service key", () => {
  let project: Project;
  let sb: SupabaseClient;
  const png = randomBytes(5000);

  beforeAll(async () => {
    project = await createProject(server, "storage-basics");
    sb = client(project.url, project.serviceKey);
  });

  it("creates, lists, gets and updates buckets", async () => {
    const created = await sb.storage.createBucket("photos", {
      public: false,
      fileSizeLimit: 64 * 1024,
      allowedMimeTypes: ["image/*", "text/plain"],
    });
    expect(created.error).toBeNull();
    expect(created.data).toEqual({ name: "photos" });
    expect((await sb.storage.createBucket("pub", { public: true })).error).toBeNull();

    const dup = await sb.storage.createBucket("photos");
    expect(dup.error?.status).toBe(409);

    const bad = await sb.storage.createBucket("../etc");
    expect(bad.error?.status).toBe(400);

    const list = await sb.storage.listBuckets();
    expect(list.error).toBeNull();
    expect(list.data!.map((b) => b.id).sort()).toEqual(["photos", "pub"]);
    const photos = await sb.storage.getBucket("photos");
    expect(photos.data).toMatchObject({
      id: "photos",
      name: "photos",
      public: false,
      file_size_limit: 64 * 1024,
      allowed_mime_types: ["image/*", "text/plain"],
    });
    const updated = await sb.storage.updateBucket("photos", {
      public: false,
      fileSizeLimit: 128 * 1024,
      allowedMimeTypes: ["image/*", "text/plain"],
    });
    expect(updated.error).toBeNull();
    expect((await sb.storage.getBucket("photos")).data?.file_size_limit).toBe(128 * 1024);
    const missing = await sb.storage.getBucket("nope");
    expect(missing.error?.status).toBe(404);
  });

  it("uploads, downloads byte for byte, reports info and existence", async () => {
    const up = await sb.storage.from("photos").upload("cats/tom.png", png, { contentType: "image/png" });
    expect(up.error).toBeNull();
    expect(up.data).toMatchObject({ path: "cats/tom.png", fullPath: "photos/cats/tom.png" });
    expect(typeof up.data!.id).toBe("string");

    const down = await sb.storage.from("photos").download("cats/tom.png");
    expect(down.error).toBeNull();
    expect((await bytesOf(down.data)).equals(png)).toBe(true);

    const info = await sb.storage.from("photos").info("cats/tom.png");
    expect(info.error).toBeNull();
    expect(info.data).toMatchObject({
      name: "cats/tom.png",
      bucketId: "photos",
      size: png.length,
      contentType: "image/png",
      etag: `"${md5(png)}"`,
    });
    expect((await sb.storage.from("photos").exists("cats/tom.png")).data).toBe(true);
    expect((await sb.storage.from("photos").exists("cats/none.png")).data).toBe(false);
    const absent = await sb.storage.from("photos").download("cats/none.png");
    expect(absent.error).not.toBeNull();
  });

  it("refuses a second upload without upsert, replaces with upsert and update", async () => {
    const again = await sb.storage.from("photos").upload("cats/tom.png", png, { contentType: "image/png" });
    expect(again.error?.status).toBe(409);
    const v2 = randomBytes(3000);
    const upsert = await sb.storage
      .from("photos")
      .upload("cats/tom.png", v2, { contentType: "image/png", upsert: true });
    expect(upsert.error).toBeNull();
    expect((await bytesOf((await sb.storage.from("photos").download("cats/tom.png")).data)).equals(v2)).toBe(
      true,
    );
    const v3 = Buffer.from("plain text now");
    const upd = await sb.storage.from("photos").update("cats/tom.png", v3, { contentType: "text/plain" });
    expect(upd.error).toBeNull();
    expect((await bytesOf((await sb.storage.from("photos").download("cats/tom.png")).data)).equals(v3)).toBe(
      true,
    );
    const updMissing = await sb.storage
      .from("photos")
      .update("cats/none.txt", v3, { contentType: "text/plain" });
    expect(updMissing.error?.status).toBe(404);
    // Replaced versions leave no bytes behind.
    const usage = await (await storageCall(project, "/usage")).json();
    expect(usage).toMatchObject({ objects: 1, storedBytes: v3.length, pendingUploads: 0, garbageKeys: 0 });
  });

  it("uploads a Blob as multipart, with its type and metadata", async () => {
    const body = randomBytes(70_000);
    const blob = new Blob([body], { type: "image/jpeg" });
    const up = await sb.storage.from("photos").upload("dogs/rex.jpg", blob, { metadata: { kind: "dog" } });
    expect(up.error).toBeNull();
    expect(
      (await bytesOf((await sb.storage.from("photos").download("dogs/rex.jpg")).data)).equals(body),
    ).toBe(true);
    const info = await sb.storage.from("photos").info("dogs/rex.jpg");
    expect(info.data).toMatchObject({
      contentType: "image/jpeg",
      size: body.length,
      metadata: { kind: "dog" },
    });
  });

  it("lists a folder with limit, offset, sort and search", async () => {
    const files = ["docs/a.txt", "docs/b.txt", "docs/C.txt", "docs/sub/d.txt", "docs/sub/e.txt"];
    for (const [i, f] of files.entries()) {
      const r = await sb.storage
        .from("photos")
        .upload(f, Buffer.from(`file ${i}`), { contentType: "text/plain" });
      expect(r.error).toBeNull();
    }
    const root = await sb.storage.from("photos").list();
    expect(root.data!.map((e) => e.name)).toEqual(["cats", "docs", "dogs"]);
    expect(root.data!.every((e) => e.id === null && e.metadata === null)).toBe(true);

    const docs = await sb.storage.from("photos").list("docs");
    expect(docs.error).toBeNull();
    expect(docs.data!.map((e) => e.name)).toEqual(["C.txt", "a.txt", "b.txt", "sub"]);
    const a = docs.data!.find((e) => e.name === "a.txt")!;
    expect(a.metadata).toMatchObject({
      size: 6,
      mimetype: "text/plain",
      contentLength: 6,
      httpStatusCode: 200,
    });
    expect(docs.data!.find((e) => e.name === "sub")!.id).toBeNull();

    const page = await sb.storage.from("photos").list("docs", { limit: 2, offset: 1 });
    expect(page.data!.map((e) => e.name)).toEqual(["a.txt", "b.txt"]);
    const desc = await sb.storage.from("photos").list("docs/", { sortBy: { column: "name", order: "desc" } });
    expect(desc.data!.map((e) => e.name)).toEqual(["sub", "b.txt", "a.txt", "C.txt"]);
    const byTime = await sb.storage
      .from("photos")
      .list("docs", { sortBy: { column: "created_at", order: "asc" } });
    expect(byTime.data!.map((e) => e.name)).toEqual(["a.txt", "b.txt", "C.txt", "sub"]);
    const search = await sb.storage.from("photos").list("docs", { search: "c" });
    expect(search.data!.map((e) => e.name)).toEqual(["C.txt"]);
    const badSort = await sb.storage
      .from("photos")
      .list("docs", { sortBy: { column: "size; DROP TABLE x", order: "asc" } });
    expect(badSort.error?.status).toBe(400);
  });

  it("moves, copies and removes in bulk", async () => {
    const mv = await sb.storage.from("photos").move("docs/a.txt", "archive/a.txt");
    expect(mv.error).toBeNull();
    expect((await sb.storage.from("photos").exists("docs/a.txt")).data).toBe(false);
    expect((await bytesOf((await sb.storage.from("photos").download("archive/a.txt")).data)).toString()).toBe(
      "file 0",
    );
    const cp = await sb.storage.from("photos").copy("archive/a.txt", "archive/a-copy.txt");
    expect(cp.error).toBeNull();
    expect(cp.data).toEqual({ path: "photos/archive/a-copy.txt" });
    expect(
      (await bytesOf((await sb.storage.from("photos").download("archive/a-copy.txt")).data)).toString(),
    ).toBe("file 0");
    const toPub = await sb.storage
      .from("photos")
      .copy("archive/a.txt", "a.txt", { destinationBucket: "pub" });
    expect(toPub.error).toBeNull();
    const clash = await sb.storage.from("photos").move("archive/a.txt", "archive/a-copy.txt");
    expect(clash.error?.status).toBe(409);

    const rm = await sb.storage
      .from("photos")
      .remove(["archive/a.txt", "archive/a-copy.txt", "archive/none"]);
    expect(rm.error).toBeNull();
    expect(rm.data!.map((o) => o.name).sort()).toEqual(["archive/a-copy.txt", "archive/a.txt"]);
    expect((await sb.storage.from("photos").list("archive")).data).toEqual([]);
  });

  it("serves Range requests with 206, and 416 past the end", async () => {
    const body = randomBytes(10_000);
    await sb.storage.from("pub").upload("media/clip.bin", body, { contentType: "text/plain" });
    const url = sb.storage.from("pub").getPublicUrl("media/clip.bin").data.publicUrl;
    const mid = await fetch(url, { headers: { range: "bytes=100-199" } });
    expect(mid.status).toBe(206);
    expect(mid.headers.get("content-range")).toBe("bytes 100-199/10000");
    expect(Buffer.from(await mid.arrayBuffer()).equals(body.subarray(100, 200))).toBe(true);
    const tail = await fetch(url, { headers: { range: "bytes=-10" } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(9990))).toBe(true);
    const open = await fetch(url, { headers: { range: "bytes=9000-" } });
    expect(Buffer.from(await open.arrayBuffer()).equals(body.subarray(9000))).toBe(true);
    const past = await fetch(url, { headers: { range: "bytes=20000-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */10000");
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
  });

  it("empties and deletes buckets", async () => {
    await sb.storage.createBucket("scratch");
    await sb.storage.from("scratch").upload("x.txt", Buffer.from("x"));
    const notEmpty = await sb.storage.deleteBucket("scratch");
    expect(notEmpty.error?.status).toBe(409);
    expect((await sb.storage.emptyBucket("scratch")).error).toBeNull();
    expect((await sb.storage.from("scratch").list()).data).toEqual([]);
    expect((await sb.storage.deleteBucket("scratch")).error).toBeNull();
    expect((await sb.storage.getBucket("scratch")).error?.status).toBe(404);
  });
});

describe("public and signed URLs", () => {
  let project: Project;
  let sb: SupabaseClient;
  let anon: SupabaseClient;
  const secret = randomBytes(2048);

  beforeAll(async () => {
    project = await createProject(server, "storage-urls");
    sb = client(project.url, project.serviceKey);
    anon = client(project.url, project.anonKey);
    await sb.storage.createBucket("open", { public: true });
    await sb.storage.createBucket("private");
    await sb.storage
      .from("open")
      .upload("hello world.txt", Buffer.from("hello"), { contentType: "text/plain" });
    await sb.storage
      .from("private")
      .upload("secret.bin", secret, { contentType: "application/octet-stream" });
  });

  it("serves public buckets to anyone and private ones to no one", async () => {
    const pub = sb.storage.from("open").getPublicUrl("hello world.txt").data.publicUrl;
    const res = await fetch(pub);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("hello");
    const priv = await fetch(sb.storage.from("private").getPublicUrl("secret.bin").data.publicUrl);
    expect(priv.status).toBe(403);
    const body = await priv.json();
    expect(body).toMatchObject({ statusCode: "403", code: "HEARTH_STORAGE_DENIED" });
    // The anon key reads the public bucket, not the private one.
    expect((await anon.storage.from("open").download("hello world.txt")).error).toBeNull();
    expect((await anon.storage.from("private").download("secret.bin")).error).not.toBeNull();
  });

  it("signs download URLs that work without a key, and refuses tampered ones", async () => {
    const signed = await sb.storage.from("private").createSignedUrl("secret.bin", 60);
    expect(signed.error).toBeNull();
    const res = await fetch(signed.data!.signedUrl);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(secret)).toBe(true);

    const url = new URL(signed.data!.signedUrl);
    const token = url.searchParams.get("token")!;
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 3600 })).toString("base64url")}.${s}`;
    url.searchParams.set("token", forged);
    const tampered = await fetch(url);
    expect(tampered.status).toBe(403);
    expect(await tampered.json()).toMatchObject({ code: "HEARTH_STORAGE_SIGNATURE_INVALID" });

    // A valid token for another object does not open this one.
    const other = await sb.storage.from("open").createSignedUrl("hello world.txt", 60);
    const otherToken = new URL(other.data!.signedUrl).searchParams.get("token")!;
    const swapped = new URL(signed.data!.signedUrl);
    swapped.searchParams.set("token", otherToken);
    expect((await fetch(swapped)).status).toBe(403);

    const missingToken = new URL(signed.data!.signedUrl);
    missingToken.searchParams.delete("token");
    expect((await fetch(missingToken)).status).toBe(403);
  });

  it("refuses an expired signed URL with 400", async () => {
    // Signed as the server signs, with an expiry in the past (no waiting in the test).
    const key = createHash("sha256").update(`hearth-storage-url\u0000${DEV_JWT_SECRET}`).digest();
    const token = await new SignJWT({ ref: project.id, url: "private/secret.bin", right: "read" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new Uint8Array(key));
    const res = await fetch(`${project.url}/storage/v1/object/sign/private/secret.bin?token=${token}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "HEARTH_STORAGE_URL_EXPIRED", error: "ExpiredToken" });
  });

  it("signs several URLs at once, with an error for a missing object", async () => {
    const many = await sb.storage.from("private").createSignedUrls(["secret.bin", "missing.bin"], 60);
    expect(many.error).toBeNull();
    expect(many.data![0]!.error).toBeNull();
    expect(many.data![1]!.error).not.toBeNull();
    expect(many.data![1]!.signedUrl).toBeNull();
    const res = await fetch(many.data![0]!.signedUrl!);
    expect(Buffer.from(await res.arrayBuffer()).equals(secret)).toBe(true);
    const download = await sb.storage
      .from("private")
      .createSignedUrl("secret.bin", 60, { download: "x.bin" });
    const d = await fetch(download.data!.signedUrl!);
    expect(d.headers.get("content-disposition")).toContain("x.bin");
  });

  it("signs upload URLs that anyone holding them can use once per path", async () => {
    const { data, error } = await sb.storage.from("private").createSignedUploadUrl("inbox/note.txt");
    expect(error).toBeNull();
    const up = await anon.storage
      .from("private")
      .uploadToSignedUrl("inbox/note.txt", data!.token, Buffer.from("from a signed URL"), {
        contentType: "text/plain",
      });
    expect(up.error).toBeNull();
    expect(up.data?.fullPath).toBe("private/inbox/note.txt");
    const got = await sb.storage.from("private").download("inbox/note.txt");
    expect((await bytesOf(got.data)).toString()).toBe("from a signed URL");
    // The token names its path: it does not upload elsewhere.
    const elsewhere = await anon.storage
      .from("private")
      .uploadToSignedUrl("inbox/other.txt", data!.token, Buffer.from("x"), { contentType: "text/plain" });
    expect(elsewhere.error?.status).toBe(403);
  });
});

describe("limits, quota and bad input", () => {
  let project: Project;
  let sb: SupabaseClient;

  beforeAll(async () => {
    project = await createProject(server, "storage-limits");
    sb = client(project.url, project.serviceKey);
    await sb.storage.createBucket("small", {
      public: false,
      fileSizeLimit: 1024,
      allowedMimeTypes: ["image/png"],
    });
    await sb.storage.createBucket("any");
  });

  it("refuses a file over the bucket's size limit with 413 and stores nothing", async () => {
    const r = await sb.storage
      .from("small")
      .upload("big.png", randomBytes(2048), { contentType: "image/png" });
    expect(r.error?.status).toBe(413);
    const raw = await storageCall(project, "/object/small/big2.png", {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: randomBytes(2048),
    });
    expect(raw.status).toBe(413);
    expect(await raw.json()).toMatchObject({ code: "HEARTH_STORAGE_TOO_LARGE", error: "EntityTooLarge" });
    // Multipart (no length known up front): cut off while streaming.
    const blob = await sb.storage
      .from("small")
      .upload("big3.png", new Blob([randomBytes(4096)], { type: "image/png" }));
    expect(blob.error?.status).toBe(413);
    const usage = await (await storageCall(project, "/usage")).json();
    expect(usage).toMatchObject({ objects: 0, pendingUploads: 0 });
  });

  it("refuses a type the bucket does not allow with 415", async () => {
    const r = await sb.storage
      .from("small")
      .upload("doc.json", Buffer.from("{}"), { contentType: "application/json" });
    expect(r.error?.status).toBe(415);
    const raw = await storageCall(project, "/object/small/doc2.json", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(await raw.json()).toMatchObject({ code: "HEARTH_STORAGE_MIME_TYPE", error: "InvalidMimeType" });
    expect(
      (await sb.storage.from("small").upload("ok.png", randomBytes(100), { contentType: "image/png" })).error,
    ).toBeNull();
  });

  it("enforces the project's byte quota before storing", async () => {
    const set = await storageCall(project, "/quota", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ quotaBytes: 1000 }),
    });
    expect(set.status).toBe(200);
    const r = await sb.storage.from("any").upload("q1.bin", randomBytes(950));
    expect(r.error?.status).toBe(413);
    const raw = await storageCall(project, "/object/any/q2.bin", {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: randomBytes(950),
    });
    expect(await raw.json()).toMatchObject({ code: "HEARTH_STORAGE_QUOTA_EXCEEDED" });
    expect((await sb.storage.from("any").upload("q3.bin", randomBytes(800))).error).toBeNull();
    const usage = await (await storageCall(project, "/usage")).json();
    expect(usage).toMatchObject({ storedBytes: 900, quotaBytes: 1000 });
    await storageCall(project, "/quota", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ quotaBytes: null }),
    });
  });

  it("refuses traversal, empty, over-long and invalid names and unknown buckets, never with a 500", async () => {
    const cases: [string, number][] = [
      // Sent as is (fetch would resolve the dot segments before sending).
      ["/object/any/a/../../b.txt", 400],
      // (a lone %2e%2e segment is resolved by the URL parser itself, like "..")
      ["/object/any/a/%2e%2e%2F%2e%2e%2Fb.txt", 400],
      ["/object/any/%2e%2Fb.txt", 400],
      ["/object/any/..%2Fb.txt", 400],
      ["/object/any/a//b.txt", 400],
      ["/object/any/", 400],
      [`/object/any/${"x".repeat(1100)}`, 400],
      ["/object/any/%C3%28.txt", 400],
      ["/object/any/%ZZ.txt", 400],
      ["/object/any/ctl%01.txt", 400],
      ["/object/nosuchbucket/a.txt", 404],
      ["/object/bad%20bucket!/a.txt", 400],
    ];
    for (const [path, status] of cases) {
      const res = await rawPost(`${new URL(project.url).pathname}/storage/v1${path}`, project.serviceKey);
      expect(`${path} ${res.status}`).toBe(`${path} ${status}`);
      expect(JSON.parse(res.body).code).toMatch(/^HEARTH_/);
    }
    const list = await sb.storage.from("any").list();
    expect(list.data!.map((e) => e.name)).toEqual(["q3.bin"]);
    const junk = await storageCall(project, "/object/list/any", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(junk.status).toBe(400);
    const badMove = await storageCall(project, "/object/move", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ bucketId: "any", sourceKey: "q3.bin", destinationKey: "../../escape" }),
    });
    expect(badMove.status).toBe(400);
    const noKey = await storageCall(project, "/bucket", { key: null });
    expect(noKey.status).toBe(401);
    const badBodies: [string, string, unknown][] = [
      ["POST", "/bucket", { id: "b1", public: "yes" }],
      ["POST", "/bucket", { id: "b2", file_size_limit: -5 }],
      ["POST", "/bucket", { id: "b3", allowed_mime_types: ["not a type"] }],
      ["POST", "/bucket", { id: "b4", policy: { read: "everyone" } }],
      ["POST", "/bucket", [1, 2]],
      ["POST", "/object/sign/any/q3.bin", { expiresIn: -1 }],
      ["POST", "/object/sign/any", { expiresIn: 60, paths: "q3.bin" }],
      ["POST", "/object/list/any", { limit: "abc" }],
      ["POST", "/object/list/any", { search: 5 }],
      ["POST", "/object/copy", { bucketId: "any", sourceKey: 1, destinationKey: "x" }],
      ["DELETE", "/object/any", { prefixes: "q3.bin" }],
      ["PUT", "/quota", { quotaBytes: "lots" }],
    ];
    for (const [method, path, body] of badBodies) {
      const res = await storageCall(project, path, {
        method,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(`${method} ${path} ${res.status}`).toBe(`${method} ${path} 400`);
    }
    expect((await sb.storage.listBuckets()).data!.map((b) => b.id).sort()).toEqual(["any", "small"]);
  });

  it("leaves no object and no bytes when an upload is interrupted", async () => {
    const url = new URL(`${project.url}/storage/v1/object/any/cut.bin`);
    await new Promise<void>((resolve) => {
      const req = http.request(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${project.serviceKey}`,
          "content-type": "application/octet-stream",
          "content-length": String(4 * 1024 * 1024),
        },
      });
      req.on("error", () => resolve());
      req.on("response", () => resolve());
      req.write(randomBytes(256 * 1024), () => {
        // Half-way through, the client goes away.
        setImmediate(() => req.destroy());
      });
      req.on("close", () => resolve());
    });
    // The gateway aborts the upload when the body errors; a sweep covers a gateway that died.
    let usage: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      usage = await (await storageCall(project, "/usage")).json();
      if (usage.pendingUploads === 0) break;
      await storageCall(project, "/sweep", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ olderThanSeconds: 0 }),
      });
    }
    expect(usage).toMatchObject({ pendingUploads: 0, garbageKeys: 0 });
    expect((await sb.storage.from("any").exists("cut.bin")).data).toBe(false);
  });
});

describe("policies and app grants for files", () => {
  it("applies bucket policies to keys, members and owners, and storage scopes to apps", async () => {
    const owner = await signup(api, "files-owner");
    const reader = await signup(api, "files-reader");
    const writer = await signup(api, "files-writer");
    const created = await createOwnedProject(api, owner.accessToken, "files-policies");
    await addMember(api, owner.accessToken, created.id, reader.email, "reader");
    await addMember(api, owner.accessToken, created.id, writer.email, "writer");
    const ownerSb = client(created.url, owner.accessToken);
    const service = client(created.url, created.serviceKey);

    // The owner manages buckets; policies beyond public/private come as Hearth's `policy`.
    expect((await ownerSb.storage.createBucket("team")).error).toBeNull();
    const mine = await fetch(`${created.url}/storage/v1/bucket`, {
      method: "POST",
      headers: { authorization: `Bearer ${owner.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "mine", policy: { read: "owner", write: "owner" } }),
    });
    expect(mine.status).toBe(200);
    const locked = await fetch(`${created.url}/storage/v1/bucket`, {
      method: "POST",
      headers: { authorization: `Bearer ${owner.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "locked", policy: { read: "service", write: "service" } }),
    });
    expect(locked.status).toBe(200);

    const readerSb = client(created.url, reader.accessToken);
    const writerSb = client(created.url, writer.accessToken);
    const anon = client(created.url, created.anonKey);

    // members: readers read, writers write, anon nothing.
    expect((await writerSb.storage.from("team").upload("plan.txt", Buffer.from("plan"))).error).toBeNull();
    expect((await readerSb.storage.from("team").upload("r.txt", Buffer.from("r"))).error?.status).toBe(403);
    expect((await bytesOf((await readerSb.storage.from("team").download("plan.txt")).data)).toString()).toBe(
      "plan",
    );
    expect((await anon.storage.from("team").download("plan.txt")).error).not.toBeNull();
    expect((await anon.storage.from("team").upload("a.txt", Buffer.from("a"))).error?.status).toBe(403);
    expect((await readerSb.storage.createBucket("nope")).error?.status).toBe(403);

    // owner: each account sees only its own files.
    expect((await writerSb.storage.from("mine").upload("w.txt", Buffer.from("w"))).error).toBeNull();
    expect((await ownerSb.storage.from("mine").upload("o.txt", Buffer.from("o"))).error).toBeNull();
    expect((await writerSb.storage.from("mine").list()).data!.map((e) => e.name)).toEqual(["w.txt"]);
    expect((await ownerSb.storage.from("mine").list()).data!.map((e) => e.name)).toEqual(["o.txt"]);
    expect((await writerSb.storage.from("mine").download("o.txt")).error).not.toBeNull();
    expect((await writerSb.storage.from("mine").remove(["o.txt"])).data).toEqual([]);
    expect(
      (await writerSb.storage.from("mine").upload("o.txt", Buffer.from("x"), { upsert: true })).error?.status,
    ).toBe(403);
    expect((await service.storage.from("mine").list()).data!.map((e) => e.name)).toEqual(["o.txt", "w.txt"]);

    // service: only the service key.
    expect((await ownerSb.storage.from("locked").upload("k.txt", Buffer.from("k"))).error?.status).toBe(403);
    expect((await service.storage.from("locked").upload("k.txt", Buffer.from("k"))).error).toBeNull();

    // An app granted storage:team:read reads team, cannot write it, cannot see mine.
    const dev = await signup(api, "files-dev");
    const { clientId } = await registerApp(api, dev.accessToken, "Files app", {
      "com.example.notes": { columns: { id: { type: "uuid", primaryKey: true, default: "random" } } },
    });
    const tokens = await connectApp(api, owner.accessToken, {
      clientId,
      scope: "db:com.example.notes:read storage:team:read",
      projectId: created.id,
    });
    const app = client(tokens.project_url, tokens.access_token);
    expect((await bytesOf((await app.storage.from("team").download("plan.txt")).data)).toString()).toBe(
      "plan",
    );
    expect((await app.storage.from("team").upload("app.txt", Buffer.from("a"))).error?.status).toBe(403);
    expect((await app.storage.from("mine").list()).error?.status).toBe(403);
    expect((await app.storage.listBuckets()).data!.map((b) => b.id)).toEqual(["team"]);

    // A revoked app loses file access on its next request.
    const grant = await grantOf(api, owner.accessToken, clientId, created.id);
    await revokeGrant(api, owner.accessToken, grant.id);
    const after = await app.storage.from("team").download("plan.txt");
    expect(after.error).not.toBeNull();
    expect((after.error as { status?: number }).status).toBe(401);
  });
});

describe("export and large files", () => {
  let project: Project;
  let sb: SupabaseClient;

  beforeAll(async () => {
    project = await createProject(server, "storage-export");
    sb = client(project.url, project.serviceKey);
    await sb.storage.createBucket("docs");
  });

  it("exports stored files as blobs/<bucket>/<path>, and imports them into a fresh project", async () => {
    const a = randomBytes(12_345);
    await sb.storage.from("docs").upload("a/b/one.bin", a);
    await sb.storage.from("docs").upload("two.txt", Buffer.from("two"), { contentType: "text/plain" });
    const res = await fetch(`${project.url}/export`, {
      headers: { authorization: `Bearer ${project.serviceKey}` },
    });
    expect(res.status).toBe(200);
    const zip = new Uint8Array(await res.arrayBuffer());
    const files = unzipSync(zip);
    expect(Buffer.from(files["blobs/docs/a/b/one.bin"]!).equals(a)).toBe(true);
    expect(Buffer.from(files["blobs/docs/two.txt"]!).toString()).toBe("two");

    const copy = await createProject(server, "storage-import");
    const imported = await fetch(`${copy.url}/import`, {
      method: "POST",
      headers: { authorization: `Bearer ${copy.serviceKey}`, "content-type": "application/zip" },
      body: zip,
    });
    expect(imported.status, await imported.clone().text()).toBe(200);
    expect(await imported.json()).toMatchObject({ files: { buckets: 1, objects: 2, bytes: 12_348 } });
    const sb2 = client(copy.url, copy.serviceKey);
    const names = async (c: SupabaseClient, prefix: string) =>
      ((await c.storage.from("docs").list(prefix)).data ?? []).map((f) => [f.name, f.metadata?.size ?? null]);
    for (const prefix of ["", "a/b"]) expect(await names(sb2, prefix)).toEqual(await names(sb, prefix));
    expect(await bytesOf((await sb2.storage.from("docs").download("a/b/one.bin")).data)).toEqual(a);
    const two = await sb2.storage.from("docs").info("two.txt");
    expect(two.data).toMatchObject({ size: 3, contentType: "text/plain" });
  });

  it("streams a 200 MB upload and download through, in bounded memory", async () => {
    const SIZE = 200 * 1024 * 1024;
    const CHUNK = 1024 * 1024;
    const seed = randomBytes(CHUNK);
    /** `size` bytes produced a chunk at a time as they are read, hashed on the way. */
    const generated = (size: number) => {
      const hash = createHash("sha256");
      const state = { sent: 0, hash };
      // Chunks differ (a counter in the first bytes), so a dropped or repeated part shows.
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (state.sent >= size) {
            controller.close();
            return;
          }
          const chunk = Buffer.from(seed);
          chunk.writeUInt32BE(state.sent / CHUNK, 0);
          hash.update(chunk);
          state.sent += CHUNK;
          controller.enqueue(chunk);
        },
      });
      return { body, state };
    };
    const upload = (name: string, body: ReadableStream<Uint8Array>) =>
      sb.storage.from("docs").upload(name, body, { contentType: "application/octet-stream" });

    // workerd's resident memory, sampled while the upload streams: it must not grow with the
    // body (holding it would be +200 MB). A fresh workerd's first large upload also grows its
    // heap and allocator once (about +70 MB, kept afterwards, whatever the size): a 32 MiB
    // upload first takes that, so the bound is about the 200 MB body (measured +30 MB).
    const warm = generated(32 * CHUNK);
    expect((await upload("warm.bin", warm.body)).error).toBeNull();
    const pgid = inject("hearthPgid");
    expect(pgid, "global-setup provides the server's process group").toBeGreaterThan(0);
    const base = await workerdRss(pgid);
    let peak = base;
    let samples = 0;
    const sample = () =>
      workerdRss(pgid)
        .then((rss) => {
          peak = Math.max(peak, rss);
          samples++;
        })
        .catch(() => {});
    const sampler = setInterval(sample, 50);
    const big = generated(SIZE);
    let up: Awaited<ReturnType<typeof upload>>;
    try {
      up = await upload("big.bin", big.body);
    } finally {
      clearInterval(sampler);
    }
    await sample();
    expect(up.error).toBeNull();
    expect(big.state.sent).toBe(SIZE);
    expect(samples).toBeGreaterThan(1);
    const growth = peak - base;
    expect(growth, `workerd grew by ${(growth / 2 ** 20).toFixed(0)} MiB`).toBeLessThan(128 * 2 ** 20);
    const digest = big.state.hash.digest("hex");
    const info = await sb.storage.from("docs").info("big.bin");
    // Streamed without a length: an R2 multipart upload, whose ETag is "<md5 of parts>-<parts>".
    expect(info.data).toMatchObject({ size: SIZE, etag: expect.stringMatching(/^"[0-9a-f]{32}-25"$/) });

    const res = await fetch(`${project.url}/storage/v1/object/docs/big.bin`, {
      headers: { authorization: `Bearer ${project.serviceKey}` },
    });
    expect(res.headers.get("content-length")).toBe(String(SIZE));
    const down = createHash("sha256");
    let got = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      down.update(chunk);
      got += chunk.byteLength;
    }
    expect(got).toBe(SIZE);
    expect(down.digest("hex")).toBe(digest);
  }, 240_000);
});

describe("import of a zip larger than a request body", () => {
  it("stages the zip in R2 and streams its files: a 72 MiB file round-trips past HEARTH_MAX_BODY_BYTES (64 MiB)", async () => {
    const SIZE = 72 * 1024 * 1024;
    const from = await createProject(server, "import-large-from");
    const sb = client(from.url, from.serviceKey);
    await sb.storage.createBucket("big");
    const bytes = randomBytes(SIZE);
    const digest = createHash("sha256").update(bytes).digest("hex");
    expect((await sb.storage.from("big").upload("dir/large.bin", bytes)).error).toBeNull();
    const exported = await fetch(`${from.url}/export`, {
      headers: { authorization: `Bearer ${from.serviceKey}` },
    });
    expect(exported.status).toBe(200);
    const zip = new Uint8Array(await exported.arrayBuffer());
    expect(zip.length).toBeGreaterThan(64 * 1024 * 1024);

    const to = await createProject(server, "import-large-to");
    const imported = await fetch(`${to.url}/import`, {
      method: "POST",
      headers: { authorization: `Bearer ${to.serviceKey}`, "content-type": "application/zip" },
      body: zip,
    });
    expect(imported.status, await imported.clone().text()).toBe(200);
    expect(await imported.json()).toMatchObject({ files: { buckets: 1, objects: 1, bytes: SIZE } });
    // Read back through an export, one request (~2 s here); a download of the file through
    // the storage route once took over 80 s, for the original as much as the copy, while
    // other suites loaded the machine.
    const again = await fetch(`${to.url}/export`, { headers: { authorization: `Bearer ${to.serviceKey}` } });
    expect(again.status).toBe(200);
    const copy = unzipSync(new Uint8Array(await again.arrayBuffer()))["blobs/big/dir/large.bin"];
    expect(copy?.length).toBe(SIZE);
    expect(createHash("sha256").update(copy!).digest("hex")).toBe(digest);
    // the staged zip is gone with its upload row
    const usage = await fetch(`${to.url}/storage/v1/usage`, {
      headers: { authorization: `Bearer ${to.serviceKey}` },
    });
    expect(await usage.json()).toMatchObject({ objects: 1, pendingUploads: 0 });
  }, 240_000);
});
