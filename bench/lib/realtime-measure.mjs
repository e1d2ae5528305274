/**
 * The realtime bench's measurements over a SubscriberPool: one event at a time (a REST write
 * or a client broadcast, each waiting for all N receipts or a timeout that counts misses),
 * and a burst of writes from a few concurrent writers (frames delivered per second).
 * Times are `performance.now()` in this process: "send" just before the request or frame
 * leaves, "ack" when the write's 201 response has been read, "receipt" on a frame's arrival.
 */
import http from "node:http";
import { TOPIC } from "./realtime-client.mjs";

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** `POST {url}/rest/v1/<table>` of one row with the service key, over kept-alive loopback. */
export function rowWriter(project, table) {
  const url = `${project.url}/rest/v1/${table}`;
  const headers = {
    apikey: project.serviceKey,
    authorization: `Bearer ${project.serviceKey}`,
    "content-type": "application/json",
    prefer: "return=minimal",
  };
  return (id) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ id, title: `row ${id}`, done: false });
      const tSend = performance.now();
      const req = http.request(url, { method: "POST", headers, agent }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          text += c;
        });
        res.on("end", () => {
          const tAck = performance.now();
          if (res.statusCode !== 201)
            reject(new Error(`POST ${url} answered ${res.statusCode}: ${text.slice(0, 300)}`));
          else resolve({ tSend, tAck });
        });
        res.on("error", reject);
      });
      req.setTimeout(60_000, () => req.destroy(new Error(`POST ${url} timed out after 60 s`)));
      req.on("error", reject);
      req.end(body);
    });
}

/** A broadcast from socket 0 of `sender` (a pool of one) to the topic; resolves its send time. */
export function broadcaster(sender) {
  return async (k) => {
    const tSend = performance.now();
    sender.push(0, TOPIC, "broadcast", { type: "broadcast", event: "bench", payload: { k } });
    return { tSend, tAck: Number.NaN };
  };
}

const wait = (ms) => {
  let timer;
  const p = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { p, cancel: () => clearTimeout(timer) };
};

/**
 * `count` events (after `warmup` untimed ones) one after another, each awaited at all `n`
 * subscribers of `pool` (indices 0..n-1) or until `timeoutMs` after its send.
 * `fire(key)` emits the event that carries `key`; `kind` is what the subscribers see.
 */
export async function oneAtATime({ pool, n, kind, fire, nextKey, count, warmup, timeoutMs }) {
  let cur = null;
  pool.onEvent = (i, t, k, key) => {
    if (cur === null || k !== kind || key !== cur.key || i >= n || !Number.isNaN(cur.recv[i])) return;
    cur.recv[i] = t;
    if (++cur.got === n) cur.resolve();
  };
  const out = { sendToRecv: [], ackToRecv: [], lastSendToRecv: [], lastAckToRecv: [], ack: [], spread: [] };
  let misses = 0;
  try {
    for (let w = 0; w < warmup + count; w++) {
      const entry = { key: nextKey(), recv: new Float64Array(n).fill(Number.NaN), got: 0, resolve: null };
      const all = new Promise((resolve) => {
        entry.resolve = resolve;
      });
      cur = entry;
      const { tSend, tAck } = await fire(entry.key);
      const timeout = wait(Math.max(0, tSend + timeoutMs - performance.now()));
      await Promise.race([all, timeout.p]);
      timeout.cancel();
      cur = null;
      if (w < warmup) continue;
      misses += n - entry.got;
      let first = Number.POSITIVE_INFINITY;
      let last = Number.NEGATIVE_INFINITY;
      for (const t of entry.recv) {
        if (Number.isNaN(t)) continue;
        out.sendToRecv.push(t - tSend);
        if (!Number.isNaN(tAck)) out.ackToRecv.push(t - tAck);
        first = Math.min(first, t);
        last = Math.max(last, t);
      }
      if (!Number.isNaN(tAck)) out.ack.push(tAck - tSend);
      if (entry.got === n) {
        out.lastSendToRecv.push(last - tSend);
        if (!Number.isNaN(tAck)) out.lastAckToRecv.push(last - tAck);
        out.spread.push(last - first);
      }
    }
  } finally {
    pool.onEvent = () => {};
  }
  return { ...out, misses, deliveries: count * n };
}

/**
 * `writes` rows written by `writers` concurrent writers as fast as they are acked; counts the
 * change frames the first `n` subscribers receive until all arrived, or none for `quietMs`.
 */
export async function burst({ pool, n, write, firstId, writes, writers, quietMs }) {
  const sendAt = new Float64Array(writes).fill(Number.NaN);
  const lag = [];
  let received = 0;
  let lastRecv = Number.NaN;
  let done = null;
  const allIn = new Promise((resolve) => {
    done = resolve;
  });
  pool.onEvent = (i, t, kind, key) => {
    const j = key - firstId;
    if (kind !== "change" || i >= n || !(j >= 0 && j < writes)) return;
    lag.push(t - sendAt[j]);
    lastRecv = t;
    if (++received === writes * n) done();
  };
  const t0 = performance.now();
  let lastAck = t0;
  let failed = 0;
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (next < writes) {
          const j = next++;
          sendAt[j] = performance.now();
          try {
            const { tAck } = await write(firstId + j);
            lastAck = Math.max(lastAck, tAck);
          } catch {
            failed++;
          }
        }
      }),
    );
    let seen = -1;
    let quietSince = performance.now();
    let ticker;
    await Promise.race([
      allIn,
      new Promise((resolve) => {
        ticker = setInterval(() => {
          if (received !== seen) {
            seen = received;
            quietSince = performance.now();
          } else if (performance.now() - quietSince > quietMs) resolve();
        }, 100);
      }),
    ]);
    clearInterval(ticker);
  } finally {
    pool.onEvent = () => {};
  }
  return {
    writes,
    failed,
    received,
    expected: (writes - failed) * n,
    writeSeconds: (lastAck - t0) / 1000,
    deliverSeconds: (lastRecv - t0) / 1000,
    lag,
  };
}
