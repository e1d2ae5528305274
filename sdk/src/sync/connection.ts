/**
 * One WebSocket to `{url}/sync/v1`, used once: frames in (parsed), frames out, a `ping` every
 * `pingIntervalMs` (the server closes a socket silent for 60 s) and a close when nothing at all
 * answers a ping within `pongTimeoutMs` (a dead network often closes nothing). `onClose` runs
 * exactly once, whether the server, the network or `close()` ended it.
 */
import { type ClientFrame, parseServerFrame, type ServerFrame } from "./protocol.ts";

/**
 * What the engine needs of a WebSocket: the browser's, Node's `ws`, a Worker's, or a test's.
 * The handlers' event types are left open (`never`) so that each platform's own WebSocket
 * type fits; the engine reads `data` of a message and `code`/`reason` of a close.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface Timing {
  pingIntervalMs: number;
  pongTimeoutMs: number;
}

export interface ConnectionHandlers {
  frame(frame: ServerFrame): void;
  /** a frame that is not valid JSON or lacks fields the engine reads */
  malformed(data: unknown): void;
  close(code: number, reason: string): void;
}

const OPEN = 1;

export class Connection {
  private readonly ws: WebSocketLike | null = null;
  private closed = false;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private deadline: ReturnType<typeof setTimeout> | null = null;

  constructor(
    url: string,
    Socket: WebSocketConstructor,
    private readonly on: ConnectionHandlers,
    timing: Timing,
  ) {
    try {
      this.ws = new Socket(url);
    } catch (err) {
      // A URL the platform refuses: the same as a connection that failed.
      queueMicrotask(() => this.finish(1006, String(err)));
      return;
    }
    const ws = this.ws;
    ws.onmessage = (event: { data: unknown }) => {
      if (this.closed) return;
      this.heard();
      const frame = parseServerFrame(event.data);
      if (frame) this.on.frame(frame);
      else this.on.malformed(event.data);
    };
    ws.onclose = (event: { code: number; reason: string }) => this.finish(event.code, event.reason);
    // An error is followed by a close; nothing to do until then.
    ws.onerror = () => {};
    this.pinger = setInterval(() => this.ping(timing.pongTimeoutMs), timing.pingIntervalMs);
  }

  get open(): boolean {
    return !this.closed && this.ws?.readyState === OPEN;
  }

  /** Sends `frame` if the socket is open; false when it is not (the frame is lost). */
  send(frame: ClientFrame): boolean {
    if (!this.open) return false;
    try {
      this.ws!.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  private ping(timeoutMs: number): void {
    if (!this.send({ type: "ping" }) || this.deadline) return;
    this.deadline = setTimeout(() => this.close(4000, "no answer to ping"), timeoutMs);
  }

  private heard(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
  }

  /** Closes the socket; `onClose` runs now with `code`. */
  close(code = 1000, reason = ""): void {
    if (this.closed) return;
    try {
      this.ws?.close(code, reason);
    } catch {
      // already closing
    }
    this.finish(code, reason);
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pinger) clearInterval(this.pinger);
    this.heard();
    this.on.close(code, reason);
  }
}
