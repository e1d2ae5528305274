/**
 * A test-side WebSocket that keeps every JSON frame in arrival order and lets a test await
 * one by predicate, never by sleeping. The realtime (Phoenix) and sync clients build on it.
 */
import { expect } from "vitest";
import { call, type TestProject } from "./api.ts";

export class FrameSocket<F> {
  readonly frames: F[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const frame = JSON.parse(String(e.data)) as F;
      this.frames.push(frame);
      this.received(frame);
      this.wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  /** Called for each frame as it arrives (the sync client acknowledges here). */
  protected received(_frame: F): void {}

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next frame or close, or after `ms`. */
  private next(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The first frame from index `from` on that `pred` accepts; fails after `ms`. */
  async waitFor(pred: (f: F) => boolean, ms = 10_000, from = 0): Promise<F> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.frames.slice(from).find(pred);
      if (hit) return hit;
      if (this.closed)
        throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching frame in ${ms} ms; got ${JSON.stringify(this.frames.slice(-3))}`);
      await this.next(left);
    }
  }

  async waitClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("socket did not close");
      await this.next(left);
    }
    return this.closed;
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

/** Opens a WebSocket endpoint of a project through the gateway, with `?apikey=`. */
export async function openSocket(project: TestProject, path: string, key: string): Promise<WebSocket> {
  const res = await call(
    `${project.url}${path}${path.includes("?") ? "&" : "?"}apikey=${encodeURIComponent(key)}`,
    {
      headers: { upgrade: "websocket" },
    },
  );
  expect(res.status, res.status === 101 ? "" : await res.text()).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  return ws;
}
