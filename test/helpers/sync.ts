/**
 * A sync-protocol client for tests inside workerd (docs/sync.md): frames are kept in
 * arrival order and awaited by predicate, never by sleeping; data frames are acknowledged
 * as they arrive unless `autoAck` is off (back-pressure tests).
 */
import type { TestProject } from "./api.ts";
import { FrameSocket, openSocket } from "./socket-frames.ts";

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
  status: "applied" | "duplicate" | "rejected" | "expired";
  lsn?: number | null;
  error?: { code: string; message: string; details: string | null; hint: string | null };
  retryable?: boolean;
}

export class SyncClient extends FrameSocket<SyncFrame> {
  autoAck = true;
  /** close() was called: frames still arriving are not acknowledged (send would throw) */
  private closing = false;

  protected override received(frame: SyncFrame): void {
    if (this.autoAck && typeof frame.seq === "number") this.ack(frame.seq);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  ack(seq: number): void {
    if (!this.closed && !this.closing) this.send({ type: "ack", seq });
  }

  override close(): void {
    this.closing = true;
    super.close();
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
}

export function changesIn(frames: SyncFrame[]): Change[] {
  return frames.filter((f) => f.type === "changes").flatMap((f) => f.changes as Change[]);
}

/** Opens `{url}/sync/v1?apikey=<key>` through the gateway and waits for its `hello`. */
export async function connectSync(project: TestProject, key: string): Promise<SyncClient> {
  const client = new SyncClient(await openSocket(project, "/sync/v1", key));
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
