/**
 * The connection side of the engine: one socket at a time to `{url}/sync/v1`, reopened with
 * back-off while the engine is started. Per socket: `pull` after `hello`, every data frame
 * applied through the serial chain (pull.ts) and acknowledged once committed, pushes one at a
 * time (the oldest pending mutations; their answers settle, roll back or retry them).
 * Invariants:
 * - A frame is applied only if its socket is still the current one; a new socket pulls from
 *   the cursor the replica holds, so nothing a closed socket sent is needed or applied twice.
 * - An ack is sent only after the frame's commit: a crash loses at most frames the server
 *   will send again from the stored cursor.
 * - A pending mutation is pushed again, with its id, on every new socket until the server
 *   answers it; exactly-once is the server's ledger (writer + client id + mutation id).
 * - Where the platform says the device is offline (network.ts), no socket is opened and an
 *   open one is closed at once; the `online` event reconnects without waiting for the back-off.
 */
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { Connection, type Timing, type WebSocketConstructor } from "./connection.ts";
import { SyncError, type SyncMutationError } from "./errors.ts";
import type { Emitter } from "./events.ts";
import type { Local } from "./local.ts";
import { type NetworkSignals, platformNetwork } from "./network.ts";
import { Outbox } from "./outbox.ts";
import { DEFAULT_LIMITS, PROTOCOL_VERSION, type ServerFrame, type SyncLimits, syncUrl } from "./protocol.ts";
import {
  applyChanges,
  endSnapshot,
  type PullContext,
  stageSnapshot,
  startSnapshot,
  storeCursor,
} from "./pull.ts";
import { SyncConfigError } from "./tables.ts";
import type { MutationResult, RowCodec, SyncEvents, SyncStatus } from "./types.ts";

export interface FeedOptions {
  url: string;
  token: () => Promise<string>;
  WebSocket: WebSocketConstructor;
  codec: RowCodec | null;
  backoff: Required<BackoffOptions>;
  timing: Timing;
  /** the device's online/offline signals; default the browser's, none elsewhere; false: none */
  network?: NetworkSignals | false;
}

export interface FeedHost {
  local: Local;
  events: Emitter<SyncEvents>;
  /** tables whose view changed */
  changed(tables: Iterable<string>, source: "local" | "remote"): void;
  /** the server's answer to a mutation this process queued */
  answered(id: number, outcome: MutationResult | SyncMutationError): void;
}

/** One socket's state. */
interface Session {
  conn: Connection;
  limits: SyncLimits;
  phase: "hello" | "pulling" | "snapshot" | "catchup" | "live";
  /** frames received, not yet handled */
  backlog: number;
  /** the last data frame applied, and the last acknowledged */
  applied: number;
  acked: number;
}

const PULL_REF = "pull";

export class Feed {
  status: SyncStatus = "stopped";
  private wanted = false;
  private session: Session | null = null;
  /** bumped by start and stop: a connect of an older one gives up */
  private generation = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private idleWaiters: (() => void)[] = [];
  private readonly network: NetworkSignals | null;
  private unlisten: (() => void) | null = null;
  private readonly ctx: PullContext;
  private readonly outbox: Outbox;

  constructor(
    private readonly host: FeedHost,
    private readonly options: FeedOptions,
  ) {
    this.network = options.network === false ? null : (options.network ?? platformNetwork());
    this.ctx = { local: host.local, codec: options.codec, report: (err) => this.report(err) };
    this.outbox = new Outbox({
      local: host.local,
      backoff: options.backoff,
      report: (err) => this.report(err),
      changed: (table) => host.changed([table], "remote"),
      answered: (id, outcome) => host.answered(id, outcome),
      refused: (err) => host.events.emit(err.outcome, err),
      settled: () => this.checkIdle(),
    });
  }

  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    this.unlisten = this.network?.subscribe((online) => this.networkChanged(online)) ?? null;
    void this.connect(++this.generation);
  }

  /** The device went offline (close the socket now: it may linger) or came back (connect now). */
  private networkChanged(online: boolean): void {
    if (!this.wanted) return;
    if (!online) {
      this.session?.conn.close(1001, "the device went offline");
      return;
    }
    if (this.session) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    void this.connect(++this.generation);
  }

  stop(status: SyncStatus = "stopped"): void {
    this.wanted = false;
    this.generation++;
    this.unlisten?.();
    this.unlisten = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.outbox.attach(null);
    this.session?.conn.close(1000, "stopped");
    this.session = null;
    this.setStatus(status);
  }

  /** Resolves when the feed is live and no mutation is queued or awaiting its change. */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  checkIdle(): void {
    if (this.status !== "live" || this.host.local.mutations.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private setStatus(status: SyncStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.host.events.emit("status", status);
    this.checkIdle();
  }

  private report(err: unknown): void {
    const error =
      err instanceof SyncError
        ? err
        : SyncError.client(
            err instanceof Error ? err.message : String(err),
            err instanceof Error ? err.name : null,
          );
    this.host.events.emit("error", error);
  }

  private async connect(generation: number): Promise<void> {
    if (this.network && !this.network.online()) {
      // No socket can open: wait for the `online` event instead of burning back-off steps.
      this.setStatus("offline");
      this.host.events.emit("disconnected", { code: 1001, reason: "the device is offline", retryInMs: null });
      return;
    }
    this.setStatus("connecting");
    try {
      await this.host.local.ready;
    } catch (err) {
      // The replica did not open (in use by another tab, storage refused): nothing to sync.
      if (generation !== this.generation) return;
      this.report(err);
      this.stop();
      return;
    }
    let url: string;
    try {
      url = syncUrl(this.options.url, await this.options.token());
    } catch (err) {
      if (generation !== this.generation) return;
      this.report(err);
      this.reconnectLater(1006, err instanceof Error ? err.message : String(err));
      return;
    }
    if (generation !== this.generation || !this.wanted) return;
    const session: Session = {
      conn: null as unknown as Connection,
      limits: DEFAULT_LIMITS,
      phase: "hello",
      backlog: 0,
      applied: 0,
      acked: 0,
    };
    this.session = session;
    session.conn = new Connection(
      url,
      this.options.WebSocket,
      {
        frame: (frame) => this.received(session, frame),
        malformed: () => this.received(session, null),
        close: (code, reason) => this.closed(session, code, reason),
      },
      this.options.timing,
    );
  }

  private reconnectLater(code: number, reason: string): void {
    if (this.network && !this.network.online()) {
      this.setStatus("offline");
      this.host.events.emit("disconnected", { code, reason, retryInMs: null });
      return;
    }
    const retryInMs = backoffDelay(this.attempt++, this.options.backoff);
    this.setStatus("offline");
    this.host.events.emit("disconnected", { code, reason, retryInMs });
    const generation = this.generation;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.wanted && generation === this.generation) void this.connect(generation);
    }, retryInMs);
  }

  private closed(s: Session, code: number, reason: string): void {
    if (s !== this.session) return;
    this.session = null;
    this.outbox.attach(null);
    if (!this.wanted) return;
    if (code === 4001) {
      this.stop("unauthorized");
      this.host.events.emit("unauthorized", reason);
      return;
    }
    // 4008 (slow consumer), 4000 (silence), 1011 (state lost), a dropped network: pull again
    // from the stored cursor.
    this.reconnectLater(code, reason);
  }

  /** A frame (null: malformed) joins the serial chain; it is applied if its socket is current. */
  private received(s: Session, frame: ServerFrame | null): void {
    s.backlog++;
    this.host.local
      .run(async () => {
        s.backlog--;
        if (s !== this.session) return;
        if (!frame) throw SyncError.client("The server sent a frame the client cannot read");
        await this.handle(s, frame);
        this.checkIdle();
        // Acks are cumulative: one for everything applied, once nothing more is waiting.
        if (s.backlog === 0 && s.applied > s.acked) this.ack(s);
      })
      .catch((err) => this.failed(s, err));
  }

  /** A frame that could not be applied: nothing after it is acknowledged; pull again. */
  private failed(s: Session, err: unknown): void {
    this.report(err);
    if (s !== this.session) return;
    if (err instanceof SyncConfigError) this.stop();
    else s.conn.close(4000, "client failed to apply a frame");
  }

  private applied(s: Session, seq: number): void {
    s.applied = seq;
    if (s.applied - s.acked >= Math.max(1, Math.floor(s.limits.window / 2))) this.ack(s);
  }

  private ack(s: Session): void {
    if (s.conn.send({ type: "ack", seq: s.applied })) s.acked = s.applied;
  }

  private changed(tables: Set<string>): void {
    if (tables.size > 0) this.host.changed(tables, "remote");
  }

  private async handle(s: Session, f: ServerFrame): Promise<void> {
    switch (f.type) {
      case "hello":
        return this.hello(s, f);
      case "catchup":
        s.phase = "catchup";
        return;
      case "resync":
        s.phase = "snapshot";
        return startSnapshot(this.ctx);
      case "snapshot":
        await stageSnapshot(this.ctx, f.table, f.rows);
        return this.applied(s, f.seq);
      case "snapshot_end":
        s.phase = "catchup";
        return this.changed(await endSnapshot(this.ctx, f.cursor));
      case "changes":
        this.changed(await applyChanges(this.ctx, f.changes, f.cursor));
        return this.applied(s, f.seq);
      case "live":
        s.phase = "live";
        this.changed(await storeCursor(this.ctx, f.cursor));
        this.attempt = 0;
        return this.setStatus("live");
      case "pong":
        // Every frame before the pong has been applied: its cursor is ours too.
        if (typeof f.cursor === "number" && (s.phase === "catchup" || s.phase === "live")) {
          this.changed(await storeCursor(this.ctx, f.cursor));
        }
        return;
      case "push_result":
        return this.outbox.result(f);
      case "error":
        return this.errorFrame(s, new SyncError(f), f.ref);
    }
  }

  private hello(s: Session, f: Extract<ServerFrame, { type: "hello" }>): void {
    if (f.protocol !== PROTOCOL_VERSION) {
      this.report(
        SyncError.client(`The server speaks sync protocol ${f.protocol}, this client ${PROTOCOL_VERSION}`),
      );
      this.stop();
      return;
    }
    const limits = { ...DEFAULT_LIMITS };
    for (const k of Object.keys(limits) as (keyof SyncLimits)[]) {
      const v = f.limits?.[k];
      if (typeof v === "number" && v > 0) limits[k] = v;
    }
    s.limits = limits;
    s.phase = "pulling";
    const { local } = this.host;
    s.conn.send({ type: "pull", cursor: local.cursor(), tables: local.followed, ref: PULL_REF });
    this.setStatus("syncing");
    this.outbox.attach({ send: (frame) => s.conn.send(frame), limits });
  }

  private errorFrame(s: Session, err: SyncError, ref: unknown): void {
    this.report(err);
    if (this.outbox.errorFrame(ref, err)) return;
    // A pull refused (an unknown table, no read access): try again later, with back-off.
    if (ref === PULL_REF) s.conn.close(4000, "pull refused");
  }

  /** Pushes what is pending, if a socket is ready (after a local write). */
  push(): void {
    this.outbox.kick();
  }
}
