/** What the ProjectDO asks of each kind of socket it holds (realtime channels, sync). */
import type { FeedListener } from "./feed.ts";
import type { SocketAuth } from "./sockets.ts";

export interface SocketHub extends FeedListener {
  /** a socket just accepted, authenticated by the token of its upgrade request */
  open(ws: WebSocket, id: string, auth: SocketAuth, url: URL): void;
  /** a socket the runtime kept while the object was evicted (hibernation) */
  restore(ws: WebSocket, id: string): void;
  message(ws: WebSocket, data: string | ArrayBuffer): Promise<void>;
  /** the socket closed or failed: forget it */
  close(ws: WebSocket): void;
  /** close sockets silent past their timeout */
  sweep(now: number): void;
  /** close what a revoked grant holds; returns how many channels or sockets closed */
  revokeGrant(grantId: string): number;
  /** membership or keys changed: re-check every token before the next event */
  recheckAll(): void;
}
