/**
 * Stored files in the export zip and back (docs/storage.md "Export and import").
 *
 * Export writes each object's bytes as `blobs/<bucket>/<path>`, then `storage.json`: the
 * buckets (settings and policies) and the rows of exactly the objects whose bytes it wrote
 * (written last, so an object removed while the export streamed is in neither).
 *
 * Import, all or nothing, in three steps:
 * 1. `planFiles`: storage.json and the blobs checked against each other, names, bucket
 *    settings, MIME types, sizes and the quota, before any byte is stored.
 * 2. `stageFiles`: one upload row per object (reserving its bytes, committed), then each
 *    member streamed from the staged zip (a ranged get, inflated if deflated) to a fresh
 *    versioned key, one at a time: a file of any size, in bounded memory. The upload rows
 *    name the keys: if the object dies here, the alarm's sweep deletes them with their bytes.
 * 3. `commitFiles`, inside the import's transaction: bucket and object rows (WAL-logged), the
 *    upload rows gone. A failure anywhere calls `discardFiles`: keys and upload rows go.
 */
import { z } from "zod";
import { HearthError } from "../shared/errors.ts";
import { type BlobMember, invalid, memberStream, problemOf, type ZipArchive } from "./import-zip.ts";
import { type BucketRow, parseMimes, parsePolicy, parseSizeLimit } from "./storage/buckets.ts";
import { StorageFault } from "./storage/errors.ts";
import { blobKey, checkBucketId, checkObjectName } from "./storage/names.ts";
import { checkMime, usedBytes, writeObject } from "./storage/objects.ts";
import { STORAGE_DDL } from "./storage/tables.ts";
import type { ObjectRow } from "./storage/types.ts";

export const STORAGE_MEMBER = "storage.json";
export const BLOB_PREFIX = "blobs/";

// ---- export ----

/** A bucket as storage.json holds it (the wire names of `createBucket`, plus its times). */
export function bucketEntry(b: BucketRow): Record<string, unknown> {
  return {
    id: b.id,
    name: b.name,
    public: b.public === 1,
    file_size_limit: b.file_size_limit,
    allowed_mime_types: b.allowed_mime_types === null ? null : JSON.parse(b.allowed_mime_types),
    policy: { read: b.read_policy, write: b.write_policy },
    owner: b.owner,
    created_at: b.created_at,
    updated_at: b.updated_at,
  };
}

/** An object's row without its R2 key and version: the importing project makes its own. */
export function objectEntry(r: ObjectRow): Record<string, unknown> {
  const { key: _key, version: _version, ...rest } = r;
  return rest;
}

// ---- import ----

const BucketEntrySchema = z.object({
  id: z.string(),
  name: z.string(),
  public: z.boolean(),
  file_size_limit: z.number().nullable(),
  allowed_mime_types: z.array(z.string()).nullable(),
  policy: z.object({ read: z.string(), write: z.string() }),
  owner: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const ObjectEntrySchema = z.object({
  bucket: z.string(),
  name: z.string(),
  id: z.string().min(1).max(100),
  size: z.number().int().nonnegative(),
  content_type: z.string().max(1000),
  cache_control: z.string().max(1000),
  checksum: z.string().max(200),
  owner: z.string().nullable(),
  metadata: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  last_accessed_at: z.string(),
});

const StorageJsonSchema = z.object({
  version: z.literal(1),
  buckets: z.array(BucketEntrySchema),
  objects: z.array(ObjectEntrySchema),
});

export interface FilesPlan {
  buckets: BucketRow[];
  /** object rows; `version`, `key` and `checksum` are set by stageFiles */
  objects: { row: ObjectRow; member: string }[];
  bytes: number;
}

export interface FilesHost {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  r2: R2Bucket;
  projectId: string;
  /** the quota when the project has not set one (`HEARTH_STORAGE_QUOTA_BYTES`) */
  defaultQuotaBytes: number;
  /** arms the alarm whose sweep deletes uploads that never commit */
  armSweep(): Promise<void>;
}

function storageTablesExist(sql: SqlStorage): boolean {
  return (
    sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_hearth_storage_objects'")
      .toArray().length > 0
  );
}

/** 409 when the project already has a bucket: files import into a project without any. */
export function assertNoFiles(sql: SqlStorage): void {
  if (!storageTablesExist(sql)) return;
  const r = sql
    .exec(
      "SELECT (SELECT count(*) FROM _hearth_storage_buckets) + (SELECT count(*) FROM _hearth_storage_objects) AS n",
    )
    .one();
  if (Number(r.n) > 0) {
    throw new HearthError("HEARTH_IMPORT_NOT_EMPTY", "Import needs an empty project", {
      details: "The project already has buckets; the zip holds stored files.",
      hint: "Import into a new project, or empty and delete its buckets first.",
    });
  }
}

function quotaBytes(sql: SqlStorage, fallback: number): number {
  if (!storageTablesExist(sql)) return fallback;
  const q = sql.exec("SELECT quota_bytes AS q FROM _hearth_storage_settings WHERE id = 1").toArray()[0]?.q;
  return q === null || q === undefined ? fallback : Number(q);
}

/** A storage check's failure, told about the member it concerns (same code and status). */
function about(member: string, err: unknown): HearthError {
  if (err instanceof StorageFault) {
    if (err.code === "HEARTH_STORAGE_INVALID_NAME") return invalid(`${member}: ${err.message}`);
    return new HearthError(err.code, `${member}: ${err.message}`, {
      hint: "The importing project's limits apply: raise its quota (PUT {url}/storage/v1/quota) or leave the file out.",
    });
  }
  return invalid(`${member}: ${problemOf(err).message}`);
}

function bucketRow(entry: z.infer<typeof BucketEntrySchema>): BucketRow {
  return {
    id: checkBucketId(entry.id),
    name: checkBucketId(entry.name),
    public: entry.public ? 1 : 0,
    file_size_limit: parseSizeLimit(entry.file_size_limit),
    allowed_mime_types: parseMimes(entry.allowed_mime_types),
    read_policy: parsePolicy(entry.policy.read, "members"),
    write_policy: parsePolicy(entry.policy.write, "members"),
    owner: entry.owner,
    created_at: entry.created_at,
    updated_at: entry.updated_at,
  };
}

/** `blobs/<bucket>/<path>` → bucket and object name, checked; HEARTH_IMPORT_INVALID otherwise. */
function splitMember(member: string): { bucket: string; name: string } {
  const rest = member.slice(BLOB_PREFIX.length);
  const slash = rest.indexOf("/");
  try {
    if (slash < 0) throw new Error("a file needs a bucket and a path: blobs/<bucket>/<path>");
    return { bucket: checkBucketId(rest.slice(0, slash)), name: checkObjectName(rest.slice(slash + 1)) };
  } catch (err) {
    throw about(member, err);
  }
}

/**
 * Checks the zip's files against each other and against the project's limits; null when it
 * has none. Nothing is written.
 */
export function planFiles(
  host: Pick<FilesHost, "sql" | "defaultQuotaBytes">,
  blobs: Map<string, BlobMember>,
  storageJson: Uint8Array | null,
): FilesPlan | null {
  if (blobs.size === 0 && storageJson === null) return null;
  const now = new Date().toISOString();
  let parsed: z.infer<typeof StorageJsonSchema> | null = null;
  if (storageJson) {
    let input: unknown;
    try {
      input = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(storageJson));
    } catch (err) {
      throw invalid(`${STORAGE_MEMBER}: not valid JSON`, problemOf(err).message);
    }
    const result = StorageJsonSchema.safeParse(input);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw invalid(`${STORAGE_MEMBER}: ${issue.message} at ${issue.path.join(".") || "the top"}`);
    }
    parsed = result.data;
  }

  // Buckets: storage.json's, or (a zip with files but without it) one per folder of blobs/.
  const buckets = new Map<string, BucketRow>();
  if (parsed) {
    for (const [i, entry] of parsed.buckets.entries()) {
      let row: BucketRow;
      try {
        row = bucketRow(entry);
      } catch (err) {
        throw about(`${STORAGE_MEMBER} (buckets[${i}])`, err);
      }
      if (buckets.has(row.id)) throw invalid(`${STORAGE_MEMBER}: bucket "${row.id}" is listed twice`);
      buckets.set(row.id, row);
    }
  } else {
    for (const b of blobs.values()) {
      const { bucket } = splitMember(b.member);
      if (buckets.has(bucket)) continue;
      buckets.set(bucket, {
        id: bucket,
        name: bucket,
        public: 0,
        file_size_limit: null,
        allowed_mime_types: null,
        read_policy: "members",
        write_policy: "members",
        owner: null,
        created_at: now,
        updated_at: now,
      });
    }
  }

  const objects: FilesPlan["objects"] = [];
  const entries = parsed
    ? parsed.objects
    : [...blobs.values()].map((b) => ({
        ...splitMember(b.member),
        id: crypto.randomUUID(),
        size: b.size,
        content_type: "application/octet-stream",
        cache_control: "3600",
        checksum: "",
        owner: null,
        metadata: null,
        created_at: now,
        updated_at: now,
        last_accessed_at: now,
      }));
  const covered = new Set<string>();
  let bytes = 0;
  for (const e of entries) {
    const member = `${BLOB_PREFIX}${e.bucket}/${e.name}`;
    const blob = blobs.get(member);
    if (!blob) throw invalid(`${STORAGE_MEMBER}: ${member} is listed but not in the zip`);
    if (covered.has(member)) throw invalid(`${STORAGE_MEMBER}: ${member} is listed twice`);
    covered.add(member);
    if (blob.size !== e.size) {
      throw invalid(`${member}: ${blob.size} bytes, but ${STORAGE_MEMBER} says ${e.size}`);
    }
    const { bucket: bucketId, name } = splitMember(member);
    const bucket = buckets.get(bucketId);
    if (!bucket) throw invalid(`${member}: bucket "${bucketId}" is not in ${STORAGE_MEMBER}`);
    try {
      checkMime(bucket, e.content_type);
    } catch (err) {
      throw about(member, err);
    }
    if (bucket.file_size_limit !== null && e.size > bucket.file_size_limit) {
      throw new HearthError(
        "HEARTH_STORAGE_TOO_LARGE",
        `${member}: ${e.size} bytes, the bucket ${bucket.id} takes at most ${bucket.file_size_limit}`,
      );
    }
    if (e.metadata !== null) {
      try {
        JSON.parse(e.metadata);
      } catch {
        throw invalid(`${STORAGE_MEMBER}: the metadata of ${member} is not JSON text`);
      }
    }
    bytes += e.size;
    objects.push({
      member,
      row: { ...e, bucket: bucketId, name, version: "", key: "" },
    });
  }
  for (const b of blobs.values()) {
    if (!covered.has(b.member)) throw invalid(`${b.member}: not listed in ${STORAGE_MEMBER}`);
  }
  const quota = quotaBytes(host.sql, host.defaultQuotaBytes);
  const used = storageTablesExist(host.sql) ? usedBytes(host.sql) : 0;
  if (bytes > quota - used) {
    throw new HearthError(
      "HEARTH_STORAGE_QUOTA_EXCEEDED",
      `The zip's files (${bytes} bytes) would pass the project's storage quota: ${Math.max(0, quota - used)} bytes left`,
      { hint: "Raise the importing project's quota first: PUT {url}/storage/v1/quota (service key)." },
    );
  }
  return { buckets: [...buckets.values()], objects, bytes };
}

function newVersion(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/**
 * Reserves an upload row per object, then streams each member's bytes to its fresh key. On
 * failure everything staged so far is discarded and the error thrown.
 */
export async function stageFiles(host: FilesHost, zip: ZipArchive, plan: FilesPlan): Promise<void> {
  const { sql } = host;
  for (const ddl of STORAGE_DDL) sql.exec(ddl);
  const created = Date.now();
  host.storage.transactionSync(() => {
    for (const { row } of plan.objects) {
      row.version = newVersion();
      row.key = blobKey(host.projectId, row.bucket, row.name, row.version);
      sql.exec(
        `INSERT INTO _hearth_storage_uploads (version, bucket, name, key, mode, reserved, max_bytes, multipart_id, content_type, cache_control, metadata, owner, created_at)
         VALUES (?, ?, ?, ?, 'create', ?, ?, NULL, ?, ?, ?, ?, ?)`,
        row.version,
        row.bucket,
        row.name,
        row.key,
        row.size,
        row.size,
        row.content_type,
        row.cache_control,
        row.metadata,
        row.owner,
        created,
      );
    }
  });
  try {
    await host.armSweep();
    for (const { member, row } of plan.objects) row.checksum = await storeMember(host, zip, member, row);
  } catch (err) {
    await discardFiles(host, plan).catch((e) =>
      console.error("discarding a failed import's files failed (the alarm's sweep retries)", e),
    );
    throw err;
  }
}

/** One member, inflated as it streams, to its key; its checksum (R2's ETag). */
async function storeMember(
  host: FilesHost,
  zip: ZipArchive,
  member: string,
  row: ObjectRow,
): Promise<string> {
  const httpMetadata = { contentType: row.content_type, cacheControl: row.cache_control };
  // An empty file (by the directory, which planFiles checked against storage.json) is not read.
  const { stream, problem, exact } =
    row.size === 0 ? { stream: null, problem: () => null, exact: true } : await memberStream(zip, member);
  const stop = new AbortController();
  let piped: Promise<void> = Promise.resolve();
  let put: R2Object;
  try {
    if (stream === null) {
      // An empty stream piped into FixedLengthStream(0) left R2's put waiting (docs/gotchas.md).
      put = await host.r2.put(row.key, new Uint8Array(0), { httpMetadata });
    } else if (exact) {
      // stored (as export writes files): the ranged get's body goes to the put natively
      put = await host.r2.put(row.key, stream, { httpMetadata });
    } else {
      // R2 takes a stream of known length: the directory's size (memberStream holds it to it).
      const body = new FixedLengthStream(row.size);
      piped = stream.pipeTo(body.writable, { signal: stop.signal }).catch(() => {});
      put = await host.r2.put(row.key, body.readable, { httpMetadata });
    }
  } catch (err) {
    // a put refused before it read the stream: the pipe and the ranged get end here
    stop.abort();
    await piped;
    if (stream && !stream.locked) await stream.cancel().catch(() => {});
    const p = problem();
    if (p) throw p;
    console.error(`import: storing ${member} failed`, err);
    throw new HearthError(
      "HEARTH_STORAGE_UNAVAILABLE",
      `${member}: the file could not be stored; nothing was imported`,
      { hint: "Retry the import." },
    );
  }
  await piped;
  const p = problem();
  if (p) throw p;
  if (put.size !== row.size) throw invalid(`${member}: ${put.size} bytes stored, ${row.size} expected`);
  return put.etag;
}

/** Inside the import's transaction, after beginWalTx: the rows, WAL-logged; the reservations gone. */
export function commitFiles(sql: SqlStorage, plan: FilesPlan): void {
  assertNoFiles(sql);
  for (const b of plan.buckets) {
    sql.exec(
      `INSERT INTO _hearth_storage_buckets (id, name, public, file_size_limit, allowed_mime_types, read_policy, write_policy, owner, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      b.id,
      b.name,
      b.public,
      b.file_size_limit,
      b.allowed_mime_types,
      b.read_policy,
      b.write_policy,
      b.owner,
      b.created_at,
      b.updated_at,
    );
  }
  for (const { row } of plan.objects) {
    writeObject(sql, row);
    sql.exec("DELETE FROM _hearth_storage_uploads WHERE version = ?", row.version);
  }
}

/** After a failed import: the staged bytes and their upload rows go (the sweep retries what fails here). */
export async function discardFiles(host: FilesHost, plan: FilesPlan): Promise<void> {
  const staged = plan.objects.filter((o) => o.row.key !== "");
  for (let i = 0; i < staged.length; i += 1000) {
    const part = staged.slice(i, i + 1000);
    await host.r2.delete(part.map((o) => o.row.key));
    host.sql.exec(
      "DELETE FROM _hearth_storage_uploads WHERE version IN (SELECT value FROM json_each(?))",
      JSON.stringify(part.map((o) => o.row.version)),
    );
  }
}
