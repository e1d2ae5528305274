/**
 * What the engine reports: a mutation the server rejected or could no longer answer
 * (`SyncMutationError`, with the server's code and message), and a failure of the feed
 * itself (`SyncError`: an `error` frame, a frame the engine could not apply, a closed socket).
 */
import type { QueuedMutation } from "../replica/types.ts";
import type { ErrorBody } from "./protocol.ts";

/**
 * A mutation that did not apply: `status` "rejected" (the server refused it; the optimistic
 * change was rolled back) or "expired" (its answer was pruned and it may or may not have been
 * applied: the rows the feed brings are the truth; docs/sync.md, Push).
 */
export class SyncMutationError extends Error {
  override name = "SyncMutationError";
  readonly code: string;
  readonly details: string | null;
  readonly hint: string | null;

  constructor(
    readonly status: "rejected" | "expired",
    error: ErrorBody,
    readonly mutation: QueuedMutation,
  ) {
    super(error.message);
    this.code = error.code;
    this.details = error.details ?? null;
    this.hint = error.hint ?? null;
  }
}

/** A failure of the feed: an `error` frame's body, or one the engine made (`HEARTH_SYNC_CLIENT`). */
export class SyncError extends Error {
  override name = "SyncError";
  readonly code: string;
  readonly details: string | null;
  readonly hint: string | null;

  constructor(body: ErrorBody) {
    super(body.message);
    this.code = body.code;
    this.details = body.details ?? null;
    this.hint = body.hint ?? null;
  }

  static client(message: string, details: string | null = null): SyncError {
    return new SyncError({ code: "HEARTH_SYNC_CLIENT", message, details, hint: null });
  }
}
