/** Bucket rows: create, read, change, empty and delete (metadata only; bytes in store.ts). */
import { POLICIES } from "../../shared/schema.ts";
import { beginWalTx } from "../wal.ts";
import { canManageBuckets, tryBucketAccess } from "./access.ts";
import { fault } from "./errors.ts";
import { checkBucketId } from "./names.ts";
import type { BucketInput, StorageCaller } from "./types.ts";

export interface BucketRow {
  id: string;
  name: string;
  public: number;
  file_size_limit: number | null;
  allowed_mime_types: string | null;
  read_policy: string;
  write_policy: string;
  owner: string | null;
  created_at: string;
  updated_at: string;
}

const MIME = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/(\*|[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126})$/;
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

export function bucketWire(b: BucketRow): Record<string, unknown> {
  return {
    id: b.id,
    name: b.name,
    owner: b.owner ?? "",
    public: b.public === 1,
    type: "STANDARD",
    file_size_limit: b.file_size_limit,
    allowed_mime_types: b.allowed_mime_types === null ? null : JSON.parse(b.allowed_mime_types),
    created_at: b.created_at,
    updated_at: b.updated_at,
    policy: { read: b.read_policy, write: b.write_policy },
  };
}

export function readBucket(sql: SqlStorage, id: string): BucketRow | null {
  const row = sql.exec("SELECT * FROM _hearth_storage_buckets WHERE id = ?", id).toArray()[0];
  return (row as unknown as BucketRow | undefined) ?? null;
}

/** The bucket, or 404 when it does not exist or the caller may not see it. */
export function visibleBucket(sql: SqlStorage, caller: StorageCaller, id: string): BucketRow {
  const b = readBucket(sql, checkBucketId(id));
  if (
    !b ||
    !(canManageBuckets(caller) || tryBucketAccess(caller, b, false) || tryBucketAccess(caller, b, true))
  ) {
    throw fault("HEARTH_STORAGE_BUCKET_NOT_FOUND", `Bucket not found: ${id}`);
  }
  return b;
}

function requireManage(caller: StorageCaller): void {
  if (!canManageBuckets(caller)) {
    throw fault(
      "HEARTH_STORAGE_DENIED",
      "Creating, changing, emptying and deleting buckets needs the service key or the project's owner or an admin",
    );
  }
}

export function parseSizeLimit(v: unknown): number | null {
  if (v === undefined || v === null || v === "" || v === 0) return null;
  if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) return v;
  if (typeof v === "string") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(v);
    if (m) {
      const n = Math.floor(Number(m[1]) * UNITS[(m[2] ?? "b").toLowerCase()]!);
      if (Number.isSafeInteger(n) && n > 0) return n;
    }
  }
  throw fault(
    "HEARTH_STORAGE_INVALID_NAME",
    'file_size_limit must be a positive number of bytes or a size such as "10MB"',
  );
}

export function parseMimes(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length > 100 || v.some((m) => typeof m !== "string" || !MIME.test(m))) {
    throw fault(
      "HEARTH_STORAGE_INVALID_NAME",
      'allowed_mime_types must be a list of types such as "image/png" or "image/*"',
    );
  }
  return v.length === 0 ? null : JSON.stringify(v.map((m: string) => m.toLowerCase()));
}

export function parsePolicy(v: unknown, fallback: string): string {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !(POLICIES as readonly string[]).includes(v)) {
    throw fault("HEARTH_STORAGE_INVALID_NAME", `A bucket policy is one of ${POLICIES.join(", ")}`);
  }
  return v;
}

export function listBuckets(
  sql: SqlStorage,
  caller: StorageCaller,
  opts: { limit: number | null; offset: number; search: string | null },
): unknown[] {
  const rows = sql
    .exec("SELECT * FROM _hearth_storage_buckets ORDER BY id")
    .toArray() as unknown as BucketRow[];
  const search = opts.search?.toLowerCase() ?? "";
  const visible = rows.filter(
    (b) =>
      (search === "" || b.name.toLowerCase().includes(search)) &&
      (canManageBuckets(caller) || tryBucketAccess(caller, b, false) || tryBucketAccess(caller, b, true)),
  );
  const page = visible.slice(opts.offset, opts.limit === null ? undefined : opts.offset + opts.limit);
  return page.map(bucketWire);
}

export function createBucket(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  caller: StorageCaller,
  input: BucketInput,
  owner: string | null,
) {
  requireManage(caller);
  const id = checkBucketId(input.id ?? input.name);
  const name = input.name === undefined ? id : checkBucketId(input.name);
  const isPublic = input.public === true;
  const row = {
    public: isPublic ? 1 : 0,
    file_size_limit: parseSizeLimit(input.file_size_limit),
    allowed_mime_types: parseMimes(input.allowed_mime_types),
    read_policy: parsePolicy(input.policy?.read, isPublic ? "public" : "members"),
    write_policy: parsePolicy(input.policy?.write, "members"),
  };
  if (readBucket(sql, id)) throw fault("HEARTH_STORAGE_DUPLICATE", `The bucket ${id} already exists`);
  const now = new Date().toISOString();
  storage.transactionSync(() => {
    beginWalTx(sql);
    sql.exec(
      `INSERT INTO _hearth_storage_buckets (id, name, public, file_size_limit, allowed_mime_types, read_policy, write_policy, owner, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      name,
      row.public,
      row.file_size_limit,
      row.allowed_mime_types,
      row.read_policy,
      row.write_policy,
      owner,
      now,
      now,
    );
  });
  return { name: id };
}

export function updateBucket(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  caller: StorageCaller,
  id: string,
  input: BucketInput,
) {
  requireManage(caller);
  const b = readBucket(sql, checkBucketId(id));
  if (!b) throw fault("HEARTH_STORAGE_BUCKET_NOT_FOUND", `Bucket not found: ${id}`);
  const isPublic = input.public === undefined ? b.public === 1 : input.public === true;
  // Making a bucket public (or private) moves its read policy along unless one is given.
  const readFallback =
    input.public === undefined
      ? b.read_policy
      : isPublic
        ? "public"
        : b.read_policy === "public"
          ? "members"
          : b.read_policy;
  const next = {
    public: isPublic ? 1 : 0,
    file_size_limit:
      input.file_size_limit === undefined ? b.file_size_limit : parseSizeLimit(input.file_size_limit),
    allowed_mime_types:
      input.allowed_mime_types === undefined ? b.allowed_mime_types : parseMimes(input.allowed_mime_types),
    read_policy: parsePolicy(input.policy?.read, readFallback),
    write_policy: parsePolicy(input.policy?.write, b.write_policy),
  };
  storage.transactionSync(() => {
    beginWalTx(sql);
    sql.exec(
      `UPDATE _hearth_storage_buckets SET public = ?, file_size_limit = ?, allowed_mime_types = ?, read_policy = ?, write_policy = ?, updated_at = ? WHERE id = ?`,
      next.public,
      next.file_size_limit,
      next.allowed_mime_types,
      next.read_policy,
      next.write_policy,
      new Date().toISOString(),
      b.id,
    );
  });
  return { message: "Successfully updated" };
}

/** Deletes the bucket's object rows; their R2 keys go to the garbage table, in the same transaction. */
export function emptyBucketRows(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  caller: StorageCaller,
  id: string,
): number {
  requireManage(caller);
  const b = readBucket(sql, checkBucketId(id));
  if (!b) throw fault("HEARTH_STORAGE_BUCKET_NOT_FOUND", `Bucket not found: ${id}`);
  let n = 0;
  storage.transactionSync(() => {
    beginWalTx(sql);
    const now = Date.now();
    sql.exec(
      "INSERT OR IGNORE INTO _hearth_storage_garbage (key, created_at) SELECT key, ? FROM _hearth_storage_objects WHERE bucket = ?",
      now,
      b.id,
    );
    n = Number(sql.exec("SELECT count(*) AS n FROM _hearth_storage_objects WHERE bucket = ?", b.id).one().n);
    sql.exec("DELETE FROM _hearth_storage_objects WHERE bucket = ?", b.id);
  });
  return n;
}

export function deleteBucket(
  sql: SqlStorage,
  storage: DurableObjectStorage,
  caller: StorageCaller,
  id: string,
) {
  requireManage(caller);
  const b = readBucket(sql, checkBucketId(id));
  if (!b) throw fault("HEARTH_STORAGE_BUCKET_NOT_FOUND", `Bucket not found: ${id}`);
  const any = sql.exec("SELECT 1 FROM _hearth_storage_objects WHERE bucket = ? LIMIT 1", b.id).toArray();
  if (any.length > 0) {
    throw fault("HEARTH_STORAGE_BUCKET_NOT_EMPTY", `The bucket ${id} is not empty: empty it first`);
  }
  storage.transactionSync(() => {
    beginWalTx(sql);
    sql.exec("DELETE FROM _hearth_storage_buckets WHERE id = ?", b.id);
  });
  return { message: "Successfully deleted" };
}
