/**
 * The RPC contract between the gateway's storage routes (workers/storage) and the
 * project's Durable Object (durable-objects/storage): operations on file metadata as plain
 * values, results as values (a HearthError does not survive RPC as its class).
 */
import type { Principal } from "../../shared/principal.ts";

/** Who asks: a principal (policies and scopes apply), anyone (public URL), or a signed URL. */
/** Who a storage call is for; `ip` (cf-connecting-ip) counts anonymous callers per client. */
export type StorageCaller =
  | { kind: "principal"; principal: Principal; ip?: string | null }
  | { kind: "public"; projectId: string; ip?: string | null }
  | { kind: "signed"; projectId: string; owner: string | null; ip?: string | null };

export type SortColumn = "name" | "created_at" | "updated_at" | "last_accessed_at";

export interface BucketInput {
  id?: string | undefined;
  name?: string | undefined;
  public?: boolean | undefined;
  file_size_limit?: number | string | null | undefined;
  allowed_mime_types?: string[] | null | undefined;
  policy?: { read?: string | undefined; write?: string | undefined } | undefined;
}

export type UploadMode = "create" | "upsert" | "update";

export type StorageOp =
  | { op: "listBuckets"; limit: number | null; offset: number; search: string | null }
  | { op: "getBucket"; id: string }
  | { op: "createBucket"; input: BucketInput }
  | { op: "updateBucket"; id: string; input: BucketInput }
  | { op: "emptyBucket"; id: string }
  | { op: "deleteBucket"; id: string }
  | {
      op: "beginUpload";
      bucket: string;
      name: string;
      mode: UploadMode;
      contentType: string;
      declaredSize: number | null;
      cacheControl: string;
      metadata: string | null;
    }
  | { op: "markMultipart"; version: string; multipartId: string }
  | { op: "commitUpload"; version: string; size: number; checksum: string }
  | { op: "abortUpload"; version: string }
  | { op: "read"; bucket: string; name: string }
  | { op: "authorize"; bucket: string; name: string; write: boolean; mustExist: boolean }
  | {
      op: "list";
      bucket: string;
      prefix: string;
      limit: number;
      offset: number;
      sortColumn: SortColumn;
      sortOrder: "asc" | "desc";
      search: string;
    }
  | { op: "move"; bucket: string; from: string; to: string; toBucket: string }
  | { op: "beginCopy"; bucket: string; from: string; to: string; toBucket: string }
  | { op: "remove"; bucket: string; names: string[] }
  | { op: "usage" }
  | { op: "setQuota"; bytes: number | null }
  | { op: "sweep"; olderThanMs: number };

export interface StorageFailure {
  ok: false;
  status: number;
  /** stable HEARTH_* code (docs/error-codes.md) */
  code: string;
  /** Supabase Storage's name for the failure (NoSuchKey, EntityTooLarge, ...) */
  error: string;
  message: string;
  /** 429 HEARTH_RATE_LIMITED: seconds until a request is admitted again (the retry-after header) */
  retryAfterSeconds?: number;
}

export type StorageResult = { ok: true; value: unknown } | StorageFailure;

/** An object as the DO stores it (one row of `_hearth_storage_objects`). */
export interface ObjectRow {
  bucket: string;
  name: string;
  id: string;
  version: string;
  key: string;
  size: number;
  content_type: string;
  cache_control: string;
  checksum: string;
  owner: string | null;
  metadata: string | null;
  created_at: string;
  updated_at: string;
  last_accessed_at: string;
}

/** What beginUpload hands the gateway: where to put the bytes and how many it may put. */
export interface UploadTicket {
  version: string;
  key: string;
  /** most bytes the body may have (bucket limit and remaining quota) */
  maxBytes: number;
  /** which of the two sets maxBytes */
  boundBy: "bucket" | "quota";
}
