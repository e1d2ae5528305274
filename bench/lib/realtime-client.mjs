/**
 * Many Phoenix (realtime-js 2.x wire format) subscribers in one Node process, over `ws`:
 * each its own socket, opened and joined in batches, kept alive with heartbeats like
 * realtime-js (every 25 s, spread over the pool). Receipts are timestamped on arrival,
 * before any parsing, and handed to `onEvent(index, t, kind, key)`:
 * kind "change" (key = the row's id) or "broadcast" (key = the payload's `k`).
 * A pool registers its own teardown with the cleanup registry, so a failed run closes it.
 */
import WebSocket from "ws";
import { onCleanup } from "./cleanup.mjs";

export const TOPIC = "realtime:room";
const HEARTBEAT_MS = 25_000;
const JOIN_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 10_000;

/** The join payload realtime-js sends: postgres_changes on `table` (none when null). */
export function joinPayload(table) {
  return {
    config: {
      broadcast: { ack: false, self: false },
      presence: { key: "", enabled: false },
      private: false,
      postgres_changes: table ? [{ event: "*", schema: "public", table }] : [],
    },
  };
}

/** `ws://…/p/<id>/realtime/v1/websocket?apikey=…&vsn=2.0.0` for a project, on `baseUrl`. */
export function realtimeUrl(baseUrl, project, key) {
  const projectPath = new URL(project.url).pathname;
  const base = baseUrl.replace(/^http/, "ws");
  return `${base}${projectPath}/realtime/v1/websocket?apikey=${encodeURIComponent(key)}&vsn=2.0.0`;
}

export class SubscriberPool {
  /**
   * @param {object} opts
   * @param {string} opts.url the realtime WebSocket URL
   * @param {boolean} [opts.deflate] offer permessage-deflate, as browsers do (default: off)
   */
  constructor({ url, deflate = false }) {
    this.url = url;
    this.deflate = deflate;
    this.subs = [];
    /** frames that were not expected: error replies, closes, system errors (first 20 kept) */
    this.problems = [];
    this.problemCount = 0;
    this.frames = 0;
    /** @type {(index: number, t: number, kind: string, key: unknown) => void} */
    this.onEvent = () => {};
    this.closing = false;
    this.unregister = onCleanup(() => this.terminate());
    this.ticker = setInterval(() => this.beat(), 1_000);
    this.ticker.unref();
  }

  get size() {
    return this.subs.length;
  }

  problem(what) {
    this.problemCount++;
    if (this.problems.length < 20) this.problems.push(what);
  }

  /** Opens and joins `count` more sockets, `batch` at a time; `table` as in joinPayload. */
  async add(count, { batch = 50, table = null } = {}) {
    for (let done = 0; done < count; done += batch) {
      const n = Math.min(batch, count - done);
      await Promise.all(Array.from({ length: n }, () => this.openOne(table)));
    }
  }

  openOne(table) {
    const index = this.subs.length;
    const ws = new WebSocket(this.url, {
      perMessageDeflate: this.deflate,
      skipUTF8Validation: true,
      handshakeTimeout: JOIN_TIMEOUT_MS,
    });
    // Heartbeats spread over the period, so the pool does not beat all at once.
    const sub = { ws, ref: 1, lastBeat: performance.now() - Math.random() * HEARTBEAT_MS, joined: null };
    this.subs.push(sub);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => sub.joined?.(new Error(`socket ${index}: no join reply in ${JOIN_TIMEOUT_MS / 1000} s`)),
        JOIN_TIMEOUT_MS,
      );
      sub.joined = (err) => {
        clearTimeout(timer);
        sub.joined = null;
        if (err) reject(err);
        else resolve();
      };
      ws.on("open", () => ws.send(JSON.stringify(["1", "1", TOPIC, "phx_join", joinPayload(table)])));
      ws.on("error", (err) => {
        if (sub.joined) sub.joined(new Error(`socket ${index}: ${err.message}`));
        else if (!this.closing) this.problem(`socket ${index} error: ${err.message}`);
      });
      ws.on("close", (code, reason) => {
        if (sub.joined) sub.joined(new Error(`socket ${index} closed before joining: ${code} ${reason}`));
        else if (!this.closing) this.problem(`socket ${index} closed: ${code} ${reason}`);
      });
      ws.on("message", (data) => this.receive(index, sub, data));
    });
  }

  receive(index, sub, data) {
    const t = performance.now();
    this.frames++;
    let f;
    try {
      f = JSON.parse(data.toString());
    } catch {
      this.problem(`socket ${index}: a frame that is not JSON`);
      return;
    }
    const [, ref, , event, payload] = f;
    if (event === "postgres_changes") this.onEvent(index, t, "change", payload?.data?.record?.id);
    else if (event === "broadcast") this.onEvent(index, t, "broadcast", payload?.payload?.k);
    else if (event === "phx_reply") {
      if (ref === "1" && sub.joined) {
        if (payload?.status === "ok") sub.joined(null);
        else sub.joined(new Error(`socket ${index}: join refused ${JSON.stringify(payload)}`));
      } else if (payload?.status !== "ok") this.problem(`socket ${index}: ${JSON.stringify(f)}`);
    } else if (event === "phx_error" || event === "phx_close" || payload?.status === "error") {
      this.problem(`socket ${index}: ${JSON.stringify(f).slice(0, 300)}`);
    }
  }

  /** Sends a frame on socket `index` with its next ref. */
  push(index, topic, event, payload, joinRef = "1") {
    const sub = this.subs[index];
    sub.ref++;
    sub.ws.send(JSON.stringify([joinRef, String(sub.ref), topic, event, payload]));
  }

  beat() {
    const now = performance.now();
    for (const sub of this.subs) {
      if (now - sub.lastBeat < HEARTBEAT_MS || sub.ws.readyState !== WebSocket.OPEN) continue;
      sub.lastBeat = now;
      sub.ref++;
      sub.ws.send(JSON.stringify([null, String(sub.ref), "phoenix", "heartbeat", {}]));
    }
  }

  /** Closes every socket (code 1000), waits a bounded time, then cuts what is left. */
  async close() {
    this.closing = true;
    clearInterval(this.ticker);
    const open = this.subs.map((s) => s.ws).filter((ws) => ws.readyState !== WebSocket.CLOSED);
    const closed = open.map((ws) => new Promise((resolve) => ws.once("close", resolve)));
    for (const ws of open) {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, "bench done");
    }
    let timer;
    await Promise.race([
      Promise.all(closed),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    this.terminate();
  }

  /** Cuts every socket at once (the cleanup path). */
  terminate() {
    this.closing = true;
    clearInterval(this.ticker);
    for (const s of this.subs) if (s.ws.readyState !== WebSocket.CLOSED) s.ws.terminate();
    this.unregister();
  }
}
