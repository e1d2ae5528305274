/**
 * The WebSockets a ProjectDO holds (hibernation API) and what it must remember of each
 * across eviction. Invariants:
 * - Who writes: only the DO, when a socket opens, joins, leaves or tracks presence (never
 *   per event or heartbeat).
 * - What survives eviction: the sockets themselves (the runtime keeps them), each one's id
 *   and kind in its attachment, and its state (token, channels, presence, sync cursor) in
 *   `_hearth_sockets`. Memory holds a cache rebuilt from both on wake.
 * - Durability: a row is written before the frame that confirms it is sent.
 */
import type { Principal } from "../../shared/principal.ts";

export type SocketKind = "realtime" | "sync";

export interface Attachment {
  id: string;
  kind: SocketKind;
}

/** A verified token and the principal it stands for. */
export interface SocketAuth {
  token: string;
  principal: Principal;
  /** when the token expires (ms); null for project keys */
  expiresAtMs: number | null;
  /** when the token's session, grant or membership was last checked (ms) */
  checkedAt: number;
}

const DDL =
  "CREATE TABLE IF NOT EXISTS _hearth_sockets (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL)";

export class SocketStore {
  private ready = false;

  constructor(private readonly sql: SqlStorage) {}

  /** The object's storage may have been emptied (freeze): create the table on demand. */
  reset(): void {
    this.ready = false;
  }

  private ensure(): void {
    if (this.ready) return;
    this.sql.exec(DDL);
    this.ready = true;
  }

  save(id: string, kind: SocketKind, state: unknown): void {
    this.ensure();
    this.sql.exec(
      "INSERT OR REPLACE INTO _hearth_sockets (id, kind, state) VALUES (?, ?, ?)",
      id,
      kind,
      JSON.stringify(state),
    );
  }

  remove(id: string): void {
    this.ensure();
    this.sql.exec("DELETE FROM _hearth_sockets WHERE id = ?", id);
  }

  load(id: string): unknown {
    this.ensure();
    const row = this.sql.exec("SELECT state FROM _hearth_sockets WHERE id = ?", id).toArray()[0];
    return row ? JSON.parse(String(row.state)) : undefined;
  }

  /** Forgets the state of every socket not in `live` (closed while the object was away). */
  prune(live: Set<string>): void {
    this.ensure();
    for (const r of this.sql.exec("SELECT id FROM _hearth_sockets").toArray()) {
      if (!live.has(String(r.id))) this.remove(String(r.id));
    }
  }
}

export function attachmentOf(ws: WebSocket): Attachment | null {
  const a = ws.deserializeAttachment() as Attachment | null;
  return a && typeof a.id === "string" ? a : null;
}

/** Sends without throwing: a socket may close between our check and the send. */
export function sendSafe(ws: WebSocket, data: string): boolean {
  try {
    ws.send(data);
    return true;
  } catch {
    return false;
  }
}

/** Closes without throwing, with a code a client may see (1005/1006 cannot be sent). */
export function closeSafe(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason.slice(0, 120));
  } catch {
    // already closed
  }
}

/** Close codes Hearth uses (docs/realtime.md). */
export const CLOSE = {
  /** the token or key expired or was revoked, or the grant was revoked */
  unauthorized: 4001,
  /** too many connections for the project */
  tooMany: 4029,
  /** the client did not keep up (sync: unacknowledged window; realtime: bytes between heartbeats) */
  slowConsumer: 4008,
  /** no heartbeat within the timeout */
  heartbeatTimeout: 4000,
} as const;
