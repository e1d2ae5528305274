/**
 * The one error type of Hearth. Every failure a client can cause has a stable `code`
 * (append-only: never rename or reuse one) mapped to one HTTP status below. The wire body
 * follows PostgREST: `{code, message, details, hint}`, all four keys always present.
 * Where PostgREST or PostgreSQL has a code for the same failure we use theirs, so that
 * supabase-js users see what they already know.
 */

export const ERROR_STATUS = {
  // PostgREST codes
  PGRST100: 400, // malformed query string (filter, select, order, ...)
  PGRST102: 400, // malformed body or unsupported Content-Type
  PGRST103: 416, // range not satisfiable
  PGRST105: 405, // PUT filters must be exactly the primary key
  PGRST107: 406, // Accept header cannot be produced
  PGRST108: 400, // filter on an embedded resource that is not selected
  PGRST114: 400, // PUT with limit/offset
  PGRST115: 400, // PUT body primary key differs from the URL
  PGRST116: 406, // singular response requested, result has != 1 rows
  PGRST117: 405, // unsupported HTTP verb
  PGRST118: 400, // order by a to-many embed
  PGRST120: 400, // unsupported operator on an embedded resource
  PGRST122: 400, // invalid preferences with handling=strict
  PGRST123: 400, // aggregates not allowed
  PGRST124: 400, // max-affected exceeded
  PGRST125: 404, // invalid path
  PGRST200: 400, // no relationship between the tables
  PGRST201: 300, // ambiguous relationship
  PGRST202: 404, // function not found
  PGRST204: 400, // unknown column
  PGRST205: 404, // unknown table
  PGRST301: 401, // bad or missing JWT
  // PostgreSQL SQLSTATEs
  "21000": 400, // UPDATE/DELETE without WHERE (pg-safeupdate)
  "22003": 400, // numeric value out of range
  "22P02": 400, // value of the wrong type
  "22023": 400, // invalid parameter value
  "23502": 400, // not-null violation
  "23503": 409, // foreign key violation
  "23505": 409, // unique violation
  "23514": 400, // check violation
  "42501": 403, // permission denied (401 for the anon role, see statusFor)
  "42703": 400, // undefined column in an expression
  "42P10": 400, // on_conflict does not match a unique constraint
  "42704": 400, // unknown type in a cast
  "42883": 404, // undefined function / operator
  // Hearth's own
  HEARTH_BAD_REQUEST: 400,
  HEARTH_SCHEMA_INVALID: 400,
  HEARTH_SCHEMA_DESTRUCTIVE: 409,
  HEARTH_SCHEMA_MISSING: 404,
  HEARTH_SCHEMA_CONFLICT: 409, // a migration the existing rows cannot satisfy
  HEARTH_UNSUPPORTED: 400,
  HEARTH_IMPORT_INVALID: 400, // POST /import: not a zip, or a member that cannot be loaded (named)
  HEARTH_IMPORT_NOT_EMPTY: 409, // POST /import into a project whose tables hold rows
  HEARTH_IMPORT_TOO_LARGE: 413, // POST /import: a zip larger than HEARTH_MAX_IMPORT_BYTES
  HEARTH_APP_TABLE_CONFLICT: 409, // consent: the project has an app's table with another definition
  HEARTH_STORAGE_UNAVAILABLE: 503, // R2 failed after retries; nothing was changed
  HEARTH_CATALOG_UNAVAILABLE: 503, // D1 failed on the request path (auth, grants, projects); nothing was changed, retry-after
  HEARTH_SNAPSHOT_NOT_FOUND: 404, // as_of names a manifest version or time not kept (retention)
  HEARTH_FLUSH_CONFLICT: 409, // another flush committed the next manifest version first
  HEARTH_COLD_SCAN_TOO_LARGE: 413, // a query would merge more flushed rows than one statement can carry
  HEARTH_BAD_FILTER: 400, // a realtime subscription's filter does not parse or names no such column
  HEARTH_BAD_FRAME: 400, // a WebSocket frame that is not JSON or not of the protocol
  HEARTH_REALTIME_LIMIT: 429, // connections per project, channels per socket, frame size
  HEARTH_RATE_LIMITED: 429, // the project's request rate limit (HEARTH_PROJECT_RATE_LIMIT)
  HEARTH_SYNC_MUTATION_ORDER: 409, // a pushed mutation id not after the client's last one, with no record
  HEARTH_SYNC_ROW_NOT_FOUND: 404, // a pushed update whose key matches no row the caller may write
  HEARTH_SYNC_MUTATION_EXPIRED: 409, // a pushed mutation id whose record was pruned: decided before, answer no longer kept
  HEARTH_VECTOR_INVALID: 400, // a vector value or query: wrong dimensions, not a finite number, bad metric or k
  // Files (workers/storage, durable-objects/storage; docs/storage.md)
  HEARTH_STORAGE_BUCKET_NOT_FOUND: 404, // no such bucket (or the caller may not see it)
  HEARTH_STORAGE_OBJECT_NOT_FOUND: 404, // no such object in the bucket
  HEARTH_STORAGE_DUPLICATE: 409, // the bucket or object exists (upload without x-upsert)
  HEARTH_STORAGE_INVALID_NAME: 400, // empty, over-long, traversal, control characters, invalid UTF-8
  HEARTH_STORAGE_TOO_LARGE: 413, // the object is larger than the bucket's file_size_limit
  HEARTH_STORAGE_QUOTA_EXCEEDED: 413, // the project's stored bytes would pass its quota
  HEARTH_STORAGE_MIME_TYPE: 415, // the content type is not in the bucket's allowed_mime_types
  HEARTH_STORAGE_DENIED: 403, // the bucket policy or the app's storage scopes refuse it
  HEARTH_STORAGE_BUCKET_NOT_EMPTY: 409, // deleting a bucket that still holds objects
  HEARTH_STORAGE_SIGNATURE_INVALID: 403, // a signed URL's token is not ours or was altered
  HEARTH_STORAGE_URL_EXPIRED: 400, // a signed URL past its expiry
  HEARTH_STORAGE_UPLOAD_INCOMPLETE: 400, // the body ended before Content-Length, or was cut off
  HEARTH_STORAGE_RANGE: 416, // a Range the object cannot satisfy
  HEARTH_UNAUTHORIZED: 401,
  HEARTH_FORBIDDEN: 403,
  HEARTH_NOT_FOUND: 404,
  HEARTH_PROJECT_NOT_FOUND: 404,
  HEARTH_METHOD_NOT_ALLOWED: 405,
  HEARTH_CONFLICT: 409,
  HEARTH_PAYLOAD_TOO_LARGE: 413,
  HEARTH_UNSUPPORTED_MEDIA_TYPE: 415,
  HEARTH_MISCONFIGURED: 500,
  HEARTH_INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

export class HearthError extends Error {
  override readonly name = "HearthError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: string | null;
  readonly hint: string | null;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: string | null; hint?: string | null; status?: number } = {},
  ) {
    super(message);
    this.code = code;
    this.status = opts.status ?? ERROR_STATUS[code];
    this.details = opts.details ?? null;
    this.hint = opts.hint ?? null;
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, details: this.details, hint: this.hint };
  }
}

/**
 * The HearthError behind `err`: itself, or one a library wrapped in its `cause` chain
 * (drizzle wraps every failed query, the catalog's 503 included).
 */
export function hearthErrorIn(err: unknown): HearthError | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof HearthError) return e;
  }
  return null;
}

/** `retry-after` for errors that say when to come back (rate limits, an unavailable catalog). */
export function retryAfterOf(err: unknown): Record<string, string> {
  const s = (hearthErrorIn(err) as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
  return typeof s === "number" && Number.isFinite(s) ? { "retry-after": String(Math.ceil(s)) } : {};
}

/** Body and status for anything thrown; unknown errors become a generic 500. */
export function toErrorResponseParts(err: unknown): { status: number; body: ErrorBody; expected: boolean } {
  const known = hearthErrorIn(err);
  if (known) return { status: known.status, body: known.toBody(), expected: true };
  return {
    status: 500,
    body: {
      code: "HEARTH_INTERNAL",
      message: "Internal error: the request could not be completed. It has been logged.",
      details: null,
      hint: null,
    },
    expected: false,
  };
}

export const REQUEST_ID_HEADER = "x-request-id";

export function errorResponse(
  err: unknown,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): Response {
  const { status, body, expected } = toErrorResponseParts(err);
  if (status >= 500 && !expected) {
    console.error(`[${requestId}] unexpected error`, err);
  }
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    [REQUEST_ID_HEADER]: requestId,
    ...retryAfterOf(err),
    ...extraHeaders,
  };
  if (status === 401) {
    // RFC 6750, as PostgREST answers token failures.
    headers["www-authenticate"] =
      body.code === "PGRST301"
        ? `Bearer error="invalid_token", error_description="${body.message.replaceAll('"', "'")}"`
        : "Bearer";
  }
  return new Response(JSON.stringify(body), { status, headers });
}
