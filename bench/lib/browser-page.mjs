/**
 * The in-page half of bench/sdk-browser.bench.mjs, bundled for the browser (browser-host.mjs)
 * and driven from Node through `window.hearthBench`. Every method takes and returns plain
 * JSON; times are `performance.now()` milliseconds in the page.
 *
 * Samples run one at a time: between two, untimed, the write is awaited and the engine
 * settles, so no sample overlaps the previous one's round trip. Every wait has a deadline.
 */
import {
  deleteDatabase,
  finished,
  makeReplica,
  openEngine,
  request,
  watch,
  within,
} from "./browser-engine.mjs";
import { openRaw, rawPull } from "./browser-raw.mjs";

/** What the page runs in: user agent, isolation (timer precision), Web Locks. */
function env() {
  return {
    userAgent: navigator.userAgent,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    locks: Boolean(navigator.locks),
  };
}

/**
 * Floors: a bare IndexedDB round trip (one readwrite transaction putting a queued-mutation
 * sized record, awaited to `complete`, then a readonly `get` of it) and a plain `fetch` of
 * the server's `GET /health` (a simple request: no preflight).
 */
async function floors({ serverUrl, count, warmup }) {
  const name = `bench-floor-${crypto.randomUUID()}`;
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => open.result.createObjectStore("s");
  const db = await within(request(open), "opening the floor database");
  const idb = [];
  const fetchMs = [];
  try {
    for (let i = 0; i < warmup + count; i++) {
      const record = { id: i, op: "insert", table: "todos", state: "pending", queuedAt: Date.now() };
      record.row = { id: crypto.randomUUID(), title: `floor ${i}`, n: i };
      const t0 = performance.now();
      const tx = db.transaction("s", "readwrite");
      tx.objectStore("s").put(record, i);
      await within(finished(tx), "an IndexedDB put");
      const got = await within(request(db.transaction("s", "readonly").objectStore("s").get(i)), "a get");
      const t1 = performance.now();
      if (got?.id !== i) throw new Error(`IndexedDB read back ${JSON.stringify(got)} for ${i}`);
      if (i >= warmup) idb.push(t1 - t0);
    }
    for (let i = 0; i < warmup + count; i++) {
      const t0 = performance.now();
      const res = await within(fetch(`${serverUrl}/health`), "GET /health");
      await res.arrayBuffer();
      const t1 = performance.now();
      if (res.status !== 200) throw new Error(`GET /health answered ${res.status}`);
      if (i >= warmup) fetchMs.push(t1 - t0);
    }
  } finally {
    db.close();
    await deleteDatabase(name);
  }
  return { idb, fetch: fetchMs };
}

/** A local write: `insert` on the engine, to its own live callback (the optimistic path). */
async function localWrites({ url, anonKey, table, kind, count, warmup }) {
  const { engine, check, close } = openEngine({ url, anonKey, table, kind });
  try {
    await within(engine.settled(), "settled()");
    const watcher = watch(engine, table);
    const live = [];
    for (let i = 0; i < warmup + count; i++) {
      const id = crypto.randomUUID();
      const seen = watcher.next(id);
      const t0 = performance.now();
      const write = engine.insert(table, { id, title: `local ${i}`, n: i });
      const at = await seen;
      await within(write, "the insert's answer");
      await within(engine.settled(), "settled()");
      if (i >= warmup) live.push(at - t0);
    }
    watcher.stop();
    const rows = (await engine.query(table)).length;
    check();
    return { live, rows };
  } finally {
    await close();
  }
}

async function restInsert(url, serviceKey, table, row) {
  const res = await fetch(`${url}/rest/v1/${table}`, {
    method: "POST",
    headers: {
      apikey: serviceKey,
      authorization: `Bearer ${serviceKey}`,
      "content-type": "application/json",
      prefer: "return=minimal",
    },
    body: JSON.stringify(row),
  });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`REST insert answered ${res.status}: ${body.slice(0, 300)}`);
}

/**
 * A remote write: a REST insert with the service key, sent from the page with `fetch`, to the
 * engine's live callback. Also timed on the same writes: the insert's `201`, and the receipt
 * of its change by a bare `/sync/v1` socket in the same page (the floor).
 */
async function remoteWrites({ url, anonKey, serviceKey, table, kind, count, warmup }) {
  const { engine, check, close } = openEngine({ url, anonKey, table, kind });
  let raw = null;
  try {
    await within(engine.settled(), "settled()");
    raw = await within(openRaw({ url, key: anonKey, table }), "the bare /sync/v1 socket going live");
    const watcher = watch(engine, table);
    const ack = [];
    const rawMs = [];
    const live = [];
    for (let i = 0; i < warmup + count; i++) {
      const id = crypto.randomUUID();
      const seen = watcher.next(id);
      const rawSeen = raw.next(id);
      const t0 = performance.now();
      await within(restInsert(url, serviceKey, table, { id, title: `remote ${i}`, n: i }), "the insert");
      const acked = performance.now();
      const [atLive, atRaw] = await within(Promise.all([seen, rawSeen]), "the change");
      await within(engine.settled(), "settled()");
      if (i < warmup) continue;
      ack.push(acked - t0);
      rawMs.push(atRaw - t0);
      live.push(atLive - t0);
    }
    watcher.stop();
    const rows = (await engine.query(table)).length;
    check();
    return { ack, raw: rawMs, live, rows };
  } finally {
    raw?.close();
    await close();
  }
}

/** One initial sync of `rows` rows by a fresh engine on an empty replica of `kind`. */
async function initialSync({ url, anonKey, table, kind, rows }) {
  const t0 = performance.now();
  const { engine, check, close } = openEngine({ url, anonKey, table, kind });
  try {
    const watcher = watch(engine, table);
    const atLive = await watcher.count(rows);
    await within(engine.settled(), "settled()");
    const settledAt = performance.now();
    watcher.stop();
    const held = (await engine.query(table)).length;
    if (held !== rows) throw new Error(`the replica holds ${held} rows, not ${rows}`);
    check();
    return { ms: atLive - t0, settledMs: settledAt - t0, rows: held };
  } finally {
    await close();
  }
}

/**
 * The replica's own share of an initial sync: the commits the engine makes for a snapshot of
 * `rows` rows (pages of 1,000 staged, one swap with the cursor), on a bare, empty
 * IndexedDbReplica, then its rows read back. No network, no engine.
 */
async function replicaLoad({ table, rows, page = 1_000 }) {
  const { replica, drop } = makeReplica("indexeddb");
  const t0 = performance.now();
  try {
    await within(replica.open(), "opening the bare replica");
    await replica.commit({ clearStaged: true, meta: { cursor: null, tables: [table] } });
    for (let at = 0; at < rows; at += page) {
      const staged = Array.from({ length: Math.min(page, rows - at) }, (_, i) => {
        const row = { id: crypto.randomUUID(), title: `todo ${at + i}`, done: (at + i) % 3 === 0, n: at + i };
        return { table, key: JSON.stringify([row.id]), row };
      });
      await replica.commit({ staged });
    }
    const staged = performance.now();
    await replica.commit({ swapStaged: [table], meta: { cursor: rows, tables: [table] } });
    const swapped = performance.now();
    const held = (await replica.rows(table)).length;
    const t1 = performance.now();
    return { ms: t1 - t0, stageMs: staged - t0, swapMs: swapped - staged, readMs: t1 - swapped, rows: held };
  } finally {
    await replica.close();
    await drop();
  }
}

/**
 * What IndexedDB itself costs for the rows of a snapshot: `rows` puts keyed [table, key] in
 * one readwrite transaction of a database of its own, then a `getAll` of them, raw API.
 */
async function idbBulk({ table, rows }) {
  const name = `bench-bulk-${crypto.randomUUID()}`;
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => open.result.createObjectStore("rows");
  const db = await within(request(open), "opening the bulk database");
  try {
    const t0 = performance.now();
    const tx = db.transaction("rows", "readwrite");
    const store = tx.objectStore("rows");
    for (let i = 0; i < rows; i++) {
      const row = { id: crypto.randomUUID(), title: `todo ${i}`, done: i % 3 === 0, n: i };
      store.put(row, [table, JSON.stringify([row.id])]);
    }
    await within(finished(tx), "the bulk put");
    const written = performance.now();
    const read = db.transaction("rows", "readonly").objectStore("rows").getAll();
    const held = (await within(request(read), "the bulk getAll")).length;
    const t1 = performance.now();
    return { ms: t1 - t0, putMs: written - t0, readMs: t1 - written, rows: held };
  } finally {
    db.close();
    await deleteDatabase(name);
  }
}

window.hearthBench = { env, floors, localWrites, remoteWrites, initialSync, replicaLoad, idbBulk, rawPull };
