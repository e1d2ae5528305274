/**
 * What the engine reports: a mutation the server rejected or could no longer answer
 * (`SyncMutationError`, with the server's code and message), a failure of the feed or of a live
 * query (`SyncError`: an `error` frame, a frame the engine could not apply, a query on a table it
 * does not follow), and options that cannot work (`SyncConfigError`). All are `HearthError`s
 * with status 0: a socket carries no HTTP status.
 */
import { HearthError } from "../errors.ts";
import type { QueuedMutation } from "../replica/types.ts";
import type { ErrorBody } from "./protocol.ts";

/**
 * A mutation that did not apply: `outcome` "rejected" (the server refused it; the optimistic
 * change was rolled back) or "expired" (its answer was pruned and it may or may not have been
 * applied: the rows the feed brings are the truth; docs/sync.md, Push). `code`, `message`,
 * `details` and `hint` are the server's.
 *
 * @example
 * ```ts
 * sync.insert("todos", row).catch((e) => {
 *   if (e instanceof SyncMutationError && e.outcome === "rejected") toast(`${e.code}: ${e.message}`);
 * });
 * ```
 */
export class SyncMutationError extends HearthError {
  override readonly name: string = "SyncMutationError";

  constructor(
    readonly outcome: "rejected" | "expired",
    error: ErrorBody,
    readonly mutation: QueuedMutation,
  ) {
    super(error.code, error.message, { details: error.details ?? null, hint: error.hint ?? null });
  }
}

/**
 * A failure of the feed or of a live query: an `error` frame's body, or one the engine made
 * (`HEARTH_SYNC_CLIENT`, `HEARTH_SYNC_UNKNOWN_TABLE`; `cause` holds what was thrown).
 */
export class SyncError extends HearthError {
  override readonly name: string = "SyncError";

  constructor(body: ErrorBody, options: { cause?: unknown } = {}) {
    super(body.code, body.message, {
      details: body.details ?? null,
      hint: body.hint ?? null,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
  }

  static client(message: string, details: string | null = null, cause?: unknown): SyncError {
    return new SyncError({ code: "HEARTH_SYNC_CLIENT", message, details, hint: null }, { cause });
  }

  /** A read, write or live query on a table the engine does not follow. */
  static unknownTable(table: string, followed: readonly string[]): SyncError {
    return new SyncError({
      code: "HEARTH_SYNC_UNKNOWN_TABLE",
      message: `${table} is not one of the synced tables (${followed.join(", ")})`,
      details: null,
      hint: `Follow it: createSync({ tables: [${[...followed, table].map((t) => JSON.stringify(t)).join(", ")}] })`,
    });
  }

  /** A write to a table sync only reads (`storage.objects`, `storage.buckets`). */
  static readOnly(table: string): SyncError {
    return new SyncError({
      code: "HEARTH_SYNC_READ_ONLY",
      message: `${table} is read-only: sync follows it, it does not write it`,
      details: null,
      hint: "Upload, move and remove files with client.storage; the replica follows.",
    });
  }
}

/** `createSync` options that cannot work (`HEARTH_SYNC_CONFIG`), thrown by `createSync` or the feed. */
export class SyncConfigError extends HearthError {
  override readonly name: string = "SyncConfigError";

  constructor(message: string) {
    super("HEARTH_SYNC_CONFIG", message);
  }
}
