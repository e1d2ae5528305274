/**
 * Bare `/sync/v1` clients in the page (docs/sync.md), the floors of the browser bench: the
 * page's own WebSocket, parsing each frame and acking it, and nothing else (no replica, no
 * live query). The browser twin of bench/lib/sdk-raw.mjs.
 */
const TIMEOUT_MS = 120_000;

const syncUrl = (url, key) => `${url.replace(/^http/, "ws")}/sync/v1?apikey=${encodeURIComponent(key)}`;

/**
 * A live follower of `table` from the project's current LSN: resolves once live with
 * `next(id)`, the time at which a change to the row with that `id` arrives, and `close()`.
 */
export function openRaw({ url, key, table }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(syncUrl(url, key));
    const waiting = new Map();
    let live = false;
    const timer = setTimeout(() => fail(new Error(`no live within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    function fail(err) {
      clearTimeout(timer);
      ws.onclose = null;
      ws.close();
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
      if (!live) reject(err);
    }
    ws.onerror = () => fail(new Error("the bare /sync/v1 socket failed"));
    ws.onclose = (e) => fail(new Error(`the bare /sync/v1 socket closed ${e.code} ${e.reason}`));
    ws.onmessage = (e) => {
      const at = performance.now();
      const f = JSON.parse(e.data);
      if (f.type === "hello") ws.send(JSON.stringify({ type: "pull", cursor: f.lsn, tables: [table] }));
      else if (f.type === "changes") {
        for (const c of f.changes) {
          const id = c.row?.id ?? c.pk?.id;
          const w = waiting.get(id);
          if (w) {
            waiting.delete(id);
            w.resolve(at);
          }
        }
        ws.send(JSON.stringify({ type: "ack", seq: f.seq }));
      } else if (f.type === "live" && !live) {
        live = true;
        clearTimeout(timer);
        resolve({
          next: (id) => new Promise((res, rej) => waiting.set(id, { resolve: res, reject: rej })),
          close: () => {
            ws.onclose = null;
            ws.close();
          },
        });
      } else if (f.type === "error") fail(new Error(`error frame ${f.code}: ${f.message}`));
    };
  });
}

/**
 * Pulls a snapshot (`cursor: null`) of `table`; resolves at `live` with the milliseconds from
 * opening the socket (the engine's timing starts before its connect too) and the rows.
 */
export function rawPull({ url, anonKey, table }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(syncUrl(url, anonKey));
    let rows = 0;
    const timer = setTimeout(() => fail(new Error(`no live within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    function fail(err) {
      clearTimeout(timer);
      ws.onclose = null;
      ws.close();
      reject(err);
    }
    ws.onerror = () => fail(new Error("the bare /sync/v1 socket failed"));
    ws.onclose = (e) => fail(new Error(`the bare /sync/v1 socket closed ${e.code} ${e.reason}`));
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.type === "hello") ws.send(JSON.stringify({ type: "pull", cursor: null, tables: [table] }));
      else if (f.type === "snapshot" || f.type === "changes") {
        if (f.type === "snapshot") rows += f.rows.length;
        ws.send(JSON.stringify({ type: "ack", seq: f.seq }));
      } else if (f.type === "live") {
        const ms = performance.now() - t0;
        clearTimeout(timer);
        ws.onclose = null;
        ws.close();
        resolve({ ms, rows });
      } else if (f.type === "error") fail(new Error(`error frame ${f.code}: ${f.message}`));
    };
  });
}
