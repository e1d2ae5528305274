/**
 * The push side of the feed (docs/sync.md, Push): one push in flight at a time over the
 * current socket, the oldest pending mutations first. Each answer settles its mutation:
 * applied or duplicate → kept in the overlay until its change arrives (pull.ts drops it);
 * rejected or expired → removed, its optimistic change rolled back, the reason reported;
 * retryable → pushed again, same ids, after a back-off. Answers run in the serial chain with
 * the pull frames, so the queue and the replica change in the order the server answered.
 */
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { type SyncError, SyncMutationError } from "./errors.ts";
import type { Local } from "./local.ts";
import type { ClientFrame, ErrorBody, ServerFrame, SyncLimits } from "./protocol.ts";
import { nextBatch } from "./push.ts";
import type { MutationResult } from "./types.ts";

type PushResultFrame = Extract<ServerFrame, { type: "push_result" }>;

/** A socket that said hello: where pushes go. */
export interface Link {
  send(frame: ClientFrame): boolean;
  readonly limits: SyncLimits;
}

export interface OutboxHost {
  local: Local;
  backoff: Required<BackoffOptions>;
  report(err: unknown): void;
  /** a mutation left the overlay: its table's view changed */
  changed(table: string): void;
  answered(id: number, outcome: MutationResult | SyncMutationError): void;
  refused(err: SyncMutationError): void;
  /** the queue may have become empty */
  settled(): void;
}

interface InFlight {
  link: Link;
  ref: string;
  ids: number[];
  answered: number;
  /** a retryable failure: push these again after a delay */
  retry: boolean;
  /** an applied mutation waits for a change past the cursor */
  awaitingChange: boolean;
}

export class Outbox {
  private link: Link | null = null;
  private inFlight: InFlight | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private pushes = 0;
  /** lowered when the server refuses a push as too large */
  private maxBatch = Number.POSITIVE_INFINITY;

  constructor(private readonly host: OutboxHost) {}

  /** A new socket is ready (it pushes at once, even if the last one waited to retry); null: closed. */
  attach(link: Link | null): void {
    this.link = link;
    this.inFlight = null; // unanswered mutations stay pending: the next socket pushes them again
    this.clearTimer();
    this.maxBatch = Number.POSITIVE_INFINITY;
    this.kick();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Starts the next push if a socket is ready, none is in flight and one is pending. */
  kick(): void {
    const link = this.link;
    if (!link || this.inFlight || this.timer) return;
    const pending = this.host.local.pending();
    if (pending.length === 0) return;
    const push: InFlight = {
      link,
      ref: `push-${++this.pushes}`,
      ids: [],
      answered: 0,
      retry: false,
      awaitingChange: false,
    };
    this.inFlight = push;
    const { local } = this.host;
    const batch = nextBatch(pending, link.limits, this.maxBatch);
    if (batch.tooLarge) {
      const m = batch.tooLarge;
      this.inFlight = null;
      const body = {
        code: "HEARTH_REALTIME_LIMIT",
        message: `Mutation ${m.id} is over the server's frame size of ${link.limits.frameBytes} bytes`,
        details: null,
        hint: "Store large values as files, or split the row.",
      };
      void local
        .run(() => this.refuse(m.id, "rejected", body))
        .then(() => this.kick())
        .catch((err) => this.host.report(err));
      return;
    }
    push.ids = batch.mutations.map((m) => m.id);
    const frame = { type: "push", clientId: local.meta.clientId, mutations: batch.mutations, ref: push.ref };
    if (!link.send(frame as ClientFrame)) this.inFlight = null; // closed: the next socket pushes them
  }

  private retryLater(): void {
    this.inFlight = null;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.kick();
      },
      backoffDelay(this.attempt++, this.host.backoff),
    );
  }

  /** A `push_result` (in the serial chain). */
  async result(f: PushResultFrame): Promise<void> {
    const push = this.inFlight;
    const { local } = this.host;
    if (f.clientId !== local.meta.clientId) return;
    const m = local.find(f.id);
    if (m?.state === "pending") {
      if (f.status === "applied" || f.status === "duplicate") {
        this.attempt = 0;
        const lsn = f.lsn ?? null;
        if ((await this.confirm(m.id, lsn)) && push) push.awaitingChange = true;
        this.host.answered(m.id, { id: m.id, status: f.status, lsn });
      } else if (f.status === "rejected" && f.retryable) {
        if (push) push.retry = true;
      } else {
        await this.refuse(m.id, f.status === "expired" ? "expired" : "rejected", f.error!);
      }
    }
    // The push may have been dropped with its socket during the awaits above.
    if (!push || this.inFlight !== push || !push.ids.includes(f.id)) return;
    push.answered++;
    if (push.answered < push.ids.length) return;
    this.inFlight = null;
    // An applied change we are not sent (a row we cannot read) still moves the cursor: ask.
    if (push.awaitingChange) push.link.send({ type: "ping" });
    if (push.retry) this.retryLater();
    else this.kick();
  }

  /** Applied: kept in the overlay until the cursor covers `lsn`; true if it waits for that. */
  private async confirm(id: number, lsn: number | null): Promise<boolean> {
    const { local } = this.host;
    const m = local.find(id)!;
    const cursor = local.cursor();
    if (lsn === null || (cursor !== null && lsn <= cursor)) {
      await local.replica.commit({ deleteMutations: [id] });
      local.remove([id]);
      this.host.changed(m.table);
      return false;
    }
    const next = { ...m, state: "applied" as const, lsn };
    await local.replica.commit({ putMutations: [next] });
    local.replace(next);
    return true;
  }

  /** Rejected or expired: the mutation leaves the queue and its optimistic change the view. */
  private async refuse(id: number, status: "rejected" | "expired", body: ErrorBody): Promise<void> {
    const { local } = this.host;
    const m = local.find(id);
    if (!m) return;
    await local.replica.commit({ deleteMutations: [id] });
    local.remove([id]);
    this.host.changed(m.table);
    const err = new SyncMutationError(status, body, m);
    this.host.answered(id, err);
    this.host.refused(err);
    this.host.settled();
  }

  /** An `error` frame: if it answers the push in flight (nothing of it was applied), handles it. */
  errorFrame(ref: unknown, err: SyncError): boolean {
    const push = this.inFlight;
    if (!push || ref !== push.ref) return false;
    this.inFlight = null;
    if (err.code !== "HEARTH_REALTIME_LIMIT" && err.code !== "HEARTH_BAD_FRAME") {
      this.retryLater(); // HEARTH_INTERNAL: the credential could not be re-checked; send again
    } else if (push.ids.length > 1) {
      this.maxBatch = Math.ceil(push.ids.length / 2);
      this.kick();
    } else if (push.ids[0] !== undefined) {
      const id = push.ids[0];
      const body = { code: err.code, message: err.message, details: err.details, hint: err.hint };
      void this.host.local
        .run(() => this.refuse(id, "rejected", body))
        .then(() => this.kick())
        .catch((e) => this.host.report(e));
    }
    return true;
  }
}
