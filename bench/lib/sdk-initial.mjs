/**
 * Initial sync of a table into an empty replica (issue 6, Benchmark): the rows inserted over
 * REST; a fresh engine times from `createSync` to its live callback holding every row, and to
 * `settled()`. Floors in the same run: a bare /sync/v1 client's snapshot (`cursor: null`) and
 * catch-up (cursor 0) of the same rows, timed from opening its socket to `live`, and a REST
 * keyset read of the same rows in pages of 1,000 (the pages the snapshot reads).
 */
import { randomUUID } from "node:crypto";
import { expectStatus, keyHeaders, request } from "./hearth.mjs";
import { openEngine, watch, within } from "./sdk-engines.mjs";

const CHUNK = 2_000;
const PAGE = 1_000;
const elapsed = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Inserts `n` rows into `table` with the service key; resolves the milliseconds taken. */
export async function fillTable(project, table, n) {
  const t0 = process.hrtime.bigint();
  for (let at = 0; at < n; at += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, n - at) }, (_, i) => ({
      id: randomUUID(),
      title: `todo ${at + i}`,
      done: (at + i) % 3 === 0,
      n: at + i,
    }));
    expectStatus(
      await request(`${project.url}/rest/v1/${table}`, {
        method: "POST",
        headers: {
          ...keyHeaders(project.serviceKey),
          "content-type": "application/json",
          prefer: "return=minimal",
        },
        body: JSON.stringify(rows),
      }),
      201,
      "bulk insert",
    );
  }
  return elapsed(t0);
}

/** One initial sync by a fresh engine on an empty `kind` replica; checks the row count. */
export async function engineInitialSync(sdk, project, kind, table, n) {
  const t0 = process.hrtime.bigint();
  const { engine, errors, close } = openEngine(sdk, project, kind, [table]);
  try {
    const watcher = watch(engine, table);
    const atLive = await watcher.count(n);
    const liveMs = Number(atLive - t0) / 1e6;
    await within(engine.settled(), "settled()");
    const settledMs = elapsed(t0);
    watcher.stop();
    const rows = (await engine.query(table)).length;
    if (rows !== n) throw new Error(`the replica holds ${rows} rows, not ${n}`);
    if (errors.length > 0) throw new Error(`the engine reported: ${errors.map((e) => e.message).join("; ")}`);
    return { ms: liveMs, settledMs, rows };
  } finally {
    await close();
  }
}

/**
 * The replica's own share of an initial sync: the same number of rows committed to a bare,
 * empty replica of `kind` as the engine commits a snapshot (pages of 1,000 staged, then one
 * swap with the cursor), then read back. No network, no engine.
 */
export async function replicaLoad(replica, table, n) {
  const t0 = process.hrtime.bigint();
  await within(replica.open(), "opening the bare replica");
  try {
    await replica.commit({ clearStaged: true, meta: { cursor: null, tables: [table] } });
    for (let at = 0; at < n; at += PAGE) {
      const staged = Array.from({ length: Math.min(PAGE, n - at) }, (_, i) => {
        const row = { id: randomUUID(), title: `todo ${at + i}`, done: (at + i) % 3 === 0, n: at + i };
        return { table, key: JSON.stringify([row.id]), row };
      });
      await replica.commit({ staged });
    }
    await replica.commit({ swapStaged: [table], meta: { cursor: n, tables: [table] } });
    const rows = (await replica.rows(table)).length;
    return { ms: elapsed(t0), rows };
  } finally {
    await replica.close();
  }
}

/** Every row of `table` over REST in keyset pages of 1,000, with the anon key. */
export async function restKeyset(project, table) {
  const t0 = process.hrtime.bigint();
  let rows = 0;
  let after = null;
  for (;;) {
    const filter = after === null ? "" : `&id=gt.${after}`;
    const res = expectStatus(
      await request(`${project.url}/rest/v1/${table}?select=*&order=id.asc&limit=${PAGE}${filter}`, {
        headers: keyHeaders(project.anonKey),
      }),
      200,
      "REST page",
    );
    const page = JSON.parse(res.body);
    rows += page.length;
    if (page.length < PAGE) break;
    after = page[page.length - 1].id;
  }
  return { ms: elapsed(t0), rows };
}
