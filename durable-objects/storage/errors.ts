/**
 * Storage failures as values (they cross the RPC boundary) and their Supabase Storage
 * names: storage-js shows `message`, and `error` is the name Supabase users know.
 */
import { ERROR_STATUS, type ErrorCode, hearthErrorIn } from "../../shared/errors.ts";
import type { StorageFailure } from "./types.ts";

const SUPABASE_NAME: Partial<Record<ErrorCode, string>> = {
  HEARTH_STORAGE_BUCKET_NOT_FOUND: "NoSuchBucket",
  HEARTH_STORAGE_OBJECT_NOT_FOUND: "NoSuchKey",
  HEARTH_STORAGE_DUPLICATE: "Duplicate",
  HEARTH_STORAGE_INVALID_NAME: "InvalidKey",
  HEARTH_STORAGE_TOO_LARGE: "EntityTooLarge",
  HEARTH_STORAGE_QUOTA_EXCEEDED: "QuotaExceeded",
  HEARTH_STORAGE_MIME_TYPE: "InvalidMimeType",
  HEARTH_STORAGE_DENIED: "AccessDenied",
  HEARTH_STORAGE_BUCKET_NOT_EMPTY: "InvalidRequest",
  HEARTH_STORAGE_SIGNATURE_INVALID: "InvalidSignature",
  HEARTH_STORAGE_URL_EXPIRED: "ExpiredToken",
  HEARTH_STORAGE_UPLOAD_INCOMPLETE: "InvalidRequest",
  HEARTH_STORAGE_RANGE: "InvalidRange",
  HEARTH_BAD_REQUEST: "InvalidRequest",
  HEARTH_UNAUTHORIZED: "Unauthorized",
  PGRST301: "InvalidJWT",
  HEARTH_FORBIDDEN: "AccessDenied",
  HEARTH_NOT_FOUND: "NotFound",
  HEARTH_PROJECT_NOT_FOUND: "TenantNotFound",
  HEARTH_METHOD_NOT_ALLOWED: "MethodNotAllowed",
  HEARTH_PAYLOAD_TOO_LARGE: "EntityTooLarge",
  HEARTH_STORAGE_UNAVAILABLE: "SlowDown",
  HEARTH_RATE_LIMITED: "SlowDown",
};

/** A thrown storage failure inside the DO, turned into a value at the RPC edge. */
export class StorageFault extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function fault(code: ErrorCode, message: string): StorageFault {
  return new StorageFault(code, message);
}

export function failure(code: ErrorCode, message: string, status?: number): StorageFailure {
  return {
    ok: false,
    status: status ?? ERROR_STATUS[code],
    code,
    error: SUPABASE_NAME[code] ?? "InternalError",
    message,
  };
}

/** Anything thrown at the storage routes → Supabase Storage's error body (plus Hearth's code). */
export function storageErrorBody(err: unknown): {
  status: number;
  body: { statusCode: string; code: string; error: string; message: string; hint: string | null };
} {
  let f: StorageFailure;
  let hint: string | null = null;
  const known = hearthErrorIn(err); // drizzle wraps the catalog's 503 in its own error
  if (known) {
    f = failure(known.code, known.message, known.status);
    hint = known.hint;
  } else if (err instanceof StorageFault) f = failure(err.code, err.message);
  else
    f = failure("HEARTH_INTERNAL", "Internal error: the request could not be completed. It has been logged.");
  return {
    status: f.status,
    body: { statusCode: String(f.status), code: f.code, error: f.error, message: f.message, hint },
  };
}
