/**
 * File metadata as sync follows it (docs/sync.md, "Files"): `storage.objects` and
 * `storage.buckets` are read-only tables of Supabase's columns, keyed by `id`, holding the
 * files and buckets the credential may read. Files themselves change through the storage API
 * (`client.storage`); the replica follows.
 * @example
 * type DB = { todos: Todo } & FileTables;
 * const sync = createSync<DB>({ url, getToken, tables: ["todos", "storage.objects"], replica });
 * sync.live("storage.objects", { where: (f) => f.bucket_id === "avatars", orderBy: "name" }, render);
 */

/** A row of `storage.objects`: what `storage.from(bucket).info()` and `list()` tell of a file. */
export interface StorageObjectRow {
  [column: string]: unknown;
  id: string;
  bucket_id: string;
  /** the path in the bucket, e.g. "folder/avatar.png" */
  name: string;
  /** the uploader's account id (null for keys) */
  owner: string | null;
  owner_id: string | null;
  version: string;
  metadata: {
    eTag: string;
    size: number;
    mimetype: string;
    cacheControl: string;
    lastModified: string;
    contentLength: number;
    httpStatusCode: number;
  };
  /** the upload's `metadata` option */
  user_metadata: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
  last_accessed_at: string;
}

/** A row of `storage.buckets` (as `storage.getBucket`, plus Hearth's read/write policy). */
export interface StorageBucketRow {
  [column: string]: unknown;
  id: string;
  name: string;
  owner: string;
  public: boolean;
  file_size_limit: number | null;
  allowed_mime_types: string[] | null;
  policy: { read: string; write: string };
  created_at: string;
  updated_at: string;
}

/** The file tables, to add to a typed engine's tables: `createSync<MyTables & FileTables>(...)`. */
export type FileTables = {
  "storage.objects": StorageObjectRow;
  "storage.buckets": StorageBucketRow;
};

/** Tables a sync engine only reads (the server refuses pushes to them). */
export const READ_ONLY_TABLES: readonly string[] = ["storage.objects", "storage.buckets"];

/** The tables of `DB` that take writes (every one but the file tables). */
export type WritableTable<DB> = Exclude<keyof DB & string, keyof FileTables>;
