/**
 * One sync socket: what it follows, where its stream stands, and flow control. Invariants:
 * - Stored across hibernation in two places: the credential, tables and client id in
 *   `_hearth_sockets` (written when they change: open, pull, auth, a new client id); the
 *   stream position (cursor, seq, phase) in the socket's attachment, updated with every
 *   data frame without a storage write. A restored socket resumes from exactly there.
 * - `cursor` is the LSN through which the client has been sent every change it may see
 *   (while catching up or live), or the snapshot's cursor while a snapshot streams.
 * - `seq` numbers the data frames (`changes`, `snapshot`) of this connection; the client
 *   acknowledges them with `{"type":"ack","seq":n}`. At most `window` are in flight while
 *   catching up; a live socket past `maxUnacked*` is dropped (4008): memory never grows
 *   without bound for a client that stopped reading.
 */
import { HearthError } from "../../shared/errors.ts";
import { type Attachment, type SocketAuth, type SocketStore, sendSafe } from "../realtime/sockets.ts";
import type { DEFAULT_SYNC_LIMITS } from "./protocol.ts";
import type { SnapshotState } from "./snapshot.ts";

export type Phase = "idle" | "snapshot" | "catchup" | "live";

export interface SyncSocket {
  id: string;
  ws: WebSocket;
  auth: SocketAuth;
  /** tables of the current pull (empty before the first) */
  tables: string[];
  clientId: string | null;
  phase: Phase;
  cursor: number;
  snap: SnapshotState | null;
  seq: number;
  acked: number;
  inflight: { seq: number; bytes: number }[];
  inflightBytes: number;
  /** bumped by every pull (and auth change): a stream of an older generation stops */
  generation: number;
  /** the generation whose stream loop is running, if any */
  loop: number | null;
  lastSeen: number;
  closed: boolean;
}

export interface StoredSocket {
  auth: SocketAuth;
  tables: string[];
  clientId: string | null;
}

interface SyncAttachment extends Attachment {
  cursor?: number;
  seq?: number;
  phase?: Phase;
}

export function newSocket(id: string, ws: WebSocket, stored: StoredSocket): SyncSocket {
  return {
    id,
    ws,
    auth: stored.auth,
    tables: stored.tables,
    clientId: stored.clientId,
    phase: "idle",
    cursor: 0,
    snap: null,
    seq: 0,
    acked: 0,
    inflight: [],
    inflightBytes: 0,
    generation: 0,
    loop: null,
    lastSeen: Date.now(),
    closed: false,
  };
}

/** Stores what must survive hibernation; never for a closed socket (its row is gone for good). */
export function persist(store: SocketStore, s: SyncSocket): void {
  if (s.closed) return;
  store.save(s.id, "sync", { auth: s.auth, tables: s.tables, clientId: s.clientId } satisfies StoredSocket);
}

/** The stream position, kept by the runtime with the socket through hibernation. */
export function savePosition(s: SyncSocket): void {
  try {
    s.ws.serializeAttachment({
      id: s.id,
      kind: "sync",
      cursor: s.cursor,
      seq: s.seq,
      phase: s.phase,
    } satisfies SyncAttachment);
  } catch {
    // closed meanwhile: nothing to resume
  }
}

export function loadPosition(ws: WebSocket): { cursor: number; seq: number; phase: Phase } {
  const a = (ws.deserializeAttachment() ?? {}) as SyncAttachment;
  return { cursor: a.cursor ?? 0, seq: a.seq ?? 0, phase: a.phase ?? "idle" };
}

export type Limits = typeof DEFAULT_SYNC_LIMITS;

/**
 * Sends a data frame numbered `s.seq` (the caller built it with that number). Returns why
 * the socket must be dropped instead (slow consumer), or null once sent.
 */
export function sendData(s: SyncSocket, frame: string, limits: Limits): string | null {
  const frames = s.seq - s.acked;
  const bytes = s.inflightBytes + frame.length;
  if (s.phase === "live" && (frames > limits.maxUnackedFrames || bytes > limits.maxUnackedBytes)) {
    return `slow consumer: ${frames} frames (${bytes} bytes) not acknowledged`;
  }
  s.inflight.push({ seq: s.seq, bytes: frame.length });
  s.inflightBytes = bytes;
  if (!sendSafe(s.ws, frame)) return "send failed";
  savePosition(s);
  return null;
}

/** `{"type":"ack","seq":n}`: frames up to n were processed by the client. */
export function acknowledge(s: SyncSocket, seq: number): void {
  if (seq > s.seq) {
    throw new HearthError("HEARTH_BAD_FRAME", `Ack of frame ${seq}, which was not sent`, {
      details: `The last data frame sent on this socket is ${s.seq}.`,
    });
  }
  if (seq <= s.acked) return;
  s.acked = seq;
  while (s.inflight.length > 0 && s.inflight[0]!.seq <= seq) s.inflightBytes -= s.inflight.shift()!.bytes;
}

/** Room for another data frame while catching up or sending a snapshot. */
export function windowOpen(s: SyncSocket, limits: Limits): boolean {
  return s.seq - s.acked < limits.window;
}
