/** The public types of the sync engine (createSync in engine.ts; sdk/docs/offline.md). */
import type { Replica, Row } from "../replica/types.ts";
import type { BackoffOptions } from "./backoff.ts";
import type { WebSocketConstructor } from "./connection.ts";
import type { SyncError, SyncMutationError } from "./errors.ts";
import type { NetworkSignals } from "./network.ts";
import type { TablesOption } from "./tables.ts";

/**
 * End-to-end encryption of columns (sdk/src/crypto fits it). `encrypt` runs when a write is
 * made, on the row of an insert or upsert, or on the changed columns of an update (a partial
 * row: `primaryKey` then names the row); what it returns is what is queued and pushed, and
 * an error rejects the write. `decrypt` runs on each row the server sends, before it is stored;
 * a row it cannot decrypt is stored as it came and reported (`error` event). Queries read what
 * `decrypt` returned. Primary-key columns must stay readable: they address rows.
 */
export interface RowCodec {
  encrypt(table: string, row: Row, options: { primaryKey?: Row }): Row | Promise<Row>;
  decrypt(table: string, row: Row): Row | Promise<Row>;
}

/**
 * - `connecting`: opening the socket; `syncing`: catching up or loading a snapshot;
 * - `live`: everything committed has arrived, and changes arrive as they commit;
 * - `offline`: waiting to reconnect (back-off); `stopped`: `stop()` (or never started);
 * - `unauthorized`: the server closed with 4001 (token expired or access revoked): the engine
 *   stays stopped until `start()`.
 */
export type SyncStatus = "connecting" | "syncing" | "live" | "offline" | "stopped" | "unauthorized";

export interface SyncOptions {
  /** the project URL (`http://127.0.0.1:8787/p/<id>`) */
  url: string;
  /** the credential: a project key, an account or app access token */
  token?: string;
  /** called for every connection, so a refreshed token is used (instead of `token`) */
  getToken?: () => string | Promise<string>;
  /** the tables to follow (default primary key `id`), or the schema JSON's tables */
  tables: TablesOption;
  replica: Replica;
  /** default globalThis.WebSocket (Node 20 has none: pass `ws`) */
  WebSocket?: WebSocketConstructor;
  /** end-to-end encryption of columns (default: rows as they are) */
  codec?: RowCodec;
  /** connect at once (default true); else call `start()` */
  connect?: boolean;
  backoff?: BackoffOptions;
  /** keepalive ping period (default 20 s; the server closes a socket silent for 60 s) */
  pingIntervalMs?: number;
  /** a connection that answers nothing this long after a ping is closed and reopened (default 10 s) */
  pongTimeoutMs?: number;
  /**
   * the device's online/offline signals (default: `navigator.onLine` and the window's
   * `online`/`offline` events in browsers, none elsewhere; false: ignore them). Offline, no
   * socket is opened and an open one is closed; back online, the engine connects at once.
   */
  network?: NetworkSignals | false;
  onRejected?: (error: SyncMutationError) => void;
  onExpired?: (error: SyncMutationError) => void;
  onStatus?: (status: SyncStatus) => void;
  onError?: (error: SyncError) => void;
}

export type SyncEvents = {
  status: SyncStatus;
  /** the server rejected a mutation: it was rolled back */
  rejected: SyncMutationError;
  /** a mutation's answer was pruned: it may have been applied (docs/sync.md) */
  expired: SyncMutationError;
  /** an `error` frame, a frame that could not be applied, a failed reconnect */
  error: SyncError;
  /**
   * the socket closed (or could not open); the engine reconnects in `retryInMs`, or, when
   * null, as soon as the device is back online (the browser's `online` event)
   */
  disconnected: { code: number; reason: string; retryInMs: number | null };
  /** the 4001 close's reason */
  unauthorized: string;
  /** tables whose rows (confirmed or optimistic) changed */
  change: { tables: string[]; source: "local" | "remote" };
  /** the number of mutations not yet answered (`pendingCount`) changed: a write queued, answered or rolled back */
  pending: number;
};

/** The server's answer to a mutation that applied (or had applied before: `duplicate`). */
export interface MutationResult {
  id: number;
  status: "applied" | "duplicate";
  /** the LSN of its change; null when it changed nothing */
  lsn: number | null;
}

/**
 * A local write: settles with the server's answer (rejects with a SyncMutationError when it
 * is rejected or expired). `queued` resolves with the mutation id as soon as the write is
 * stored in the replica and visible to queries. Not awaiting it is fine: a rejection of a
 * write nobody awaits is reported through `onRejected` and never becomes an unhandled one.
 */
export type MutationPromise = Promise<MutationResult> & { queued: Promise<number> };
