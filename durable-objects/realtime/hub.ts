/**
 * Realtime over Phoenix channels (realtime-js wire format): postgres_changes fed from the
 * WAL, broadcast and presence. Invariants:
 * - Who writes: the ProjectDO's WebSocket handlers and its change feed; one frame at a time.
 * - What survives eviction: sockets (hibernation) and their channels (`_hearth_sockets`,
 *   see socket-table.ts); the silence clock goes on from the attachment's last-seen time.
 * - Delivery: at most once, in LSN order per socket; every event is re-checked against the
 *   subscriber's current token, policy and grant before it is sent.
 */
import { HearthError, hearthErrorIn } from "../../shared/errors.ts";
import type { SchemaIndex } from "../schema-index.ts";
import type { FileVisibility } from "../storage/changes.ts";
import type { WalEntry } from "../wal.ts";
import {
  type Channel,
  type ChannelState,
  compileBindings,
  JoinPayloadSchema,
  mayJoinPrivate,
} from "./channel.ts";
import { fanOutChange } from "./fanout.ts";
import { decodeFrame, encodeFrame, type Frame, replyFrame } from "./phoenix.ts";
import { leaveDiff, presenceState, trackDiff } from "./presence.ts";
import type { SocketHub } from "./socket-hub.ts";
import { errorResponse, frameHead, type RtSocket, SEEN_EVERY_MS, SocketTable } from "./socket-table.ts";
import { CLOSE, type SocketAuth } from "./sockets.ts";

export { DEFAULT_REALTIME_LIMITS, type RealtimeHost, type RealtimeLimits } from "./socket-table.ts";

export class RealtimeHub extends SocketTable implements SocketHub {
  private refCounter = 0;

  protected closed(s: RtSocket): void {
    for (const ch of s.channels.values()) if (ch.tracked) this.presenceLeave(ch);
  }

  async message(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const s = this.sockets.get(ws);
    if (!s) return;
    const now = Date.now();
    if (now - s.lastSeen >= SEEN_EVERY_MS) {
      try {
        ws.serializeAttachment({ ...(ws.deserializeAttachment() as object), seen: now });
      } catch {
        // closing: nothing to keep
      }
    }
    s.lastSeen = now;
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
    // No token (or the socket's own): the socket's credential stands, checked again if due.
    const auth =
      token && token !== s.auth.token ? await this.host.auth.establish(token) : await this.fresh(s);
    if (!this.alive(s)) return;
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
    this.commit(s, () => {
      s.channels.set(frame.topic, { ...state, compiled });
      return () => {
        if (existing) s.channels.set(frame.topic, existing);
        else s.channels.delete(frame.topic);
      };
    });
    if (existing?.tracked) this.presenceLeave(existing);
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
        encodeFrame(
          frame.joinRef,
          null,
          frame.topic,
          "presence_state",
          this.presenceOf(frame.topic, state.private),
        ),
      );
    }
  }

  private leave(s: RtSocket, ch: Channel): void {
    if (ch.tracked) this.presenceLeave(ch);
    s.channels.delete(ch.topic);
    if (this.alive(s)) this.persist(s);
  }

  /**
   * The socket's own credential, checked now if it is due (expiry, revoked key; session,
   * grant and membership every RECHECK_MS). Throws the refusal.
   */
  private async fresh(s: RtSocket): Promise<SocketAuth> {
    const why = this.host.auth.invalidNow(s.auth, Date.now());
    if (why !== null) throw new HearthError("PGRST301", why);
    if (!this.host.auth.needsRecheck(s.auth, Date.now())) return s.auth;
    const r = await this.host.auth.recheck(s.auth);
    if (typeof r === "string") throw new HearthError("PGRST301", r);
    s.auth = r;
    return r;
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
      const auth = await this.host.auth.establish(token);
      if (!this.alive(s) || s.channels.get(ch.topic) !== ch) return;
      this.authorize(ch, auth);
      this.persist(s);
    } catch (err) {
      // The catalog down (503) is not a bad token: the channel keeps its current one, which
      // still expires on time and is checked again.
      if (hearthErrorIn(err)?.status === 503) return;
      if (this.alive(s) && s.channels.get(ch.topic) === ch) this.expel(s, ch, errorResponse(err).reason);
    }
  }

  /** A channel's auth replaced (recheck, new token): what it may read and join, checked again. */
  private authorize(ch: Channel, auth: SocketAuth): void {
    const next = { ...ch, auth };
    if (next.private && !mayJoinPrivate(auth)) {
      throw new HearthError(
        "42501",
        "Unauthorized: a private channel needs the service key or a project member",
        {
          status: 403,
        },
      );
    }
    const compiled = compileBindings(this.host.schema(), next);
    ch.auth = auth;
    ch.compiled = compiled;
  }

  private async broadcast(s: RtSocket, ch: Channel, frame: Frame): Promise<void> {
    const p = frame.payload;
    if (typeof p.event !== "string")
      throw new HearthError("HEARTH_BAD_FRAME", "A broadcast needs an event name");
    // Sender and receivers must still be allowed (a member removed, a token expired).
    await this.refresh(Date.now());
    if (!this.alive(s) || s.channels.get(ch.topic) !== ch) return;
    const out = encodeFrame(null, null, ch.topic, "broadcast", {
      type: "broadcast",
      event: p.event,
      payload: p.payload ?? {},
    });
    for (const [other] of this.topicMembers(ch.topic, ch.private)) {
      if (other === s && !ch.self) continue;
      this.send(other, out);
    }
    if (ch.ack && frame.ref !== null) this.send(s, replyFrame(frame, "ok", {}));
  }

  /** The HTTP broadcast API (`POST /realtime/v1/api/broadcast`): to every joined socket. */
  async broadcastFromServer(topic: string, event: string, payload: unknown, priv: boolean): Promise<number> {
    await this.refresh(Date.now());
    const out = encodeFrame(null, null, topic, "broadcast", { type: "broadcast", event, payload });
    const members = this.topicMembers(topic, priv);
    for (const [s] of members) this.send(s, out);
    return members.length;
  }

  private presenceOf(topic: string, priv: boolean) {
    return presenceState(this.topicMembers(topic, priv).map(([, ch]) => ch.tracked));
  }

  private async presence(s: RtSocket, ch: Channel, frame: Frame): Promise<void> {
    const p = frame.payload;
    if (p.event !== "track" && p.event !== "untrack") {
      throw new HearthError("HEARTH_BAD_FRAME", 'A presence frame\'s event is "track" or "untrack"');
    }
    await this.refresh(Date.now());
    if (!this.alive(s) || s.channels.get(ch.topic) !== ch) return;
    if (p.event === "track") {
      const meta = p.payload && typeof p.payload === "object" && !Array.isArray(p.payload) ? p.payload : {};
      const size = JSON.stringify(meta).length;
      if (size > this.host.limits.presenceBytes) {
        throw new HearthError(
          "HEARTH_REALTIME_LIMIT",
          `A presence state of ${size} bytes is over the limit of ${this.host.limits.presenceBytes}`,
        );
      }
      // A channel joined without presence still gets the state before any diff (realtime-js
      // queues diffs that come before it).
      if (!ch.presence) {
        ch.presence = true;
        this.send(
          s,
          encodeFrame(ch.joinRef, null, ch.topic, "presence_state", this.presenceOf(ch.topic, ch.private)),
        );
      }
      const before = ch.tracked;
      const tracked = { key: ch.presenceKey, ref: this.nextRef(), meta: meta as Record<string, unknown> };
      this.commit(s, () => {
        ch.tracked = tracked;
        return () => {
          ch.tracked = before;
        };
      });
      if (before) this.fanPresence(ch, leaveDiff(before));
      this.fanPresence(ch, trackDiff(tracked));
    } else if (ch.tracked) {
      this.presenceLeave(ch);
      this.persist(s);
    }
    this.send(s, replyFrame(frame, "ok", {}));
  }

  private presenceLeave(ch: Channel): void {
    const left = ch.tracked;
    if (!left) return;
    ch.tracked = null;
    this.fanPresence(ch, leaveDiff(left));
  }

  private fanPresence(from: Channel, diff: unknown): void {
    for (const [s, ch] of this.topicMembers(from.topic, from.private)) {
      if (ch.presence || ch.tracked)
        this.send(s, encodeFrame(ch.joinRef, null, ch.topic, "presence_diff", diff));
    }
  }

  private nextRef(): string {
    this.refCounter++;
    return `F${Date.now().toString(36)}${this.refCounter.toString(36)}`;
  }

  /** Before events go out: tokens of account and app principals checked again (D1, cached). */
  async refresh(now: number): Promise<void> {
    const stale = new Map<string, SocketAuth>();
    for (const s of [...this.sockets.values()]) {
      for (const ch of [...s.channels.values()]) {
        const why = this.host.auth.invalidNow(ch.auth, now);
        if (why !== null) this.expel(s, ch, why);
        else if (this.host.auth.needsRecheck(ch.auth, now)) stale.set(ch.auth.token, ch.auth);
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
        // Still allowed to read what it subscribed to, and to be in a private channel?
        try {
          this.authorize(ch, r);
        } catch (err) {
          this.expel(s, ch, errorResponse(err).reason);
        }
      }
      const r = results.get(s.auth.token);
      if (r !== undefined && typeof r !== "string") s.auth = r;
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

  /** The schema changed: every channel's bindings are compiled again; those that no longer can close. */
  schemaChanged(): void {
    for (const s of [...this.sockets.values()]) {
      for (const ch of [...s.channels.values()]) {
        try {
          ch.compiled = compileBindings(this.host.schema(), ch);
        } catch (err) {
          this.expel(s, ch, `The schema changed: ${errorResponse(err).reason}`);
        }
      }
    }
  }

  /** Membership or keys changed: every account token is checked again before the next event. */
  recheckAll(): void {
    for (const s of this.sockets.values()) {
      s.auth.checkedAt = 0;
      for (const ch of s.channels.values()) ch.auth.checkedAt = 0;
    }
  }

  /** postgres_changes for a batch of committed WAL entries, in LSN order. */
  deliver(entries: WalEntry[], schema: SchemaIndex | null, files: FileVisibility): void {
    // No schema yet: file events still go out.
    if (this.sockets.size === 0) return;
    const now = Date.now();
    for (const s of [...this.sockets.values()]) {
      for (const ch of [...s.channels.values()]) {
        const why = this.host.auth.invalidNow(ch.auth, now);
        if (why !== null) this.expel(s, ch, why);
      }
    }
    const sink = {
      send: (s: RtSocket, _ch: Channel, frame: string) => this.send(s, frame),
      broken: (s: RtSocket, ch: Channel, err: HearthError) => {
        if (this.alive(s) && s.channels.get(ch.topic) === ch)
          this.expel(s, ch, `The filter fails: ${err.message}`);
      },
    };
    for (const entry of entries) fanOutChange(entry, schema, this.subscribers(), sink, files);
  }
}
