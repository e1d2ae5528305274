/**
 * File events for realtime and sync: WAL entries of `_storage.objects` / `_storage.buckets`
 * as rows of Supabase's `storage.objects` / `storage.buckets`, and who may see them. A
 * subscriber sees an object's change only if it could read the object now (the bucket's
 * current read policy, an app's `storage:<bucket>:read` scope, `owner` buckets: its own
 * objects), and a bucket's change only if it could see the bucket (as `listBuckets`). An
 * update that moves an object into or out of what it may read arrives as an INSERT or a
 * DELETE, as for tables (realtime/changes.ts).
 *
 * The two followed names, `storage.objects` and `storage.buckets`, are described as
 * read-only tables (TableInfo) so realtime filters and sync frames use the same code as
 * schema tables; their primary key is `id` (an object keeps its id through upserts and moves).
 */
import type { Principal } from "../../shared/principal.ts";
import type { WireRow } from "../../shared/rest/evaluate.ts";
import type { ColumnType } from "../../shared/schema.ts";
import type { VisibleChange } from "../realtime/changes.ts";
import type { ColumnInfo, TableInfo } from "../schema-index.ts";
import type { WalEntry } from "../wal.ts";
import { canManageBuckets, tryBucketAccess } from "./access.ts";
import type { StorageCaller } from "./types.ts";

export const FILE_OBJECTS = "storage.objects";
export const FILE_BUCKETS = "storage.buckets";
export type FileTableName = typeof FILE_OBJECTS | typeof FILE_BUCKETS;

/** WAL `tbl` → followed name. */
const BY_WAL: Record<string, FileTableName> = {
  "_storage.objects": FILE_OBJECTS,
  "_storage.buckets": FILE_BUCKETS,
};
const WAL_OF: Record<FileTableName, string> = {
  [FILE_OBJECTS]: "_storage.objects",
  [FILE_BUCKETS]: "_storage.buckets",
};

function describe(name: FileTableName, cols: [string, ColumnType][]): TableInfo {
  const columns = new Map<string, ColumnInfo>(
    cols.map(([c, type]) => [
      c,
      { name: c, type, def: c === "id" ? { type, primaryKey: true } : { type }, managed: false },
    ]),
  );
  const def = { columns: Object.fromEntries(cols.map(([c, type]) => [c, { type }])) };
  return {
    name,
    def,
    columns,
    primaryKey: ["id"],
    policy: { read: "service", write: "service" },
    ownerScoped: false,
  };
}

/** Supabase's storage.objects columns, as far as Hearth has them. */
const OBJECT_INFO = describe(FILE_OBJECTS, [
  ["id", "uuid"],
  ["bucket_id", "text"],
  ["name", "text"],
  ["owner", "text"],
  ["owner_id", "text"],
  ["version", "text"],
  ["metadata", "json"],
  ["user_metadata", "json"],
  ["created_at", "timestamp"],
  ["updated_at", "timestamp"],
  ["last_accessed_at", "timestamp"],
]);

/** Supabase's storage.buckets columns, plus Hearth's `policy`. */
const BUCKET_INFO = describe(FILE_BUCKETS, [
  ["id", "text"],
  ["name", "text"],
  ["owner", "text"],
  ["public", "boolean"],
  ["file_size_limit", "bigint"],
  ["allowed_mime_types", "json"],
  ["policy", "json"],
  ["created_at", "timestamp"],
  ["updated_at", "timestamp"],
]);

export function fileTable(name: string): TableInfo | null {
  return name === FILE_OBJECTS ? OBJECT_INFO : name === FILE_BUCKETS ? BUCKET_INFO : null;
}

/** The followed name of a WAL `tbl`, or null for schema tables. */
export function fileTableOfWal(tbl: string): FileTableName | null {
  return BY_WAL[tbl] ?? null;
}

export function walNameOf(name: FileTableName): string {
  return WAL_OF[name];
}

function parseJson(v: unknown): unknown {
  if (typeof v !== "string") return v ?? null;
  try {
    return JSON.parse(v);
  } catch {
    return null;
  }
}

/** A `_hearth_storage_objects` row (as the WAL logs it) → a storage.objects record. */
export function objectRecord(r: WireRow): WireRow {
  const size = Number(r.size);
  return {
    id: r.id,
    bucket_id: r.bucket,
    name: r.name,
    owner: r.owner ?? null,
    owner_id: r.owner ?? null,
    version: r.version,
    // The `metadata` that info and list answer (storage-js FileObject).
    metadata: {
      eTag: `"${String(r.checksum)}"`,
      size,
      mimetype: r.content_type,
      cacheControl: r.cache_control,
      lastModified: r.updated_at,
      contentLength: size,
      httpStatusCode: 200,
    },
    user_metadata: parseJson(r.metadata),
    created_at: r.created_at,
    updated_at: r.updated_at,
    last_accessed_at: r.last_accessed_at,
  };
}

/** A `_hearth_storage_buckets` row (as the WAL logs it) → a storage.buckets record. */
export function bucketRecord(r: WireRow): WireRow {
  return {
    id: r.id,
    name: r.name,
    owner: r.owner ?? "",
    public: r.public === 1 || r.public === true,
    file_size_limit: r.file_size_limit ?? null,
    allowed_mime_types: parseJson(r.allowed_mime_types),
    policy: { read: r.read_policy, write: r.write_policy },
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

interface BucketPolicyRow {
  id: string;
  read_policy: string;
  write_policy: string;
}

/**
 * Who sees which file rows, for one batch of entries: bucket policies are read once per
 * bucket (their current values) and answers kept per principal. Make a new one per batch.
 */
export class FileVisibility {
  private readonly buckets = new Map<string, BucketPolicyRow | null>();

  constructor(private readonly sql: SqlStorage) {}

  private bucket(id: string): BucketPolicyRow | null {
    let b = this.buckets.get(id);
    if (b === undefined) {
      b =
        (this.sql
          .exec("SELECT id, read_policy, write_policy FROM _hearth_storage_buckets WHERE id = ?", id)
          .toArray()[0] as unknown as BucketPolicyRow | undefined) ?? null;
      this.buckets.set(id, b);
    }
    return b;
  }

  /** Could `principal` read this object row (raw WAL form) now? */
  seesObject(principal: Principal, raw: WireRow | null): boolean {
    if (raw === null) return false;
    const caller: StorageCaller = { kind: "principal", principal };
    const bucket = this.bucket(String(raw.bucket));
    // A bucket deleted since: only the service key still sees what was in it.
    if (!bucket) return principal.role === "service";
    const access = tryBucketAccess(caller, bucket, false);
    return access !== null && (access.kind === "all" || raw.owner === access.ownerId);
  }

  /** Could `principal` see this bucket row (raw WAL form), as `listBuckets` decides? */
  seesBucket(principal: Principal, raw: WireRow | null): boolean {
    if (raw === null) return false;
    const caller: StorageCaller = { kind: "principal", principal };
    const b = {
      id: String(raw.id),
      read_policy: String(raw.read_policy),
      write_policy: String(raw.write_policy),
    };
    return (
      canManageBuckets(caller) ||
      tryBucketAccess(caller, b, false) !== null ||
      tryBucketAccess(caller, b, true) !== null
    );
  }

  /**
   * What `principal` sees of a file WAL entry, records in Supabase's columns; null when
   * nothing (not a file entry, or neither row visible).
   */
  visible(principal: Principal, entry: WalEntry): VisibleChange | null {
    const table = fileTableOfWal(entry.table);
    if (table === null) return null;
    const sees = table === FILE_OBJECTS ? this.seesObject.bind(this) : this.seesBucket.bind(this);
    const record = table === FILE_OBJECTS ? objectRecord : bucketRecord;
    const seesNew = entry.new !== null && sees(principal, entry.new);
    const seesOld = entry.old !== null && sees(principal, entry.old);
    const n = seesNew ? record(entry.new!) : null;
    const o = seesOld ? record(entry.old!) : null;
    if (n && o) return { type: entry.op, record: n, old: o };
    if (n) return { type: "INSERT", record: n, old: null };
    if (o) return { type: "DELETE", record: null, old: o };
    return null;
  }
}

/** One keyset page of a file table for a sync snapshot: the rows `principal` may see. */
export function fileSnapshotPage(
  sql: SqlStorage,
  principal: Principal,
  name: FileTableName,
  after: unknown[] | null,
  limit: number,
): { rows: WireRow[]; next: unknown[] | null } {
  const table = name === FILE_OBJECTS ? "_hearth_storage_objects" : "_hearth_storage_buckets";
  // No storage call yet: no tables, no files.
  if (
    sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", table).toArray().length === 0
  ) {
    return { rows: [], next: null };
  }
  const vis = new FileVisibility(sql);
  // Objects in (bucket, name) order, buckets by id: clients key both by `id`, so a row that
  // moves between pages converges through the changes after the snapshot's cursor.
  const raw = (
    name === FILE_OBJECTS
      ? after
        ? sql.exec(
            "SELECT * FROM _hearth_storage_objects WHERE (bucket, name) > (?, ?) ORDER BY bucket, name LIMIT ?",
            after[0] as string,
            after[1] as string,
            limit,
          )
        : sql.exec("SELECT * FROM _hearth_storage_objects ORDER BY bucket, name LIMIT ?", limit)
      : after
        ? sql.exec(
            "SELECT * FROM _hearth_storage_buckets WHERE id > ? ORDER BY id LIMIT ?",
            after[0] as string,
            limit,
          )
        : sql.exec("SELECT * FROM _hearth_storage_buckets ORDER BY id LIMIT ?", limit)
  ).toArray() as WireRow[];
  const rows =
    name === FILE_OBJECTS
      ? raw.filter((r) => vis.seesObject(principal, r)).map(objectRecord)
      : raw.filter((r) => vis.seesBucket(principal, r)).map(bucketRecord);
  const last = raw[raw.length - 1];
  const next =
    raw.length < limit || !last ? null : name === FILE_OBJECTS ? [last.bucket, last.name] : [last.id];
  return { rows, next };
}

/**
 * A bucket's read policy changed: which of its objects a principal may read changed without
 * any object changing, so a replica of storage.objects must be cut again (sync resyncs).
 */
export function readPolicyChanged(e: WalEntry): boolean {
  return e.table === "_storage.buckets" && e.op === "UPDATE" && e.new?.read_policy !== e.old?.read_policy;
}

/** Whether a bucket's read policy changed between LSNs `after` (excluded) and `upto`. */
export function readPolicyChangedIn(sql: SqlStorage, after: number, upto: number): boolean {
  return (
    sql
      .exec(
        `SELECT 1 FROM _hearth_wal WHERE lsn > ? AND lsn <= ? AND tbl = '_storage.buckets' AND op = 'UPDATE'
           AND json_extract(new, '$.read_policy') IS NOT json_extract(old, '$.read_policy') LIMIT 1`,
        after,
        upto,
      )
      .toArray().length > 0
  );
}
