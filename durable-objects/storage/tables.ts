/**
 * The DO's file metadata tables. `_hearth_storage_buckets` and `_hearth_storage_objects` are
 * WAL-logged by triggers like user tables (WAL `tbl` is `_storage.buckets` / `_storage.objects`,
 * names no schema table can have), so every file change has an LSN for realtime and sync.
 * Uploads in flight and R2 keys waiting for deletion are bookkeeping, not logged.
 */
const WHEN = "WHEN (SELECT muted FROM _hearth_state WHERE id = 1) = 0";
const HEAD =
  "INSERT INTO _hearth_wal (tx, ts, tbl, op, pk, new, old) VALUES ((SELECT tx FROM _hearth_state WHERE id = 1), (SELECT ts FROM _hearth_state WHERE id = 1)";

/** The columns of `_hearth_storage_buckets`, in table order (WAL rows and the freeze archive). */
export const BUCKET_COLS = [
  "id",
  "name",
  "public",
  "file_size_limit",
  "allowed_mime_types",
  "read_policy",
  "write_policy",
  "owner",
  "created_at",
  "updated_at",
];
/** The columns of `_hearth_storage_objects`, in table order. */
export const OBJECT_COLS = [
  "bucket",
  "name",
  "id",
  "version",
  "key",
  "size",
  "content_type",
  "cache_control",
  "checksum",
  "owner",
  "metadata",
  "created_at",
  "updated_at",
  "last_accessed_at",
];

function rowJson(ref: "NEW" | "OLD", cols: string[]): string {
  return `json_object(${cols.map((c) => `'${c}', ${ref}.${c}`).join(", ")})`;
}

function triggers(table: string, walName: string, cols: string[], pk: string[]): string[] {
  const key = (ref: string) => `json_array(${pk.map((c) => `${ref}.${c}`).join(", ")})`;
  return [
    `CREATE TRIGGER IF NOT EXISTS ${table}_wal_i AFTER INSERT ON ${table} ${WHEN} BEGIN ${HEAD}, '${walName}', 'INSERT', ${key("NEW")}, ${rowJson("NEW", cols)}, NULL); END`,
    `CREATE TRIGGER IF NOT EXISTS ${table}_wal_u AFTER UPDATE ON ${table} ${WHEN} BEGIN ${HEAD}, '${walName}', 'UPDATE', ${key("NEW")}, ${rowJson("NEW", cols)}, ${rowJson("OLD", cols)}); END`,
    `CREATE TRIGGER IF NOT EXISTS ${table}_wal_d AFTER DELETE ON ${table} ${WHEN} BEGIN ${HEAD}, '${walName}', 'DELETE', ${key("OLD")}, NULL, ${rowJson("OLD", cols)}); END`,
  ];
}

export const STORAGE_DDL = [
  `CREATE TABLE IF NOT EXISTS _hearth_storage_buckets (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     public INTEGER NOT NULL,
     file_size_limit INTEGER,
     allowed_mime_types TEXT,
     read_policy TEXT NOT NULL,
     write_policy TEXT NOT NULL,
     owner TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   ) STRICT`,
  `CREATE TABLE IF NOT EXISTS _hearth_storage_objects (
     bucket TEXT NOT NULL,
     name TEXT NOT NULL,
     id TEXT NOT NULL,
     version TEXT NOT NULL,
     key TEXT NOT NULL,
     size INTEGER NOT NULL,
     content_type TEXT NOT NULL,
     cache_control TEXT NOT NULL,
     checksum TEXT NOT NULL,
     owner TEXT,
     metadata TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     last_accessed_at TEXT NOT NULL,
     PRIMARY KEY (bucket, name)
   ) STRICT, WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS _hearth_storage_uploads (
     version TEXT PRIMARY KEY,
     bucket TEXT NOT NULL,
     name TEXT NOT NULL,
     key TEXT NOT NULL,
     mode TEXT NOT NULL,
     reserved INTEGER NOT NULL,
     max_bytes INTEGER NOT NULL,
     multipart_id TEXT,
     content_type TEXT NOT NULL,
     cache_control TEXT NOT NULL,
     metadata TEXT,
     owner TEXT,
     created_at INTEGER NOT NULL
   ) STRICT`,
  `CREATE TABLE IF NOT EXISTS _hearth_storage_garbage (key TEXT PRIMARY KEY, created_at INTEGER NOT NULL) STRICT`,
  `CREATE TABLE IF NOT EXISTS _hearth_storage_settings (id INTEGER PRIMARY KEY CHECK (id = 1), quota_bytes INTEGER) STRICT`,
  ...triggers("_hearth_storage_buckets", "_storage.buckets", BUCKET_COLS, ["id"]),
  ...triggers("_hearth_storage_objects", "_storage.objects", OBJECT_COLS, ["bucket", "name"]),
];

/** WAL names of the logged tables (realtime and sync skip names that are not schema tables). */
export const STORAGE_WAL_TABLES = ["_storage.buckets", "_storage.objects"] as const;
