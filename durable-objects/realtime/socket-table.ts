/**
 * The realtime sockets a ProjectDO holds and what it stores of each. Invariants:
 * - Who writes: the hub (realtime/hub.ts), one frame at a time.
 * - What survives eviction: the sockets (hibernation), each one's state in `_hearth_sockets`
 *   (written on join, leave and track, never per event), its last-seen time in its attachment.
 * - Bounds: a socket's stored state is capped (socketStateBytes); a change that would pass
 *   the cap is undone and refused.
 */
import { HearthError, hearthErrorIn } from "../../shared/errors.ts";
import type { SchemaIndex } from "../schema-index.ts";
import type { Authenticator } from "./auth.ts";
import { type Channel, type ChannelState, compileBindings } from "./channel.ts";
import { encodeFrame } from "./phoenix.ts";
import { attachmentOf, CLOSE, closeSafe, type SocketAuth, type SocketStore, sendSafe } from "./sockets.ts";

export interface RealtimeLimits {
  channelsPerSocket: number;
  frameBytes: number;
  /** bytes sent to a socket between two of its frames (heartbeats come every 25 s) */
  unreadBytes: number;
  heartbeatTimeoutMs: number;
  /** a tracked presence state, as JSON */
  presenceBytes: number;
  /** everything stored for one socket (tokens, channels, bindings, presence), as JSON */
  socketStateBytes: number;
}

export const DEFAULT_REALTIME_LIMITS: RealtimeLimits = {
  channelsPerSocket: 100,
  frameBytes: 256 * 1024,
  unreadBytes: 16 * 1024 * 1024,
  heartbeatTimeoutMs: 60_000,
  presenceBytes: 4096,
  socketStateBytes: 512 * 1024,
};

/** How often a socket's last-seen time is written to its attachment (kept through hibernation). */
export const SEEN_EVERY_MS = 10_000;

export interface RtSocket {
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
export function errorResponse(err: unknown): { reason: string; code?: string; status?: number } {
  // (a catalog outage arrives wrapped in drizzle's query error)
  const known = hearthErrorIn(err);
  if (known) return { reason: known.message, code: known.code, status: known.status };
  return { reason: "Internal error" };
}

/** join_ref, ref and topic of a frame too large to parse, read off its first bytes. */
export function frameHead(
  text: string,
): { joinRef: string | null; ref: string | null; topic: string } | null {
  const m = /^\[\s*(null|"[^"\\]{0,64}")\s*,\s*(null|"[^"\\]{0,64}")\s*,\s*"([^"\\]{1,512})"/.exec(
    text.slice(0, 1024),
  );
  if (!m) return null;
  const str = (v: string) => (v === "null" ? null : v.slice(1, -1));
  return { joinRef: str(m[1]!), ref: str(m[2]!), topic: m[3]! };
}

export abstract class SocketTable {
  protected readonly sockets = new Map<WebSocket, RtSocket>();

  constructor(protected readonly host: RealtimeHost) {}

  /** A socket is gone: its presence leaves (the hub's part). */
  protected abstract closed(s: RtSocket): void;

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
    const seen = (attachmentOf(ws) as { seen?: number } | null)?.seen;
    const s: RtSocket = {
      id,
      ws,
      auth: stored.auth,
      channels: new Map(),
      // The silence clock goes on from the last frame seen before the eviction.
      lastSeen: typeof seen === "number" ? seen : Date.now(),
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
    this.closed(s);
    this.host.store.remove(s.id);
  }

  protected persist(s: RtSocket): void {
    const channels: ChannelState[] = [...s.channels.values()].map(({ compiled: _, ...state }) => state);
    const state = { auth: s.auth, channels } satisfies StoredSocket;
    const size = JSON.stringify(state).length;
    if (size > this.host.limits.socketStateBytes) {
      throw new HearthError(
        "HEARTH_REALTIME_LIMIT",
        `This socket's channels and presence would take ${size} bytes, over the limit of ${this.host.limits.socketStateBytes}`,
        { hint: "Join fewer channels, with fewer or shorter filters, or track smaller presence states." },
      );
    }
    this.host.store.save(s.id, "realtime", state);
  }

  /** Applies a change to a socket's state and stores it; if it cannot be stored, undoes it. */
  protected commit(s: RtSocket, apply: () => () => void): void {
    const undo = apply();
    try {
      this.persist(s);
    } catch (err) {
      undo();
      throw err;
    }
  }

  /** Still the live record of this socket (it may have closed during an await)? */
  protected alive(s: RtSocket): boolean {
    return this.sockets.get(s.ws) === s;
  }

  protected send(s: RtSocket, frame: string): void {
    s.sentSinceSeen += frame.length;
    if (s.sentSinceSeen > this.host.limits.unreadBytes) {
      this.drop(s, CLOSE.slowConsumer, "slow consumer: too much unread data since the last heartbeat");
      return;
    }
    if (!sendSafe(s.ws, frame)) this.close(s.ws);
  }

  protected drop(s: RtSocket, code: number, reason: string): void {
    this.close(s.ws);
    closeSafe(s.ws, code, reason);
  }

  /**
   * Channels joined to `topic` with the same privacy: a private and a public channel of one
   * name are two channels, and nothing crosses between them.
   */
  protected topicMembers(topic: string, priv: boolean): [RtSocket, Channel][] {
    const out: [RtSocket, Channel][] = [];
    const now = Date.now();
    for (const s of this.sockets.values()) {
      const ch = s.channels.get(topic);
      if (ch && ch.private === priv && this.host.auth.invalidNow(ch.auth, now) === null) out.push([s, ch]);
    }
    return out;
  }

  /** Sockets silent past the heartbeat timeout are closed (their presence leaves). */
  sweep(now: number): void {
    for (const s of [...this.sockets.values()]) {
      if (now - s.lastSeen > this.host.limits.heartbeatTimeoutMs) {
        this.drop(s, CLOSE.heartbeatTimeout, "heartbeat timeout");
      }
    }
  }

  /** The project is deleted: every socket closes. */
  closeAll(reason: string): void {
    for (const s of [...this.sockets.values()]) this.drop(s, 1000, reason);
  }

  protected *subscribers(): Generator<[RtSocket, Channel]> {
    for (const s of [...this.sockets.values()]) for (const ch of [...s.channels.values()]) yield [s, ch];
  }
}
