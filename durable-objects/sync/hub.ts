/**
 * The sync feed (`{url}/sync/v1`, WebSocket) of the Hearth SDK: pull by LSN cursor, push
 * mutations exactly once. See docs/sync.md.
 */
import type { Principal } from "../../shared/principal.ts";
import type { ColdStore } from "../cold/cold-store.ts";
import type { Authenticator } from "../realtime/auth.ts";
import type { SocketHub } from "../realtime/socket-hub.ts";
import type { SocketAuth, SocketStore } from "../realtime/sockets.ts";
import type { SchemaIndex } from "../schema-index.ts";
import type { WalEntry } from "../wal.ts";

export interface SyncLimits {
  frameBytes: number;
}

export interface SyncHost {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  store: SocketStore;
  auth: Authenticator;
  cold: ColdStore;
  schema(): SchemaIndex | null;
  /**
   * Runs a REST request (`http://hearth/rest/v1/<table>?...`) as `principal` through the
   * same path as HTTP writes (policies, grants, flushed rows, WAL); `inTransaction` runs at
   * the end of the write's transaction and commits with it.
   */
  rest(principal: Principal, request: Request, inTransaction?: () => void): Promise<Response>;
  /** after a push wrote rows: flush thresholds, and the change feed */
  afterWrite(): Promise<void>;
  limits: SyncLimits;
}

export class SyncHub implements SocketHub {
  constructor(readonly host: SyncHost) {}

  get active(): boolean {
    return false;
  }

  open(ws: WebSocket, _id: string, _auth: SocketAuth, _url: URL): void {
    ws.close(1011, "sync is not available yet");
  }

  restore(ws: WebSocket, _id: string): void {
    ws.close(1011, "sync is not available yet");
  }

  async message(_ws: WebSocket, _data: string | ArrayBuffer): Promise<void> {}

  close(_ws: WebSocket): void {}

  sweep(_now: number): void {}

  revokeGrant(_grantId: string): number {
    return 0;
  }

  recheckAll(): void {}

  async refresh(_now: number): Promise<void> {}

  deliver(_entries: WalEntry[], _schema: SchemaIndex | null): void {}
}
