/**
 * A Phoenix (realtime-js wire format) client for tests inside workerd: frames are kept in
 * arrival order and awaited by predicate, never by sleeping. "Nothing arrived" is shown by
 * a later frame that did arrive: delivery is in LSN order per socket.
 */
import { expect } from "vitest";
import { call, type TestProject } from "./api.ts";

export type PhxFrame = [string | null, string | null, string, string, Record<string, unknown>];

export class PhxClient {
  readonly frames: PhxFrame[] = [];
  closed: { code: number; reason: string } | null = null;
  private ref = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      this.frames.push(JSON.parse(String(e.data)) as PhxFrame);
      this.wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(raw: string | ArrayBuffer): void {
    this.ws.send(raw);
  }

  push(topic: string, event: string, payload: unknown, joinRef: string | null = null): string {
    const ref = String(++this.ref);
    this.ws.send(
      JSON.stringify([joinRef ?? (event === "phx_join" ? ref : null), ref, topic, event, payload]),
    );
    return ref;
  }

  /** Resolves with the first frame (from `from` on) that `pred` accepts; fails after `ms`. */
  async waitFor(pred: (f: PhxFrame) => boolean, ms = 5000, from = 0): Promise<PhxFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.frames.slice(from).find(pred);
      if (hit) return hit;
      if (this.closed)
        throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching frame in ${ms} ms; got ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(ms = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("socket did not close");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closed;
  }

  reply(ref: string): Promise<PhxFrame> {
    return this.waitFor((f) => f[3] === "phx_reply" && f[1] === ref);
  }

  /** Joins `realtime:<name>` and returns the reply's payload (`{status, response}`). */
  async join(name: string, config: Record<string, unknown>, accessToken?: string) {
    const payload: Record<string, unknown> = { config };
    if (accessToken !== undefined) payload.access_token = accessToken;
    const ref = this.push(`realtime:${name}`, "phx_join", payload);
    const reply = await this.reply(ref);
    return reply[4] as { status: string; response: Record<string, unknown> };
  }

  /** postgres_changes frames received on a topic so far (their `data`). */
  changes(name: string): Record<string, unknown>[] {
    return this.frames
      .filter((f) => f[2] === `realtime:${name}` && f[3] === "postgres_changes")
      .map((f) => (f[4] as { data: Record<string, unknown> }).data);
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

/** Opens `{url}/realtime/v1/websocket?apikey=<key>&vsn=2.0.0` through the gateway. */
export async function connectRealtime(
  project: TestProject,
  key: string,
  path = "/realtime/v1/websocket",
): Promise<PhxClient> {
  const res = await call(`${project.url}${path}?apikey=${encodeURIComponent(key)}&vsn=2.0.0`, {
    headers: { upgrade: "websocket" },
  });
  expect(res.status, res.status === 101 ? "" : await res.text()).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  return new PhxClient(ws);
}
