/**
 * A Phoenix (realtime-js wire format) client for tests inside workerd: frames are kept in
 * arrival order and awaited by predicate, never by sleeping. "Nothing arrived" is shown by
 * a later frame that did arrive: delivery is in LSN order per socket.
 */
import type { TestProject } from "./api.ts";
import { FrameSocket, openSocket } from "./socket-frames.ts";

export type PhxFrame = [string | null, string | null, string, string, Record<string, unknown>];

export class PhxClient extends FrameSocket<PhxFrame> {
  private ref = 0;

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
}

/** Opens `{url}/realtime/v1/websocket?apikey=<key>&vsn=2.0.0` through the gateway. */
export async function connectRealtime(project: TestProject, key: string): Promise<PhxClient> {
  return new PhxClient(await openSocket(project, "/realtime/v1/websocket?vsn=2.0.0", key));
}
