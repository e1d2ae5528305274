/**
 * The sync feed (`{url}/sync/v1`, WebSocket) of the Hearth SDK: pull by LSN cursor, push
 * mutations exactly once (docs/sync.md). Invariants:
 * - Who writes: the ProjectDO's WebSocket handlers and its change feed; pushes write only
 *   through the REST write path (mutations.ts).
 * - What survives eviction: the sockets (hibernation) with their state (session.ts); the
 *   WAL and the mutation ledger in SQLite; both across a freeze too (archive.ts).
 * - Delivery: every change a socket's principal may read, in LSN order, once per socket
 *   (stream.ts); a client that reconnects with its cursor gets exactly what it missed, or
 *   a `resync` with a snapshot when the WAL no longer reaches back that far.
 * - Every step re-checks the socket's token (expiry, keys, and its session, grant and
 *   membership every RECHECK_MS); a revoked grant closes its sockets at once (4001). A
 *   re-check that cannot complete (D1 unreachable) keeps the last answer for reads and
 *   is tried again at the next step; a push waits for a completed one (nothing applied).
 *   One socket's failing re-check never holds up delivery to the others.
 * - A socket closed during an await (auth, re-check, a push's writes) is never stored
 *   again (`persist` skips closed sockets).
 */
import { HearthError, hearthErrorIn } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";
import type { ColdStore } from "../cold/cold-store.ts";
import { lastLsn } from "../cold/flush.ts";
import { readAccess } from "../policy.ts";
import type { Authenticator } from "../realtime/auth.ts";
import type { SocketHub } from "../realtime/socket-hub.ts";
import { CLOSE, closeSafe, type SocketAuth, type SocketStore, sendSafe } from "../realtime/sockets.ts";
import type { SchemaIndex } from "../schema-index.ts";
import { type FileVisibility, fileTable } from "../storage/changes.ts";
import type { WalEntry } from "../wal.ts";
import {
  type ClientFrame,
  DEFAULT_SYNC_LIMITS,
  decodeClientFrame,
  errorFrame,
  PROTOCOL_VERSION,
  type PullFrame,
  refOf,
  type SyncLimits,
} from "./protocol.ts";
import { Pusher } from "./push.ts";
import {
  acknowledge,
  type Limits,
  loadPosition,
  newSocket,
  persist,
  type StoredSocket,
  type SyncSocket,
} from "./session.ts";
import { type Ref, Streamer, withRef } from "./stream.ts";

export type { SyncLimits } from "./protocol.ts";

export interface SyncHost {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  store: SocketStore;
  auth: Authenticator;
  cold: ColdStore;
  schema(): SchemaIndex | null;
  /**
   * Runs a REST request (`http://hearth/p/<projectId>/rest/v1/<table>?...`) as `principal`
   * through the same path as HTTP requests (policies, grants, flushed rows, WAL);
   * `inTransaction` runs at the end of a write's transaction and commits with it.
   */
  rest(principal: Principal, request: Request, inTransaction?: () => void): Promise<Response>;
  /** after a push wrote rows: flush thresholds, and the change feed */
  afterWrite(): Promise<void>;
  limits: SyncLimits;
}

export class SyncHub implements SocketHub {
  private readonly sockets = new Map<WebSocket, SyncSocket>();
  /** the limits in force (tests lower them on the instance) */
  readonly limits: Limits;
  private readonly streams: Streamer;
  private readonly pusher: Pusher;

  constructor(readonly host: SyncHost) {
    this.limits = { ...DEFAULT_SYNC_LIMITS, ...host.limits };
    const deps = {
      host,
      limits: this.limits,
      send: (s: SyncSocket, frame: Record<string, unknown>) => this.send(s, frame),
      drop: (s: SyncSocket, code: number, reason: string) => this.drop(s, code, reason),
      report: (s: SyncSocket, err: unknown, ref: Ref) => this.report(s, err, ref),
      authorize: (s: SyncSocket, write?: boolean) => this.authorize(s, write),
    };
    this.streams = new Streamer(deps);
    this.pusher = new Pusher(deps);
  }

  get active(): boolean {
    for (const s of this.sockets.values()) if (s.phase !== "idle") return true;
    return false;
  }

  open(ws: WebSocket, id: string, auth: SocketAuth, _url: URL): void {
    const s = newSocket(id, ws, { auth, tables: [], clientId: null });
    this.sockets.set(ws, s);
    persist(this.host.store, s);
    const { frameBytes, tablesPerSocket, mutationsPerPush, window, maxUnackedFrames, maxUnackedBytes } =
      this.limits;
    this.send(s, {
      type: "hello",
      protocol: PROTOCOL_VERSION,
      lsn: lastLsn(this.host.sql),
      role: auth.principal.role,
      limits: { frameBytes, tablesPerSocket, mutationsPerPush, window, maxUnackedFrames, maxUnackedBytes },
    });
  }

  restore(ws: WebSocket, id: string): void {
    const stored = this.host.store.load(id) as StoredSocket | undefined;
    if (!stored) {
      closeSafe(ws, 1011, "state lost");
      return;
    }
    const s = newSocket(id, ws, stored);
    const at = loadPosition(ws);
    // Frames in flight before the eviction are forgiven: their acks may still come.
    Object.assign(s, { cursor: at.cursor, seq: at.seq, acked: at.seq });
    this.sockets.set(ws, s);
    if (s.tables.length === 0 || at.phase === "idle") return;
    if (at.phase === "snapshot") this.streams.startSnapshot(s, "restarted");
    else s.phase = "catchup";
    void this.streams.stream(s);
  }

  close(ws: WebSocket): void {
    const s = this.sockets.get(ws);
    if (!s) return;
    s.closed = true;
    this.sockets.delete(ws);
    this.host.store.remove(s.id);
  }

  private drop(s: SyncSocket, code: number, reason: string): void {
    this.close(s.ws);
    closeSafe(s.ws, code, reason);
  }

  private send(s: SyncSocket, frame: Record<string, unknown>): void {
    if (!sendSafe(s.ws, JSON.stringify(frame))) this.close(s.ws);
  }

  /** An error frame; the socket stays open. */
  private report(s: SyncSocket, err: unknown, ref: Ref): void {
    // (a catalog outage arrives wrapped in drizzle's query error: 503, not internal)
    const known = hearthErrorIn(err);
    if (known && known !== err) {
      this.report(s, known, ref);
      return;
    }
    if (!(err instanceof HearthError)) {
      console.error("sync frame failed", err);
      this.report(
        s,
        new HearthError("HEARTH_INTERNAL", "Internal error: the frame could not be handled."),
        ref,
      );
      return;
    }
    if (!sendSafe(s.ws, errorFrame(err, ref))) this.close(s.ws);
  }

  async message(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const s = this.sockets.get(ws);
    if (!s) return;
    s.lastSeen = Date.now();
    const size = typeof data === "string" ? data.length : data.byteLength;
    let frame: ClientFrame;
    try {
      if (size > this.limits.frameBytes) {
        throw new HearthError(
          "HEARTH_REALTIME_LIMIT",
          `Frame of ${size} bytes is over the limit of ${this.limits.frameBytes}`,
          { hint: "Split the push into several frames." },
        );
      }
      frame = decodeClientFrame(data);
    } catch (err) {
      this.report(s, err, refOf(data));
      return;
    }
    try {
      await this.dispatch(s, frame);
    } catch (err) {
      this.report(s, err, frame.ref);
    }
  }

  private async dispatch(s: SyncSocket, f: ClientFrame): Promise<void> {
    switch (f.type) {
      case "ping": {
        const cursor = s.phase === "catchup" || s.phase === "live" ? s.cursor : null;
        this.send(s, { type: "pong", cursor, ...withRef(f.ref) });
        return;
      }
      case "ack":
        acknowledge(s, f.seq);
        return this.streams.stream(s);
      case "pull":
        return this.pull(s, f);
      case "push":
        return this.pusher.push(s, f);
      case "auth":
        return this.authenticate(s, f.access_token, f.ref);
    }
  }

  /**
   * Token checks before anything is sent or written; false (socket closed) when they fail.
   * When the re-check itself fails, a read goes on with the last answer; a write (`write`)
   * throws: nothing is applied and the client sends it again.
   */
  private async authorize(s: SyncSocket, write = false): Promise<boolean> {
    const auth = this.host.auth;
    const now = Date.now();
    const why = auth.invalidNow(s.auth, now);
    if (why !== null) {
      this.drop(s, CLOSE.unauthorized, why);
      return false;
    }
    if (!auth.needsRecheck(s.auth, now)) return true;
    const fresh = await this.recheck(s.auth);
    if (s.closed) return false;
    if (fresh instanceof Error) {
      if (write) throw fresh;
      return true;
    }
    if (typeof fresh === "string") {
      this.drop(s, CLOSE.unauthorized, fresh);
      return false;
    }
    this.renew(s, fresh);
    return true;
  }

  /** The re-check's answer, or the error that kept it from answering (logged; tried again next time). */
  private async recheck(auth: SocketAuth): Promise<SocketAuth | string | Error> {
    try {
      return await this.host.auth.recheck(auth);
    } catch (err) {
      console.error("sync: a token re-check failed; the socket keeps its last check until the next try", err);
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  private renew(s: SyncSocket, fresh: SocketAuth): void {
    const changed = JSON.stringify(fresh.principal) !== JSON.stringify(s.auth.principal);
    s.auth = fresh;
    if (!changed) return;
    persist(this.host.store, s);
    // Tables close the socket when their access ends; files are cut row by row, so a new
    // membership or grant changes which files the replica may hold: it is cut again.
    if (s.phase !== "idle" && s.tables.some((t) => fileTable(t) !== null)) {
      this.streams.restart(s, "access_changed");
    }
  }

  /**
   * The tables a pull names, each readable by `principal` (else PGRST205 / 42501).
   * `storage.objects` and `storage.buckets` (file metadata) are open to any credential: each
   * row goes only to a principal that may read it (storage/changes.ts).
   */
  private checkTables(principal: Principal, names: string[]): void {
    const schema = this.host.schema();
    for (const name of names) {
      if (fileTable(name)) continue;
      const info = schema?.tables.get(name);
      if (!info) throw new HearthError("PGRST205", `Could not find the table '${name}' in the schema cache`);
      readAccess(principal, info);
    }
  }

  private async pull(s: SyncSocket, f: PullFrame): Promise<void> {
    const tables = [...new Set(f.tables)];
    if (tables.length > this.limits.tablesPerSocket) {
      throw new HearthError(
        "HEARTH_REALTIME_LIMIT",
        `A pull may follow at most ${this.limits.tablesPerSocket} tables`,
      );
    }
    if (!(await this.authorize(s))) return;
    this.checkTables(s.auth.principal, tables);
    s.generation++;
    s.tables = tables;
    persist(this.host.store, s);
    this.streams.start(s, f.cursor ?? null, f.ref);
    return this.streams.stream(s);
  }

  /** `{"type":"auth"}`: act as another token; a new principal restarts the pull with a snapshot. */
  private async authenticate(s: SyncSocket, token: string, ref: Ref): Promise<void> {
    const auth = await this.host.auth.establish(token);
    if (s.closed) return;
    const changed = JSON.stringify(auth.principal) !== JSON.stringify(s.auth.principal);
    s.auth = auth;
    persist(this.host.store, s);
    this.send(s, { type: "auth_ok", role: auth.principal.role, ...withRef(ref) });
    if (!changed || s.phase === "idle") return;
    // What the client holds was cut for the previous principal.
    s.generation++;
    s.phase = "idle";
    this.checkTables(auth.principal, s.tables);
    this.streams.startSnapshot(s, "auth_changed");
    return this.streams.stream(s);
  }

  sweep(now: number): void {
    for (const s of [...this.sockets.values()]) {
      if (now - s.lastSeen > this.limits.heartbeatTimeoutMs) {
        this.drop(s, CLOSE.heartbeatTimeout, "heartbeat timeout");
      }
    }
  }

  revokeGrant(grantId: string): number {
    let n = 0;
    for (const s of [...this.sockets.values()]) {
      const p = s.auth.principal;
      if (p.role === "app" && p.grantId === grantId) {
        this.drop(s, CLOSE.unauthorized, "grant revoked");
        n++;
      }
    }
    return n;
  }

  recheckAll(): void {
    for (const s of this.sockets.values()) s.auth.checkedAt = 0;
  }

  /**
   * Before the change feed delivers: due token re-checks of live sockets (once per token).
   * Never rejects: a re-check that fails keeps its sockets' last answer (tried again
   * before the next batch), and one socket's failure does not stop the others.
   */
  async refresh(now: number): Promise<void> {
    const due = [...this.sockets.values()].filter(
      (s) => s.phase === "live" && this.host.auth.needsRecheck(s.auth, now),
    );
    if (due.length === 0) return;
    const results = new Map<string, Promise<SocketAuth | string | Error>>();
    for (const s of due) {
      if (!results.has(s.auth.token)) results.set(s.auth.token, this.recheck(s.auth));
    }
    for (const s of due) {
      const r = await results.get(s.auth.token)!;
      if (s.closed || r instanceof Error) continue;
      try {
        if (typeof r === "string") this.drop(s, CLOSE.unauthorized, r);
        else this.renew(s, r);
      } catch (err) {
        console.error("sync: applying a token re-check failed", err);
      }
    }
  }

  deliver(entries: WalEntry[], _schema: SchemaIndex | null, files: FileVisibility): void {
    if (this.sockets.size > 0) this.streams.deliver([...this.sockets.values()], entries, files);
  }
}
