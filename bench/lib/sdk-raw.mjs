/**
 * Bare `/sync/v1` clients (docs/sync.md), the floors of the SDK bench: one `ws` socket that
 * parses each frame and acks it, and nothing else (no replica, no live queries).
 */
import WebSocket from "ws";
import { onCleanup } from "./cleanup.mjs";

const TIMEOUT_MS = 120_000;

export function syncUrl(project, key) {
  return `${project.url.replace(/^http/, "ws")}/sync/v1?apikey=${encodeURIComponent(key)}`;
}

/** Opens a socket whose termination is registered with the cleanup registry. */
function open(project, key) {
  const ws = new WebSocket(syncUrl(project, key), { perMessageDeflate: false });
  const unregister = onCleanup(() => ws.terminate());
  const done = () => {
    unregister();
    ws.terminate();
  };
  return { ws, done };
}

/**
 * Pulls `cursor` (null: a snapshot) for `table`; resolves at `live` with the milliseconds
 * from opening the socket (the engine's timing starts before its connect too), the rows and
 * changes that arrived, and the cursor.
 */
export function rawPull(project, key, table, cursor) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const { ws, done } = open(project, key);
    let rows = 0;
    let changes = 0;
    const timer = setTimeout(() => fail(new Error(`no live within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    function fail(err) {
      clearTimeout(timer);
      done();
      reject(err);
    }
    ws.on("error", fail);
    ws.on("close", (code, reason) => fail(new Error(`closed ${code} ${reason}`)));
    ws.on("message", (data) => {
      const f = JSON.parse(String(data));
      if (f.type === "hello") ws.send(JSON.stringify({ type: "pull", cursor, tables: [table] }));
      else if (f.type === "snapshot" || f.type === "changes") {
        if (f.type === "snapshot") rows += f.rows.length;
        else changes += f.changes.length;
        ws.send(JSON.stringify({ type: "ack", seq: f.seq }));
      } else if (f.type === "live") {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        clearTimeout(timer);
        ws.removeAllListeners("close");
        done();
        resolve({ ms, rows, changes, cursor: f.cursor });
      } else if (f.type === "error") fail(new Error(`error frame ${f.code}: ${f.message}`));
    });
  });
}

/**
 * A live follower of `table` from the project's current LSN: `next(id)` resolves with the
 * hrtime (bigint) at which a change to the row with that `id` arrived. `close()` ends it.
 */
export function rawFollower(project, key, table) {
  return new Promise((resolve, reject) => {
    const { ws, done } = open(project, key);
    const waiting = new Map();
    let live = false;
    const timer = setTimeout(() => fail(new Error(`no live within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    function fail(err) {
      clearTimeout(timer);
      done();
      for (const w of waiting.values()) w.reject(err);
      waiting.clear();
      if (!live) reject(err);
    }
    ws.on("error", fail);
    ws.on("close", (code, reason) => fail(new Error(`raw follower closed ${code} ${reason}`)));
    ws.on("message", (data) => {
      const at = process.hrtime.bigint();
      const f = JSON.parse(String(data));
      if (f.type === "hello") ws.send(JSON.stringify({ type: "pull", cursor: f.lsn, tables: [table] }));
      else if (f.type === "changes") {
        for (const c of f.changes) {
          const w = waiting.get(c.row?.id ?? c.pk?.id);
          if (w) {
            waiting.delete(c.row?.id ?? c.pk?.id);
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
            ws.removeAllListeners("close");
            done();
          },
        });
      } else if (f.type === "error") fail(new Error(`error frame ${f.code}: ${f.message}`));
    });
  });
}
