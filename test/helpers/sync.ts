/**
 * A sync-protocol client for tests inside workerd (docs/sync.md): frames are kept in
 * arrival order and awaited by predicate, never by sleeping; data frames are acknowledged
 * as they arrive unless `autoAck` is off (back-pressure tests).
 */
import { expect } from "vitest";
import { call, type TestProject } from "./api.ts";

export type SyncFrame = Record<string, unknown> & { type: string };

export interface Change {
  lsn: number;
  ts: number;
  table: string;
  op: "insert" | "update" | "delete";
  pk: Record<string, unknown>;
  row?: Record<string, unknown>;
}

export interface PushResultFrame {
  type: "push_result";
  clientId: string;
  id: number;
  status: "applied" | "duplicate" | "rejected";
  lsn?: number | null;
  error?: { code: string; message: string; details: string | null; hint: string | null };
  retryable?: boolean;
}

export class SyncClient {
  readonly frames: SyncFrame[] = [];
  closed: { code: number; reason: string } | null = null;
  autoAck = true;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const frame = JSON.parse(String(e.data)) as SyncFrame;
      this.frames.push(frame);
      if (this.autoAck && typeof frame.seq === "number") this.ack(frame.seq);
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

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  ack(seq: number): void {
    if (!this.closed) this.send({ type: "ack", seq });
  }

  /** The first frame from index `from` on that `pred` accepts; fails after `ms`. */
  async waitFor(pred: (f: SyncFrame) => boolean, ms = 10_000, from = 0): Promise<SyncFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.frames.slice(from).find(pred);
      if (hit) return hit;
      if (this.closed)
        throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching frame in ${ms} ms; got ${JSON.stringify(this.frames.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
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

  /** Pulls and collects every change until `live`; returns them and the live cursor. */
  async pull(
    cursor: number | null,
    tables: string[],
    ms = 20_000,
  ): Promise<{ changes: Change[]; cursor: number }> {
    const from = this.frames.length;
    this.send({ type: "pull", cursor, tables });
    const live = await this.waitFor((f) => f.type === "live", ms, from);
    return {
      changes: changesIn(this.frames.slice(from, this.frames.indexOf(live))),
      cursor: live.cursor as number,
    };
  }

  /** Changes received from frame index `from` on. */
  changes(from = 0): Change[] {
    return changesIn(this.frames.slice(from));
  }

  /** Pushes and waits for one result per mutation. */
  async push(clientId: string, mutations: unknown[]): Promise<PushResultFrame[]> {
    const from = this.frames.length;
    this.send({ type: "push", clientId, mutations });
    const results: PushResultFrame[] = [];
    let at = from;
    for (let i = 0; i < mutations.length; i++) {
      const frame = await this.waitFor((f) => f.type === "push_result", 10_000, at);
      at = this.frames.indexOf(frame) + 1;
      results.push(frame as unknown as PushResultFrame);
    }
    return results;
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

export function changesIn(frames: SyncFrame[]): Change[] {
  return frames.filter((f) => f.type === "changes").flatMap((f) => f.changes as Change[]);
}

/** Opens `{url}/sync/v1?apikey=<key>` through the gateway and waits for its `hello`. */
export async function connectSync(project: TestProject, key: string): Promise<SyncClient> {
  const res = await call(`${project.url}/sync/v1?apikey=${encodeURIComponent(key)}`, {
    headers: { upgrade: "websocket" },
  });
  expect(res.status, res.status === 101 ? "" : await res.text()).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const client = new SyncClient(ws);
  await client.waitFor((f) => f.type === "hello");
  return client;
}

/** Applies a snapshot and changes by primary key, as a client would: the state it ends with. */
export function applyAll(
  state: Map<string, Record<string, unknown>>,
  frames: SyncFrame[],
  key: (row: Record<string, unknown>) => string,
): Map<string, Record<string, unknown>> {
  for (const f of frames) {
    if (f.type === "resync") state.clear();
    if (f.type === "snapshot")
      for (const row of f.rows as Record<string, unknown>[]) state.set(key(row), row);
    if (f.type === "changes") {
      for (const c of f.changes as Change[]) {
        if (c.op === "delete") state.delete(key(c.pk));
        else state.set(key(c.pk), c.row!);
      }
    }
  }
  return state;
}
