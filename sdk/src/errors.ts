/**
 * The one error type of the SDK. Server failures keep the server's stable `code` (PostgREST
 * `PGRSTnnn`, PostgreSQL SQLSTATEs such as `23505`, Hearth's `HEARTH_*`, GoTrue's
 * `invalid_credentials`, OAuth's `invalid_grant`: see docs/error-codes.md) and HTTP status;
 * failures that never reached a server get a client code below and status 0.
 */
import type { ErrorCode as ServerErrorCode } from "../../shared/errors.ts";
import type { CryptoErrorCode } from "./crypto/errors.ts";

/**
 * Codes the SDK raises itself, without a server answer (status 0 unless said). Append-only:
 * never rename or reuse one. The encryption's codes are in `CRYPTO_ERROR_CODES`.
 */
export const CLIENT_ERROR_CODES = {
  /** The request never got an answer: DNS, refused or reset connection, offline. */
  HEARTH_NETWORK: "HEARTH_NETWORK",
  /** The caller's AbortSignal fired. */
  HEARTH_ABORTED: "HEARTH_ABORTED",
  /** An answer that is not one of Hearth's error shapes (a proxy's HTML page): status kept. */
  HEARTH_BAD_RESPONSE: "HEARTH_BAD_RESPONSE",
  /** The call needs a signed-in session and there is none. */
  HEARTH_NOT_SIGNED_IN: "HEARTH_NOT_SIGNED_IN",
  /** The client was made with the platform URL and no app session names a project yet. */
  HEARTH_NO_PROJECT: "HEARTH_NO_PROJECT",
  /** An OAuth redirect whose `state` is not the one this client sent (or none is pending). */
  HEARTH_OAUTH_STATE: "HEARTH_OAUTH_STATE",
  /** Sync: the engine failed on its side (a frame it could not apply, a live query that threw). */
  HEARTH_SYNC_CLIENT: "HEARTH_SYNC_CLIENT",
  /** Sync: `createSync` options that cannot work (no tables, no token, no WebSocket, a wrong key). */
  HEARTH_SYNC_CONFIG: "HEARTH_SYNC_CONFIG",
  /** Sync: a read, write or live query on a table the engine does not follow. */
  HEARTH_SYNC_UNKNOWN_TABLE: "HEARTH_SYNC_UNKNOWN_TABLE",
  /** Sync: a write to a table sync only reads (`storage.objects`, `storage.buckets`). */
  HEARTH_SYNC_READ_ONLY: "HEARTH_SYNC_READ_ONLY",
  /** Replica: another tab or engine holds this IndexedDB replica (`ReplicaInUseError`). */
  HEARTH_REPLICA_IN_USE: "HEARTH_REPLICA_IN_USE",
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

/**
 * Every code a `HearthError` may carry. Server codes are listed for completion in editors; the
 * auth endpoints add GoTrue's and OAuth's lower-case codes, so any string may appear.
 */
export type HearthErrorCode = ServerErrorCode | ClientErrorCode | CryptoErrorCode | (string & {});

export interface HearthErrorOptions {
  /** HTTP status of the answer; 0 when there was none. */
  status?: number;
  details?: string | null;
  hint?: string | null;
  /** The answer's `x-request-id`, to find the request in the server's log. */
  requestId?: string | null;
  cause?: unknown;
}

/**
 * A failure with a stable `code`, the HTTP `status` (0 when no answer came back), and the
 * PostgREST-style `message`, `details` and `hint`. Every error the SDK raises is one:
 * `HearthCryptoError`, `SyncError`, `SyncMutationError` and `SyncConfigError` are subclasses
 * that add their own fields.
 *
 * @example
 * ```ts
 * const { error } = await hearth.from("settings").insert({ key: "theme" });
 * if (error instanceof HearthError && error.code === "23505") console.log("already set");
 * ```
 */
export class HearthError extends Error {
  // Typed as string, not the literal, so that subclasses can name themselves.
  override readonly name: string = "HearthError";
  readonly code: HearthErrorCode;
  readonly status: number;
  readonly details: string | null;
  readonly hint: string | null;
  readonly requestId: string | null;

  constructor(code: HearthErrorCode, message: string, opts: HearthErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status ?? 0;
    this.details = opts.details ?? null;
    this.hint = opts.hint ?? null;
    this.requestId = opts.requestId ?? null;
  }

  /** The PostgREST wire shape, plus `status`. */
  toJSON(): { code: string; message: string; details: string | null; hint: string | null; status: number } {
    return {
      code: this.code,
      message: this.message,
      details: this.details,
      hint: this.hint,
      status: this.status,
    };
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : v === null || v === undefined ? null : JSON.stringify(v);
}

/**
 * The error of a failed answer, from whichever shape its body has: PostgREST's
 * `{code, message, details, hint}`, GoTrue's `{code, error_code, msg}`, or RFC 6749's
 * `{error, error_description}`. Anything else is `HEARTH_BAD_RESPONSE`.
 */
export function errorFromBody(status: number, body: unknown, requestId: string | null = null): HearthError {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const opts = { status, requestId };
  if (typeof b.code === "string" && typeof b.message === "string") {
    return new HearthError(b.code, b.message, { ...opts, details: str(b.details), hint: str(b.hint) });
  }
  const gotrueCode =
    typeof b.error_code === "string" ? b.error_code : typeof b.code === "string" ? b.code : null;
  if (gotrueCode !== null && typeof b.msg === "string") {
    // weak_password carries its reasons beside the message.
    return new HearthError(gotrueCode, b.msg, { ...opts, details: str(b.weak_password) });
  }
  if (typeof b.error === "string") {
    const description = typeof b.error_description === "string" ? b.error_description : b.error;
    return new HearthError(b.error, description, opts);
  }
  // postgrest-js wraps a body that is not JSON as {message: text}.
  const raw = typeof body === "string" ? body : typeof b.message === "string" ? b.message : str(body);
  const text = raw === null ? null : raw.slice(0, 500);
  return new HearthError("HEARTH_BAD_RESPONSE", `The server answered ${status} without a Hearth error body`, {
    ...opts,
    details: text === "" ? null : text,
  });
}

/** The error of a non-2xx `Response` (reads its body). */
export async function errorFromResponse(res: Response): Promise<HearthError> {
  const text = await res.text().catch(() => "");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: errorFromBody keeps the text as details
  }
  return errorFromBody(res.status, body, res.headers.get("x-request-id"));
}

/** Whether `err` is an abort (the caller's signal), as fetch and timers report it. */
export function isAbort(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === "AbortError" || e?.code === "ABORT_ERR" || e?.name === "TimeoutError";
}

/** A rejected `fetch` (or an abort) as a `HearthError`; a `HearthError` is kept as it is. */
export function errorFromThrown(err: unknown): HearthError {
  if (err instanceof HearthError) return err;
  if (isAbort(err)) return new HearthError("HEARTH_ABORTED", "The request was aborted", { cause: err });
  const e = err as { message?: unknown; cause?: { message?: unknown; code?: unknown } } | null;
  const cause = e?.cause;
  const why = [e?.message, cause?.code ?? cause?.message].filter((x) => typeof x === "string").join(": ");
  return new HearthError("HEARTH_NETWORK", `Network error: ${why || String(err)}`, { cause: err });
}
