/**
 * Realtime over Phoenix channels (realtime-js wire format): postgres_changes fed from the
 * WAL, broadcast and presence. Invariants:
 * - Who writes: the ProjectDO's WebSocket handlers and its change feed; one frame at a time.
 * - What survives eviction: sockets (hibernation) and their channels (`_hearth_sockets`,
 *   see sockets.ts); nothing is lost but the heartbeat clock, which restarts.
 * - Delivery: at most once, in LSN order per socket; every event is re-checked against the
 *   subscriber's current token, policy and grant before it is sent.
 */
import { HearthError } from "../../shared/errors.ts";
import { matches } from "../../shared/rest/evaluate.ts";
import type { SchemaIndex } from "../schema-index.ts";
import type { WalEntry } from "../wal.ts";
import type { Authenticator } from "./auth.ts";
import { columnLookup, pgColumns, type VisibleChange, visibleChange } from "./changes.ts";
import {
  type Channel,
  type ChannelState,
  compileBindings,
  JoinPayloadSchema,
  mayJoinPrivate,
} from "./channel.ts";
import { decodeFrame, encodeFrame, type Frame, replyFrame } from "./phoenix.ts";
import { leaveDiff, presenceState, trackDiff } from "./presence.ts";
import type { SocketHub } from "./socket-hub.ts";
import { CLOSE, closeSafe, type SocketAuth, type SocketStore, sendSafe } from "./sockets.ts";

export interface RealtimeLimits {
  channelsPerSocket: number;
  frameBytes: number;
  /** bytes sent to a socket between two of its frames (heartbeats come every 25 s) */
  unreadBytes: number;
  heartbeatTimeoutMs: number;
}

export const DEFAULT_REALTIME_LIMITS: RealtimeLimits = {
  channelsPerSocket: 100,
  frameBytes: 256 * 1024,
  unreadBytes: 64 * 1024 * 1024,
  heartbeatTimeoutMs: 60_000,
};

interface RtSocket {
  id: string;
  ws: WebSocket;
  auth: SocketAuth;
  channels: Map<string, Channel>;
  lastSeen: number;
  sentSinceSeen: number;
}

interface StoredSocket {
  auth: SocketAuth;
  channels: ChannelState[];
}

export interface RealtimeHost {
  store: SocketStore;
  auth: Authenticator;
  schema(): SchemaIndex | null;
  limits: RealtimeLimits;
}

/** A refusal as a reply's `response`: realtime-js shows `reason`; `code` and `status` are REST's. */
function errorResponse(err: unknown): { reason: string; code?: string; status?: number } {
  if (err instanceof HearthError) return { reason: err.message, code: err.code, status: err.status };
  return { reason: "Internal error" };
}

const principalKeys = new WeakMap<SocketAuth, string>();

/** Subscribers with equal principals see the same rows: one visibility answer per key. */
function principalKey(auth: SocketAuth): string {
  let key = principalKeys.get(auth);
  if (key === undefined) {
    key = JSON.stringify(auth.principal);
    principalKeys.set(auth, key);
  }
  return key;
}

/** join_ref, ref and topic of a frame too large to parse, read off its first bytes. */
function frameHead(text: string): { joinRef: string | null; ref: string | null; topic: string } | null {
  const m = /^\[\s*(null|"[^"\\]{0,64}")\s*,\s*(null|"[^"\\]{0,64}")\s*,\s*"([^"\\]{1,512})"/.exec(
    text.slice(0, 1024),
  );
  if (!m) return null;
  const str = (v: string) => (v === "null" ? null : v.slice(1, -1));
  return { joinRef: str(m[1]!), ref: str(m[2]!), topic: m[3]! };
}

export class RealtimeHub implements SocketHub {
  private readonly sockets = new Map<WebSocket, RtSocket>();
  private refCounter = 0;

  constructor(private readonly host: RealtimeHost) {}

  get active(): boolean {
    return this.sockets.size > 0;
  }

  /** A socket just accepted. */
  open(ws: WebSocket, id: string, auth: SocketAuth, _url?: URL): void {
    const s: RtSocket = { id, ws, auth, channels: new Map(), lastSeen: Date.now(), sentSinceSeen: 0 };
    this.sockets.set(ws, s);
    this.persist(s);
  }

  /** A socket the runtime kept while this object was evicted: its state comes back from storage. */
  restore(ws: WebSocket, id: string): void {
    const stored = this.host.store.load(id) as StoredSocket | undefined;
    if (!stored) {
      closeSafe(ws, 1011, "state lost");
      return;
    }
    const s: RtSocket = {
      id,
      ws,
      auth: stored.auth,
      channels: new Map(),
      lastSeen: Date.now(),
      sentSinceSeen: 0,
    };
    for (const state of stored.channels) {
      try {
        s.channels.set(state.topic, { ...state, compiled: compileBindings(this.host.schema(), state) });
      } catch {
        this.send(s, encodeFrame(state.joinRef, null, state.topic, "phx_error", {}));
      }
    }
    this.sockets.set(ws, s);
  }

  close(ws: WebSocket): void {
    const s = this.sockets.get(ws);
    if (!s) return;
    this.sockets.delete(ws);
    for (const ch of s.channels.values()) if (ch.tracked) this.presenceLeave(s, ch);
    this.host.store.remove(s.id);
  }

  private persist(s: RtSocket): void {
    const channels: ChannelState[] = [...s.channels.values()].map(({ compiled: _, ...state }) => state);
    this.host.store.save(s.id, "realtime", { auth: s.auth, channels } satisfies StoredSocket);
  }

  private send(s: RtSocket, frame: string): void {
    s.sentSinceSeen += frame.length;
    if (s.sentSinceSeen > this.host.limits.unreadBytes) {
      this.drop(s, CLOSE.slowConsumer, "slow consumer: too much unread data since the last heartbeat");
      return;
    }
    if (!sendSafe(s.ws, frame)) this.close(s.ws);
  }

  private drop(s: RtSocket, code: number, reason: string): void {
    this.close(s.ws);
    closeSafe(s.ws, code, reason);
  }

  async message(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const s = this.sockets.get(ws);
    if (!s) return;
    s.lastSeen = Date.now();
    s.sentSinceSeen = 0;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > this.host.limits.frameBytes) {
      const err = new HearthError(
        "HEARTH_REALTIME_LIMIT",
        `Frame of ${size} bytes is over the limit of ${this.host.limits.frameBytes}`,
      );
      // Not parsed, but its refs are read so the push that sent it gets its error reply.
      const head = typeof data === "string" ? frameHead(data) : null;
      this.send(
        s,
        head
          ? replyFrame({ ...head, event: "", payload: {} }, "error", errorResponse(err))
          : encodeFrame(null, null, "phoenix", "error", errorResponse(err)),
      );
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(data);
    } catch (err) {
      // A malformed frame gets an error frame; the socket and its channels stay.
      this.send(s, encodeFrame(null, null, "phoenix", "error", errorResponse(err)));
      return;
    }
    try {
      await this.dispatch(s, frame);
    } catch (err) {
      if (!(err instanceof HearthError)) console.error("realtime frame failed", err);
      if (frame.ref !== null) this.send(s, replyFrame(frame, "error", errorResponse(err)));
    }
  }

  private async dispatch(s: RtSocket, frame: Frame): Promise<void> {
    if (frame.topic === "phoenix" && frame.event === "heartbeat") {
      this.send(s, replyFrame(frame, "ok", {}));
      return;
    }
    if (frame.event === "phx_join") return this.join(s, frame);
    const ch = s.channels.get(frame.topic);
    if (!ch) {
      this.send(s, replyFrame(frame, "error", { reason: "unmatched topic" }));
      return;
    }
    switch (frame.event) {
      case "phx_leave":
        this.leave(s, ch);
        this.send(s, replyFrame(frame, "ok", {}));
        return;
      case "access_token":
        return this.refreshToken(s, ch, frame);
      case "broadcast":
        return this.broadcast(s, ch, frame);
      case "presence":
        return this.presence(s, ch, frame);
      default:
        this.send(s, replyFrame(frame, "error", { reason: `unknown event "${frame.event}"` }));
    }
  }

  private async join(s: RtSocket, frame: Frame): Promise<void> {
    const parsed = JoinPayloadSchema.safeParse(frame.payload);
    if (!parsed.success) {
      throw new HearthError("HEARTH_BAD_FRAME", "Malformed phx_join payload", {
        details: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      });
    }
    const { config, access_token: token } = parsed.data;
    const existing = s.channels.get(frame.topic);
    if (!existing && s.channels.size >= this.host.limits.channelsPerSocket) {
      throw new HearthError(
        "HEARTH_REALTIME_LIMIT",
        `A socket may join at most ${this.host.limits.channelsPerSocket} channels`,
      );
    }
    // The anon key as a token means "no user": the socket's own credential stands.
    const auth = token && token !== s.auth.token ? await this.host.auth.establish(token) : s.auth;
    const state: ChannelState = {
      topic: frame.topic,
      joinRef: frame.joinRef,
      auth,
      bindings: config?.postgres_changes ?? [],
      self: config?.broadcast?.self === true,
      ack: config?.broadcast?.ack === true,
      presenceKey: config?.presence?.key || crypto.randomUUID(),
      presence: config?.presence?.enabled === true,
      private: config?.private === true,
      tracked: null,
    };
    if (state.private && !mayJoinPrivate(auth)) {
      throw new HearthError(
        "42501",
        "Unauthorized: a private channel needs the service key or a project member",
        {
          status: 403,
        },
      );
    }
    const compiled = compileBindings(this.host.schema(), state);
    if (existing) this.leave(s, existing);
    s.channels.set(frame.topic, { ...state, compiled });
    this.persist(s);
    const echo = compiled.map((b) => ({ ...b.request, id: b.id }));
    this.send(s, replyFrame(frame, "ok", { postgres_changes: echo }));
    if (compiled.length > 0) {
      this.send(
        s,
        encodeFrame(frame.joinRef, null, frame.topic, "system", {
          channel: frame.topic.replace(/^realtime:/, ""),
          extension: "postgres_changes",
          status: "ok",
          message: "Subscribed to PostgreSQL",
        }),
      );
    }
    if (state.presence) {
      this.send(
        s,
        encodeFrame(frame.joinRef, null, frame.topic, "presence_state", this.presenceOf(frame.topic)),
      );
    }
  }

  private leave(s: RtSocket, ch: Channel): void {
    if (ch.tracked) this.presenceLeave(s, ch);
    s.channels.delete(ch.topic);
    this.persist(s);
  }

  /** Closes one channel of a socket, telling the client why (token expired, grant revoked...). */
  private expel(s: RtSocket, ch: Channel, why: string): void {
    this.send(
      s,
      encodeFrame(ch.joinRef, null, ch.topic, "system", {
        channel: ch.topic.replace(/^realtime:/, ""),
        extension: "system",
        status: "error",
        message: why,
      }),
    );
    this.send(s, encodeFrame(ch.joinRef, ch.joinRef, ch.topic, "phx_close", {}));
    this.leave(s, ch);
  }

  private async refreshToken(s: RtSocket, ch: Channel, frame: Frame): Promise<void> {
    const token = frame.payload.access_token;
    if (typeof token !== "string" || token === "" || token === ch.auth.token) return;
    try {
      ch.auth = await this.host.auth.establish(token);
      ch.compiled = compileBindings(this.host.schema(), ch);
      this.persist(s);
    } catch (err) {
      this.expel(s, ch, errorResponse(err).reason);
    }
  }

  private topicMembers(topic: string): [RtSocket, Channel][] {
    const out: [RtSocket, Channel][] = [];
    for (const s of this.sockets.values()) {
      const ch = s.channels.get(topic);
      if (ch) out.push([s, ch]);
    }
    return out;
  }

  private broadcast(s: RtSocket, ch: Channel, frame: Frame): void {
    const p = frame.payload;
    if (typeof p.event !== "string")
      throw new HearthError("HEARTH_BAD_FRAME", "A broadcast needs an event name");
    const out = encodeFrame(null, null, ch.topic, "broadcast", {
      type: "broadcast",
      event: p.event,
      payload: p.payload ?? {},
    });
    for (const [other, och] of this.topicMembers(ch.topic)) {
      if (other === s && !ch.self) continue;
      if (this.host.auth.invalidNow(och.auth, Date.now()) === null) this.send(other, out);
    }
    if (ch.ack && frame.ref !== null) this.send(s, replyFrame(frame, "ok", {}));
  }

  /** The HTTP broadcast API (`POST /realtime/v1/api/broadcast`): to every joined socket. */
  broadcastFromServer(topic: string, event: string, payload: unknown, privateOnly: boolean): number {
    const out = encodeFrame(null, null, topic, "broadcast", { type: "broadcast", event, payload });
    let n = 0;
    for (const [s, ch] of this.topicMembers(topic)) {
      if (ch.private !== privateOnly) continue;
      this.send(s, out);
      n++;
    }
    return n;
  }

  private presenceOf(topic: string) {
    return presenceState(this.topicMembers(topic).map(([, ch]) => ch.tracked));
  }

  private presence(s: RtSocket, ch: Channel, frame: Frame): void {
    const p = frame.payload;
    if (p.event === "track") {
      const meta = p.payload && typeof p.payload === "object" && !Array.isArray(p.payload) ? p.payload : {};
      if (ch.tracked) this.presenceLeave(s, ch);
      ch.tracked = { key: ch.presenceKey, ref: this.nextRef(), meta: meta as Record<string, unknown> };
      this.persist(s);
      this.fanPresence(ch.topic, trackDiff(ch.tracked));
    } else if (p.event === "untrack") {
      if (ch.tracked) this.presenceLeave(s, ch);
      this.persist(s);
    } else {
      throw new HearthError("HEARTH_BAD_FRAME", 'A presence frame\'s event is "track" or "untrack"');
    }
    this.send(s, replyFrame(frame, "ok", {}));
  }

  private presenceLeave(_s: RtSocket, ch: Channel): void {
    const left = ch.tracked;
    if (!left) return;
    ch.tracked = null;
    this.fanPresence(ch.topic, leaveDiff(left));
  }

  private fanPresence(topic: string, diff: unknown): void {
    for (const [s, ch] of this.topicMembers(topic)) {
      if (ch.presence || ch.tracked)
        this.send(s, encodeFrame(ch.joinRef, null, topic, "presence_diff", diff));
    }
  }

  private nextRef(): string {
    this.refCounter++;
    return `F${Date.now().toString(36)}${this.refCounter.toString(36)}`;
  }

  /** Sockets silent past the heartbeat timeout are closed (their presence leaves). */
  sweep(now: number): void {
    for (const s of [...this.sockets.values()]) {
      if (now - s.lastSeen > this.host.limits.heartbeatTimeoutMs) {
        this.drop(s, CLOSE.heartbeatTimeout, "heartbeat timeout");
      }
    }
  }

  /** Before events go out: tokens of account and app principals checked again (D1, cached). */
  async refresh(now: number): Promise<void> {
    const stale = new Map<string, SocketAuth>();
    for (const s of this.sockets.values()) {
      for (const ch of s.channels.values()) {
        if (this.host.auth.needsRecheck(ch.auth, now)) stale.set(ch.auth.token, ch.auth);
      }
    }
    if (stale.size === 0) return;
    const results = new Map<string, SocketAuth | string>();
    await Promise.all(
      [...stale.values()].map(async (a) => results.set(a.token, await this.host.auth.recheck(a))),
    );
    for (const s of [...this.sockets.values()]) {
      for (const ch of [...s.channels.values()]) {
        const r = results.get(ch.auth.token);
        if (r === undefined) continue;
        if (typeof r === "string") {
          this.expel(s, ch, r);
          continue;
        }
        ch.auth = r;
        // Still allowed to read what it subscribed to? (a member removed, a role changed)
        try {
          ch.compiled = compileBindings(this.host.schema(), ch);
        } catch (err) {
          this.expel(s, ch, errorResponse(err).reason);
        }
      }
    }
  }

  /** The gateway revoked a grant: every channel joined with one of its tokens is closed. */
  revokeGrant(grantId: string): number {
    let n = 0;
    for (const s of [...this.sockets.values()]) {
      const p = s.auth.principal;
      if (p.role === "app" && p.grantId === grantId) {
        this.drop(s, CLOSE.unauthorized, "grant revoked");
        n++;
        continue;
      }
      for (const ch of [...s.channels.values()]) {
        const cp = ch.auth.principal;
        if (cp.role === "app" && cp.grantId === grantId) {
          this.expel(s, ch, "The app's access has been revoked by the user.");
          n++;
        }
      }
    }
    return n;
  }

  /** Membership or keys changed: every account token is checked again before the next event. */
  recheckAll(): void {
    for (const s of this.sockets.values()) for (const ch of s.channels.values()) ch.auth.checkedAt = 0;
  }

  /** postgres_changes for a batch of committed WAL entries, in LSN order. */
  deliver(entries: WalEntry[], schema: SchemaIndex | null): void {
    if (!schema || this.sockets.size === 0) return;
    const now = Date.now();
    for (const s of [...this.sockets.values()]) {
      for (const ch of [...s.channels.values()]) {
        const why = this.host.auth.invalidNow(ch.auth, now);
        if (why !== null) this.expel(s, ch, why);
      }
    }
    for (const entry of entries) this.deliverOne(entry, schema);
  }

  private deliverOne(entry: WalEntry, schema: SchemaIndex): void {
    const table = schema.tables.get(entry.table);
    if (!table) return;
    const lookup = columnLookup(table);
    // One visibility answer and one serialized payload per distinct principal.
    const byPrincipal = new Map<string, { change: VisibleChange | null; data: string | null }>();
    let columns: string | null = null;
    for (const s of this.sockets.values()) {
      for (const ch of s.channels.values()) {
        if (ch.compiled.length === 0) continue;
        const candidates = ch.compiled.filter((b) => b.table === null || b.table === table.name);
        if (candidates.length === 0) continue;
        const pkey = principalKey(ch.auth);
        let seen = byPrincipal.get(pkey);
        if (!seen) {
          const change = visibleChange(ch.auth.principal, table, entry);
          seen = { change, data: null };
          byPrincipal.set(pkey, seen);
        }
        const change = seen.change;
        if (!change) continue;
        const row = change.type === "DELETE" ? change.old! : change.record!;
        const ids: number[] = [];
        for (const b of candidates) {
          if (b.event !== "*" && b.event !== change.type) continue;
          if (b.conditions.length > 0 && !matches(b.conditions, row, lookup)) continue;
          ids.push(b.id);
        }
        if (ids.length === 0) continue;
        columns ??= JSON.stringify(pgColumns(table));
        seen.data ??= JSON.stringify({
          schema: "public",
          table: table.name,
          commit_timestamp: new Date(entry.ts).toISOString(),
          type: change.type,
          record: change.record ?? {},
          old_record: change.old ?? {},
          errors: null,
          lsn: entry.lsn,
        });
        const data = `${seen.data.slice(0, -1)},"columns":${columns}}`;
        this.send(
          s,
          `[null,null,${JSON.stringify(ch.topic)},"postgres_changes",{"ids":${JSON.stringify(ids)},"data":${data}}]`,
        );
      }
    }
  }
}
