/**
 * `{url}/storage/v1/...`: the Supabase Storage API as storage-js calls it (docs/storage.md).
 * The gateway authenticates, asks the project's DO for the metadata decision (RPC
 * `storage`), and streams bytes between the client and R2 itself; bytes never pass through
 * the DO. Routes are matched by hand on the raw path so object names are percent-decoded
 * exactly once.
 */
import { type Context, Hono } from "hono";
import { storageErrorBody } from "../../durable-objects/storage/errors.ts";
import { checkBucketId, checkObjectName, decodePath } from "../../durable-objects/storage/names.ts";
import type { ObjectRow, StorageCaller, UploadMode } from "../../durable-objects/storage/types.ts";
import { HearthError, REQUEST_ID_HEADER } from "../../shared/errors.ts";
import { drain } from "../../shared/rest/bodies.ts";
import { PROJECT_ID } from "../admin/access.ts";
import type { AppEnv } from "../env.ts";
import { authenticate } from "../project/forward.ts";
import { bucketRoute } from "./bucket-routes.ts";
import { callStorage, json, jsonBody, objectResponse } from "./http.ts";
import { signedRead, signedUpload, signRoute, signUploadRoute } from "./sign-routes.ts";
import { copyObject, uploadObject } from "./upload.ts";

export const storageRoutes = new Hono<AppEnv>();

export interface StorageRequest {
  c: Context<AppEnv>;
  projectId: string;
  method: string;
  /** path segments after /storage/v1, decoded */
  parts: string[];
  url: URL;
  caller(): Promise<StorageCaller>;
}

storageRoutes.onError(async (err, c) => {
  const requestId = c.get("requestId") ?? crypto.randomUUID();
  const { status, body } = storageErrorBody(err);
  if (status >= 500 && !(err instanceof HearthError)) console.error(`[${requestId}] storage failed`, err);
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    [REQUEST_ID_HEADER]: requestId,
  };
  const size = (err as { size?: number }).size;
  if (body.code === "HEARTH_STORAGE_RANGE" && typeof size === "number")
    headers["content-range"] = `bytes */${size}`;
  const retryAfter = (err as { retryAfterSeconds?: number }).retryAfterSeconds;
  if (typeof retryAfter === "number") headers["retry-after"] = String(retryAfter);
  // A refused upload may not have read its body: read it first (bounded), so the client,
  // still sending, gets this answer instead of a reset connection.
  const req = c.req.raw;
  if (req.body && !req.bodyUsed) await drain(req.body, DRAIN_BYTES);
  return new Response(c.req.method === "HEAD" ? null : JSON.stringify(body), { status, headers });
});

const DRAIN_BYTES = 64 * 1024 * 1024;

storageRoutes.all("/*", async (c) => {
  const projectId = c.req.param("projectId") ?? "";
  if (!PROJECT_ID.test(projectId)) {
    throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  }
  const url = new URL(c.req.url);
  const base = `/p/${projectId}/storage/v1`;
  const raw = url.pathname.slice(base.length).replace(/^\/+/, "");
  const parts = raw === "" ? [] : raw.split("/").map(decodePath);
  let caller: StorageCaller | null = null;
  const r: StorageRequest = {
    c,
    projectId,
    method: c.req.method.toUpperCase(),
    parts,
    url,
    caller: async () => {
      caller ??= {
        kind: "principal",
        principal: await authenticate(c, projectId),
        ip: c.req.header("cf-connecting-ip") ?? null,
      };
      return caller;
    },
  };
  return route(r);
});

/** The caller's IP (cf-connecting-ip), by which anonymous callers are rate-limited. */
export function clientIp(r: StorageRequest): string | null {
  return r.c.req.header("cf-connecting-ip") ?? null;
}

function notFound(r: StorageRequest): never {
  throw new HearthError("HEARTH_NOT_FOUND", `No storage route for ${r.method} ${r.url.pathname}`);
}

/** `bucket/a/b/c` → bucket id and object name (checked). */
export function objectPath(parts: string[]): { bucket: string; name: string } {
  const [bucket, ...rest] = parts;
  return { bucket: checkBucketId(bucket), name: checkObjectName(rest.join("/")) };
}

async function route(r: StorageRequest): Promise<Response> {
  const [head, second] = r.parts;
  if (head === "bucket") return bucketRoute(r);
  if (head === "usage" || head === "quota" || head === "sweep") return adminRoute(r);
  if (head !== "object" || r.parts.length < 2) return notFound(r);
  const rest = r.parts.slice(2);
  const m = r.method;
  switch (second) {
    case "list":
      if (m !== "POST" || rest.length !== 1) return notFound(r);
      return listRoute(r, rest[0]!);
    case "move":
    case "copy":
      if (m !== "POST" || rest.length !== 0) return notFound(r);
      return second === "move" ? moveRoute(r) : copyObject(r);
    case "sign":
      if (m === "POST") return signRoute(r, rest);
      if (m === "GET" || m === "HEAD") return signedRead(r, rest);
      return notFound(r);
    case "upload":
      if (rest[0] !== "sign") return notFound(r);
      if (m === "POST") return signUploadRoute(r, rest.slice(1));
      if (m === "PUT") return signedUpload(r, rest.slice(1));
      return notFound(r);
    case "info":
      if (m !== "GET") return notFound(r);
      return infoRoute(r, rest[0] === "public" || rest[0] === "authenticated" ? rest.slice(1) : rest);
    case "public":
      if (m !== "GET" && m !== "HEAD") return notFound(r);
      return readRoute(r, rest, { kind: "public", projectId: r.projectId, ip: clientIp(r) });
    case "authenticated":
      if (m !== "GET" && m !== "HEAD") return notFound(r);
      return readRoute(r, rest, await r.caller());
  }
  const path = r.parts.slice(1);
  if (m === "GET" || m === "HEAD") return readRoute(r, path, await r.caller());
  if (m === "POST" || m === "PUT") {
    const { bucket, name } = objectPath(path);
    const upsert = (r.c.req.header("x-upsert") ?? "").toLowerCase() === "true";
    const mode: UploadMode = m === "PUT" ? "update" : upsert ? "upsert" : "create";
    return uploadObject(r, await r.caller(), bucket, name, mode);
  }
  if (m === "DELETE") {
    if (path.length === 1) {
      const body = await jsonBody(r.c.req.raw);
      return removeRoute(r, checkBucketId(path[0]), body.prefixes);
    }
    const { bucket, name } = objectPath(path);
    await removeRoute(r, bucket, [name]);
    return json({ message: "Successfully deleted" });
  }
  return notFound(r);
}

async function readRoute(r: StorageRequest, path: string[], caller: StorageCaller): Promise<Response> {
  const { bucket, name } = objectPath(path);
  const row = await callStorage<ObjectRow>(r.c.env, r.projectId, caller, { op: "read", bucket, name });
  return objectResponse(r.c.env.BUCKET, row, r.c.req.raw, {
    head: r.method === "HEAD",
    download: r.url.searchParams.get("download"),
  });
}

async function infoRoute(r: StorageRequest, path: string[]): Promise<Response> {
  const { bucket, name } = objectPath(path);
  const row = await callStorage<ObjectRow>(r.c.env, r.projectId, await r.caller(), {
    op: "read",
    bucket,
    name,
  });
  return json({
    id: row.id,
    name: row.name,
    version: row.version,
    bucket_id: row.bucket,
    size: row.size,
    content_type: row.content_type,
    cache_control: row.cache_control,
    etag: `"${row.checksum}"`,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
    last_modified: row.updated_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_accessed_at: row.last_accessed_at,
  });
}

const SORT_COLUMNS = ["name", "created_at", "updated_at", "last_accessed_at"] as const;

function intIn(v: unknown, fallback: number, min: number, max: number, what: string): number {
  if (v === undefined || v === null) return fallback;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new HearthError("HEARTH_BAD_REQUEST", `${what} must be an integer from ${min} to ${max}`);
  }
  return n;
}

async function listRoute(r: StorageRequest, bucketRaw: string): Promise<Response> {
  const bucket = checkBucketId(bucketRaw);
  const body = await jsonBody(r.c.req.raw);
  const sortBy = (body.sortBy ?? {}) as { column?: unknown; order?: unknown };
  const column = sortBy.column ?? "name";
  const order = typeof sortBy.order === "string" ? sortBy.order.toLowerCase() : "asc";
  if (!(SORT_COLUMNS as readonly unknown[]).includes(column) || (order !== "asc" && order !== "desc")) {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `sortBy must be {column: ${SORT_COLUMNS.join(" | ")}, order: asc | desc}`,
    );
  }
  if (body.search !== undefined && body.search !== null && typeof body.search !== "string") {
    throw new HearthError("HEARTH_BAD_REQUEST", "search must be a string");
  }
  const rows = await callStorage(r.c.env, r.projectId, await r.caller(), {
    op: "list",
    bucket,
    prefix: typeof body.prefix === "string" ? body.prefix : "",
    limit: intIn(body.limit, 100, 0, 10_000, "limit"),
    offset: intIn(body.offset, 0, 0, Number.MAX_SAFE_INTEGER, "offset"),
    sortColumn: column as (typeof SORT_COLUMNS)[number],
    sortOrder: order,
    search: typeof body.search === "string" ? body.search : "",
  });
  return json(rows);
}

function keyOf(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== "string") throw new HearthError("HEARTH_BAD_REQUEST", `${field} must be a string`);
  return checkObjectName(v.replace(/^\/+/, ""));
}

export function moveArgs(body: Record<string, unknown>) {
  const bucket = checkBucketId(body.bucketId);
  const toBucket =
    body.destinationBucket === undefined || body.destinationBucket === null
      ? bucket
      : checkBucketId(body.destinationBucket);
  return { bucket, from: keyOf(body, "sourceKey"), to: keyOf(body, "destinationKey"), toBucket };
}

async function moveRoute(r: StorageRequest): Promise<Response> {
  const args = moveArgs(await jsonBody(r.c.req.raw));
  return json(await callStorage(r.c.env, r.projectId, await r.caller(), { op: "move", ...args }));
}

async function removeRoute(r: StorageRequest, bucket: string, prefixes: unknown): Promise<Response> {
  if (!Array.isArray(prefixes))
    throw new HearthError("HEARTH_BAD_REQUEST", "prefixes must be a list of object names");
  const names = prefixes.map((p) => (typeof p === "string" ? p.replace(/^\/+/, "") : p));
  const removed = await callStorage(r.c.env, r.projectId, await r.caller(), { op: "remove", bucket, names });
  return json(removed);
}

/** Hearth's own: usage, quota and the orphan sweep (service key). */
async function adminRoute(r: StorageRequest): Promise<Response> {
  const caller = await r.caller();
  const [head] = r.parts;
  if (head === "usage" && r.method === "GET")
    return json(await callStorage(r.c.env, r.projectId, caller, { op: "usage" }));
  if (head === "quota" && r.method === "PUT") {
    const body = await jsonBody(r.c.req.raw);
    const bytes = body.quotaBytes === null ? null : Number(body.quotaBytes);
    if (bytes !== null && !Number.isSafeInteger(bytes)) {
      throw new HearthError("HEARTH_BAD_REQUEST", "quotaBytes must be an integer, or null for the default");
    }
    return json(await callStorage(r.c.env, r.projectId, caller, { op: "setQuota", bytes }));
  }
  if (head === "sweep" && r.method === "POST") {
    const body = await jsonBody(r.c.req.raw);
    const olderThanMs = intIn(body.olderThanSeconds, 3600, 0, 365 * 24 * 3600, "olderThanSeconds") * 1000;
    return json(await callStorage(r.c.env, r.projectId, caller, { op: "sweep", olderThanMs }));
  }
  return notFound(r);
}
