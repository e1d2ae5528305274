/**
 * Object metadata: the upload handshake (begin → bytes → commit), reads, listing, move,
 * copy and removal. Bytes never pass through here: the gateway streams them to the R2 key
 * a ticket names, and the commit makes them visible in one transaction (WAL-logged).
 * Until then the upload row reserves its declared bytes against the quota and names the
 * key to delete if the upload never commits (storage.ts `sweep`).
 */
import type { Access } from "../policy.ts";
import { beginWalTx } from "../wal.ts";
import { bucketAccess, ownerOf } from "./access.ts";
import { type BucketRow, readBucket } from "./buckets.ts";
import { fault } from "./errors.ts";
import { blobKey, checkBucketId, checkObjectName } from "./names.ts";
import type { ObjectRow, StorageCaller, UploadMode, UploadTicket } from "./types.ts";

export interface UploadRow {
  version: string;
  bucket: string;
  name: string;
  key: string;
  mode: UploadMode;
  reserved: number;
  max_bytes: number;
  multipart_id: string | null;
  content_type: string;
  cache_control: string;
  metadata: string | null;
  owner: string | null;
  created_at: number;
}

export interface Limits {
  quotaBytes: number;
}

export function requireBucket(sql: SqlStorage, id: string): BucketRow {
  const b = readBucket(sql, checkBucketId(id));
  if (!b) throw fault("HEARTH_STORAGE_BUCKET_NOT_FOUND", `Bucket not found: ${id}`);
  return b;
}

export function readObject(sql: SqlStorage, bucket: string, name: string): ObjectRow | null {
  const row = sql
    .exec("SELECT * FROM _hearth_storage_objects WHERE bucket = ? AND name = ?", bucket, name)
    .toArray()[0];
  return (row as unknown as ObjectRow | undefined) ?? null;
}

function sees(access: Access, row: ObjectRow): boolean {
  return access.kind === "all" || row.owner === access.ownerId;
}

/** Bytes stored plus bytes reserved by uploads in flight. */
export function usedBytes(sql: SqlStorage): number {
  const r = sql
    .exec(
      "SELECT (SELECT coalesce(sum(size), 0) FROM _hearth_storage_objects) + (SELECT coalesce(sum(reserved), 0) FROM _hearth_storage_uploads) AS n",
    )
    .one();
  return Number(r.n);
}

function baseType(contentType: string): string {
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

export function checkMime(bucket: BucketRow, contentType: string): void {
  if (bucket.allowed_mime_types === null) return;
  const allowed = JSON.parse(bucket.allowed_mime_types) as string[];
  const type = baseType(contentType);
  const [major] = type.split("/");
  if (allowed.some((a) => a === type || (a.endsWith("/*") && a.slice(0, -2) === major))) return;
  throw fault(
    "HEARTH_STORAGE_MIME_TYPE",
    `mime type ${type || "(none)"} is not supported: the bucket ${bucket.id} allows ${allowed.join(", ")}`,
  );
}

function checkSize(bucket: BucketRow, size: number, remaining: number): void {
  if (bucket.file_size_limit !== null && size > bucket.file_size_limit) {
    throw fault(
      "HEARTH_STORAGE_TOO_LARGE",
      `The object exceeded the maximum allowed size: ${size} bytes, the bucket ${bucket.id} takes at most ${bucket.file_size_limit}`,
    );
  }
  if (size > remaining) {
    throw fault(
      "HEARTH_STORAGE_QUOTA_EXCEEDED",
      `The project's storage quota would be exceeded: ${size} bytes, ${Math.max(0, remaining)} left`,
    );
  }
}

function newVersion(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

export function beginUpload(
  sql: SqlStorage,
  caller: StorageCaller,
  projectId: string,
  limits: Limits,
  req: {
    bucket: string;
    name: string;
    mode: UploadMode;
    contentType: string;
    declaredSize: number | null;
    cacheControl: string;
    metadata: string | null;
  },
): UploadTicket {
  const bucket = requireBucket(sql, req.bucket);
  const name = checkObjectName(req.name);
  const access = bucketAccess(caller, bucket, true);
  const existing = readObject(sql, bucket.id, name);
  if (existing && !sees(access, existing)) {
    throw fault(
      "HEARTH_STORAGE_DENIED",
      `permission denied for object ${bucket.id}/${name}: it is not yours`,
    );
  }
  if (req.mode === "create" && existing) {
    throw fault("HEARTH_STORAGE_DUPLICATE", `The resource already exists: ${bucket.id}/${name}`);
  }
  if (req.mode === "update" && !existing) {
    throw fault("HEARTH_STORAGE_OBJECT_NOT_FOUND", `Object not found: ${bucket.id}/${name}`);
  }
  checkMime(bucket, req.contentType);
  const remaining = limits.quotaBytes - usedBytes(sql) + (existing?.size ?? 0);
  if (req.declaredSize !== null) checkSize(bucket, req.declaredSize, remaining);
  const bucketMax = bucket.file_size_limit ?? Number.MAX_SAFE_INTEGER;
  const maxBytes = Math.max(0, Math.min(bucketMax, remaining));
  const boundBy = bucketMax <= remaining ? "bucket" : "quota";
  const version = newVersion();
  const key = blobKey(projectId, bucket.id, name, version);
  sql.exec(
    `INSERT INTO _hearth_storage_uploads (version, bucket, name, key, mode, reserved, max_bytes, multipart_id, content_type, cache_control, metadata, owner, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)`,
    version,
    bucket.id,
    name,
    key,
    req.mode,
    req.declaredSize ?? 0,
    maxBytes,
    req.contentType,
    req.cacheControl,
    req.metadata,
    existing?.owner ?? ownerOf(caller),
    Date.now(),
  );
  return { version, key, maxBytes, boundBy };
}

export function readUpload(sql: SqlStorage, version: string): UploadRow | null {
  const row = sql.exec("SELECT * FROM _hearth_storage_uploads WHERE version = ?", version).toArray()[0];
  return (row as unknown as UploadRow | undefined) ?? null;
}

/**
 * Makes an upload's bytes the object's, in one transaction: the object row (WAL-logged),
 * the upload row gone, the replaced version's key queued for deletion. Throws (and leaves
 * the upload row for the caller to abort) when a limit or a concurrent write says no.
 */
export function commitUpload(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  limits: Limits,
  up: UploadRow,
  size: number,
  checksum: string,
): { row: ObjectRow; replaced: string | null } {
  const bucket = requireBucket(sql, up.bucket);
  const existing = readObject(sql, up.bucket, up.name);
  if (up.mode === "create" && existing) {
    throw fault("HEARTH_STORAGE_DUPLICATE", `The resource already exists: ${up.bucket}/${up.name}`);
  }
  if (up.mode === "update" && !existing) {
    throw fault("HEARTH_STORAGE_OBJECT_NOT_FOUND", `Object not found: ${up.bucket}/${up.name}`);
  }
  const remaining = limits.quotaBytes - (usedBytes(sql) - up.reserved) + (existing?.size ?? 0);
  checkSize(bucket, size, remaining);
  const now = new Date().toISOString();
  const row: ObjectRow = {
    bucket: up.bucket,
    name: up.name,
    id: existing?.id ?? crypto.randomUUID(),
    version: up.version,
    key: up.key,
    size,
    content_type: up.content_type,
    cache_control: up.cache_control,
    checksum,
    owner: existing ? existing.owner : up.owner,
    metadata: up.metadata,
    created_at: existing?.created_at ?? now,
    updated_at: now,
    last_accessed_at: now,
  };
  storage.transactionSync(() => {
    beginWalTx(sql);
    writeObject(sql, row);
    sql.exec("DELETE FROM _hearth_storage_uploads WHERE version = ?", up.version);
    if (existing) queueGarbage(sql, existing.key);
  });
  return { row, replaced: existing?.key ?? null };
}

export function writeObject(sql: SqlStorage, r: ObjectRow): void {
  sql.exec(
    `INSERT INTO _hearth_storage_objects (bucket, name, id, version, key, size, content_type, cache_control, checksum, owner, metadata, created_at, updated_at, last_accessed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (bucket, name) DO UPDATE SET id = excluded.id, version = excluded.version, key = excluded.key,
       size = excluded.size, content_type = excluded.content_type, cache_control = excluded.cache_control,
       checksum = excluded.checksum, owner = excluded.owner, metadata = excluded.metadata,
       created_at = excluded.created_at, updated_at = excluded.updated_at, last_accessed_at = excluded.last_accessed_at`,
    r.bucket,
    r.name,
    r.id,
    r.version,
    r.key,
    r.size,
    r.content_type,
    r.cache_control,
    r.checksum,
    r.owner,
    r.metadata,
    r.created_at,
    r.updated_at,
    r.last_accessed_at,
  );
}

export function queueGarbage(sql: SqlStorage, key: string): void {
  sql.exec("INSERT OR IGNORE INTO _hearth_storage_garbage (key, created_at) VALUES (?, ?)", key, Date.now());
}

/** An object the caller may read (404 for one it may not see under an `owner` policy). */
export function readableObject(
  sql: SqlStorage,
  caller: StorageCaller,
  bucketId: string,
  name: string,
): ObjectRow {
  const bucket = requireBucket(sql, bucketId);
  const n = checkObjectName(name);
  const access = bucketAccess(caller, bucket, false);
  const row = readObject(sql, bucket.id, n);
  if (!row || !sees(access, row))
    throw fault("HEARTH_STORAGE_OBJECT_NOT_FOUND", `Object not found: ${bucketId}/${name}`);
  return row;
}

/** Rights check for signing a URL: read needs the object; write (upload) only the bucket. */
export function authorize(
  sql: SqlStorage,
  caller: StorageCaller,
  bucketId: string,
  name: string,
  write: boolean,
): { owner: string | null } {
  if (!write) {
    readableObject(sql, caller, bucketId, name);
    return { owner: null };
  }
  const bucket = requireBucket(sql, bucketId);
  const n = checkObjectName(name);
  const access = bucketAccess(caller, bucket, true);
  const row = readObject(sql, bucket.id, n);
  if (row && !sees(access, row)) {
    throw fault("HEARTH_STORAGE_DENIED", `permission denied for object ${bucketId}/${name}: it is not yours`);
  }
  return { owner: ownerOf(caller) };
}

export function move(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  caller: StorageCaller,
  req: { bucket: string; from: string; to: string; toBucket: string },
): { message: string } {
  const src = requireBucket(sql, req.bucket);
  const dst = req.toBucket === req.bucket ? src : requireBucket(sql, req.toBucket);
  const from = checkObjectName(req.from);
  const to = checkObjectName(req.to);
  const srcAccess = bucketAccess(caller, src, true);
  const dstAccess = bucketAccess(caller, dst, true);
  const row = readObject(sql, src.id, from);
  if (!row || !sees(srcAccess, row))
    throw fault("HEARTH_STORAGE_OBJECT_NOT_FOUND", `Object not found: ${src.id}/${from}`);
  if (dstAccess.kind === "own" && row.owner !== dstAccess.ownerId) {
    throw fault("HEARTH_STORAGE_DENIED", `permission denied for object ${dst.id}/${to}`);
  }
  if (readObject(sql, dst.id, to))
    throw fault("HEARTH_STORAGE_DUPLICATE", `The resource already exists: ${dst.id}/${to}`);
  checkMime(dst, row.content_type);
  if (dst.file_size_limit !== null && row.size > dst.file_size_limit) {
    throw fault(
      "HEARTH_STORAGE_TOO_LARGE",
      `The object exceeded the maximum allowed size of the bucket ${dst.id}`,
    );
  }
  // The bytes stay under their key: a move is one metadata update (an UPDATE in the WAL).
  storage.transactionSync(() => {
    beginWalTx(sql);
    sql.exec(
      "UPDATE _hearth_storage_objects SET bucket = ?, name = ?, updated_at = ? WHERE bucket = ? AND name = ?",
      dst.id,
      to,
      new Date().toISOString(),
      src.id,
      from,
    );
  });
  return { message: "Successfully moved" };
}

/** Copy: the source (read right) and an upload ticket for the destination (write right). */
export function beginCopy(
  sql: SqlStorage,
  caller: StorageCaller,
  projectId: string,
  limits: Limits,
  req: { bucket: string; from: string; to: string; toBucket: string },
): { source: ObjectRow; ticket: UploadTicket } {
  const source = readableObject(sql, caller, req.bucket, req.from);
  const ticket = beginUpload(sql, caller, projectId, limits, {
    bucket: req.toBucket,
    name: req.to,
    mode: "create",
    contentType: source.content_type,
    declaredSize: source.size,
    cacheControl: source.cache_control,
    metadata: source.metadata,
  });
  return { source, ticket };
}

/** Removes the named objects the caller may write; answers the removed ones. */
export function removeObjects(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  caller: StorageCaller,
  bucketId: string,
  names: unknown,
): ObjectRow[] {
  const bucket = requireBucket(sql, bucketId);
  if (!Array.isArray(names) || names.length > 1000) {
    throw fault("HEARTH_STORAGE_INVALID_NAME", "prefixes must be a list of at most 1000 object names");
  }
  const checked = names.map((n) => checkObjectName(n));
  const access = bucketAccess(caller, bucket, true);
  const removed: ObjectRow[] = [];
  storage.transactionSync(() => {
    beginWalTx(sql);
    for (const name of checked) {
      const row = readObject(sql, bucket.id, name);
      if (!row || !sees(access, row)) continue;
      sql.exec("DELETE FROM _hearth_storage_objects WHERE bucket = ? AND name = ?", bucket.id, name);
      queueGarbage(sql, row.key);
      removed.push(row);
    }
  });
  return removed;
}

export function objectInfo(r: ObjectRow): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    bucket_id: r.bucket,
    size: r.size,
    content_type: r.content_type,
    cache_control: r.cache_control,
    etag: `"${r.checksum}"`,
    metadata: r.metadata === null ? null : JSON.parse(r.metadata),
    last_modified: r.updated_at,
    created_at: r.created_at,
    updated_at: r.updated_at,
    last_accessed_at: r.last_accessed_at,
  };
}

/** The `metadata` of a listed file (storage-js FileObject). */
export function listMetadata(r: ObjectRow): Record<string, unknown> {
  return {
    eTag: `"${r.checksum}"`,
    size: r.size,
    mimetype: r.content_type,
    cacheControl: r.cache_control,
    lastModified: r.updated_at,
    contentLength: r.size,
    httpStatusCode: 200,
  };
}

/** Supabase's remove answer: the removed objects. */
export function removedWire(r: ObjectRow): Record<string, unknown> {
  return {
    bucket_id: r.bucket,
    name: r.name,
    id: r.id,
    owner: r.owner,
    created_at: r.created_at,
    updated_at: r.updated_at,
    last_accessed_at: r.last_accessed_at,
    metadata: listMetadata(r),
  };
}
