/**
 * Core data path of Hearth under `npm start` (wrangler dev, local workerd), against floors
 * measured in the same run:
 * - point read by primary key vs `GET /health` (gateway only), `GET /admin/v1/ping` (gateway +
 *   Durable Object hop) and better-sqlite3 in process (storage floor);
 * - bulk insert as JSON array, NDJSON and Arrow IPC vs PostgreSQL `COPY FROM` a file;
 * - a filtered range scan and `count=exact` vs the same queries in PostgreSQL.
 * A step that fails is reported in the results with its error; the others still run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import {
  chunks,
  ITEMS_SCHEMA,
  loadSqlite,
  makeItems,
  PG_ITEMS_DDL,
  prng,
  toArrowIpc,
  toCsv,
  toJsonArray,
  toNdjson,
} from "./lib/data.mjs";
import { figure, latencyFigure } from "./lib/figures.mjs";
import {
  countRows,
  createProject,
  expectStatus,
  keyHeaders,
  putSchema,
  request,
  startBenchHearth,
} from "./lib/hearth.mjs";
import { throughput } from "./lib/load.mjs";
import { errorBlock, errorCell, table } from "./lib/markdown.mjs";
import { startPostgres } from "./lib/postgres.mjs";
import { int, mb, ms, ratio, summarize, timeSequential } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";

export const title = "Core data path";

const MAX_CHUNK_ROWS = 50_000;
const pathOf = (url) => {
  const u = new URL(url);
  return u.pathname + u.search;
};
const SCAN_WIDTH = 10; // score window of the range scan; scores are uniform in [0, 1000)

export default async function run({ quick, log }) {
  const cfg = quick
    ? { sizes: [10_000], bulkRows: 20_000, seqCount: 300, warmup: 30, scanCount: 100, seconds: 5 }
    : {
        sizes: [10_000, 100_000],
        bulkRows: 100_000,
        seqCount: 1_000,
        warmup: 50,
        scanCount: 300,
        seconds: 10,
      };
  const { step, failedSteps } = stepRunner(log);

  const out = [
    `# ${title}${quick ? " (quick)" : ""}`,
    "",
    `Hearth runs under \`npm start\` (wrangler dev, local workerd, throwaway state dir) on the same machine as the load generator and PostgreSQL, so all share its cores. Latencies are client-side wall time over a kept-alive loopback connection, ${cfg.seqCount} sequential requests after ${cfg.warmup} warm-up ones; throughput is autocannon with 10 connections for ${cfg.seconds} s. Ratios compare against a floor or peer measured in this same run.`,
    "",
  ];

  const figures = [];
  const tmp = await mkdtemp(path.join(os.tmpdir(), "hearth-bench-"));
  const [hearth, pgServer] = await Promise.all([
    step("start Hearth", () => startBenchHearth()),
    step("start PostgreSQL", () => startPostgres({ log })),
  ]);
  try {
    if (!hearth.ok) {
      out.push(errorBlock("Starting Hearth", hearth.error));
      return { markdown: out.join("\n"), failedSteps };
    }
    if (pgServer.ok)
      out.push(`PostgreSQL ${pgServer.value.version} (default settings, fresh cluster in /tmp).`, "");
    else out.push(errorBlock("Starting PostgreSQL", pgServer.error), "");
    const pg = pgServer.ok ? await pgServer.value.client() : null;
    const ctx = {
      cfg,
      step,
      log,
      server: hearth.value,
      pg,
      pgServer: pgServer.ok ? pgServer.value : null,
      tmp,
      figures,
    };
    try {
      for (const n of cfg.sizes) out.push(...(await readSections(ctx, n)));
      out.push(...(await bulkSection(ctx)));
    } finally {
      await pg?.end();
    }
  } finally {
    if (hearth.ok) await hearth.value.stop();
    if (pgServer.ok) await pgServer.value.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  return { markdown: out.join("\n"), failedSteps, figures: figures.filter(Boolean) };
}

/** Loads rows into a Hearth table, NDJSON first, JSON array as a fallback. */
async function loadHearth(project, items) {
  const attempts = [];
  for (const [format, contentType, encode] of [
    ["NDJSON", "application/x-ndjson", toNdjson],
    ["JSON array", "application/json", toJsonArray],
  ]) {
    try {
      for (const [start, end] of chunks(items.n, MAX_CHUNK_ROWS)) {
        const res = await request(`${project.url}/rest/v1/items`, {
          method: "POST",
          headers: {
            ...keyHeaders(project.serviceKey),
            "content-type": contentType,
            prefer: "return=minimal",
          },
          body: encode(items, start, end),
        });
        expectStatus(res, [200, 201, 204], `POST ${format} rows ${start}..${end}`);
      }
      return format;
    } catch (err) {
      attempts.push(`${format}: ${err.message}`);
    }
  }
  throw new Error(`could not load the rows: ${attempts.join("; ")}`);
}

async function readSections(ctx, n) {
  const { cfg, step, server, pg, pgServer, tmp } = ctx;
  const out = [`## Reads on ${int(n)} rows`, ""];
  const items = makeItems(n, { seed: n });
  const pgTable = `items_${n}`;

  const setup = await step(`load ${n} rows into Hearth`, async () => {
    const project = await createProject(server, `bench-read-${n}`);
    await putSchema(project, ITEMS_SCHEMA);
    const format = await loadHearth(project, items);
    const total = await countRows(project, "items");
    if (total !== n) throw new Error(`loaded ${n} rows but count=exact says ${total}`);
    return { project, format };
  });
  const pgLoad = pg
    ? await step(`load ${n} rows into PostgreSQL`, async () => {
        await pg.query(PG_ITEMS_DDL(pgTable));
        const file = await pgServer.writeServerFile(`${pgTable}.csv`, toCsv(items));
        await pg.query(`COPY ${pgTable} FROM '${file}' (FORMAT csv)`);
        await pg.query(`ANALYZE ${pgTable}`);
      })
    : { ok: false, error: new Error("PostgreSQL did not start") };
  const sqlite = await step(`load ${n} rows into better-sqlite3`, () => {
    const db = new Database(path.join(tmp, `items-${n}.sqlite`));
    db.pragma("journal_mode = WAL");
    loadSqlite(db, items);
    return db;
  });
  if (!setup.ok) {
    out.push(errorBlock(`Loading ${int(n)} rows into Hearth`, setup.error), "");
    sqlite.ok && sqlite.value.close();
    return out;
  }
  const { project, format } = setup.value;
  out.push(`Rows loaded through \`POST /rest/v1/items\` as ${format} (not timed here; see bulk insert).`, "");

  const seq = { count: cfg.seqCount, warmup: cfg.warmup };
  const rand = prng(7);
  const randomId = () => 1 + Math.floor(rand() * n);
  const anon = keyHeaders(project.anonKey);
  const pointUrl = (id) => `${project.url}/rest/v1/items?id=eq.${id}`;
  const get = async (url, headers, what) => expectStatus(await request(url, { headers }), 200, what);

  // --- point reads ---------------------------------------------------------------------------
  const targets = [
    { name: "`GET /health` (platform floor)", url: () => `${server.url}/health`, headers: {} },
    {
      name: "`GET /admin/v1/ping` (floor + DO hop)",
      url: () => `${project.url}/admin/v1/ping`,
      headers: keyHeaders(project.serviceKey),
    },
    {
      name: "`GET /rest/v1/items?id=eq.N` (anon)",
      url: () => pointUrl(randomId()),
      headers: anon,
      point: true,
    },
  ];
  const check = await step(`point read returns the row (${n})`, async () => {
    const id = Math.ceil(n / 2);
    const res = await get(pointUrl(id), anon, "point read");
    const rows = JSON.parse(res.body);
    if (
      !Array.isArray(rows) ||
      rows.length !== 1 ||
      rows[0].id !== id ||
      rows[0].name !== items.name[id - 1]
    ) {
      throw new Error(
        `expected [{id: ${id}, name: "${items.name[id - 1]}", ...}], got ${res.body.slice(0, 300)}`,
      );
    }
  });
  const results = [];
  for (const t of targets) {
    if (t.point && !check.ok) {
      results.push({ t, lat: check, tp: check });
      continue;
    }
    const lat = await step(`sequential ${t.name} (${n})`, async () =>
      summarize(await timeSequential(() => get(t.url(), t.headers, t.name), seq)),
    );
    const tp = await step(`autocannon ${t.name} (${n})`, () => {
      const first = new URL(t.url());
      return throughput({
        url: first.href,
        headers: t.headers,
        seconds: cfg.seconds,
        ...(t.point ? { nextPath: () => pathOf(pointUrl(randomId())) } : {}),
      });
    });
    results.push({ t, lat, tp });
  }
  const sqliteLat = sqlite.ok
    ? await step(`better-sqlite3 point read (${n})`, async () => {
        const stmt = sqlite.value.prepare("SELECT * FROM items WHERE id = ?");
        return summarize(await timeSequential(() => stmt.get(randomId()), seq));
      })
    : sqlite;
  sqlite.ok && sqlite.value.close();

  const floor = results[0];
  const floorP50 = floor.lat.ok ? floor.lat.value.p50 : Number.NaN;
  const floorRps = floor.tp.ok ? floor.tp.value.reqPerSec : Number.NaN;
  const rows = results.map(({ t, lat, tp }) => [
    t.name,
    lat.ok ? ms(lat.value.p50) : errorCell(lat.error),
    lat.ok ? ms(lat.value.p99) : "–",
    lat.ok ? ratio(lat.value.p50, floorP50) : "–",
    tp.ok ? int(tp.value.reqPerSec) : errorCell(tp.error),
    tp.ok ? ratio(tp.value.reqPerSec, floorRps) : "–",
    tp.ok ? `${ms(tp.value.p50)} / ${ms(tp.value.p99)}` : "–",
    tp.ok ? `${tp.value.non2xx} / ${tp.value.errors} / ${tp.value.timeouts}` : "–",
  ]);
  rows.push([
    "better-sqlite3 `SELECT * FROM items WHERE id=?` (in process, storage floor)",
    sqliteLat.ok ? ms(sqliteLat.value.p50) : errorCell(sqliteLat.error),
    sqliteLat.ok ? ms(sqliteLat.value.p99) : "–",
    sqliteLat.ok ? ratio(sqliteLat.value.p50, floorP50) : "–",
    sqliteLat.ok ? `${int(1000 / sqliteLat.value.mean)} (1 thread, sequential)` : "–",
    "–",
    "–",
    "–",
  ]);
  out.push(
    "### Point read by primary key",
    "",
    table(
      [
        "Target",
        "p50 ms",
        "p99 ms",
        "p50 ÷ /health",
        "req/s (10 conns)",
        "req/s ÷ /health",
        "loaded p50 / p99 ms",
        "non-2xx / errors / timeouts",
      ],
      rows,
    ),
    "",
  );
  const [, ping, point] = results;
  const value = (r) => (r.ok ? r.value : null);
  const pointShape = `point read by primary key, ${int(n)} rows`;
  ctx.figures.push(
    ...[
      latencyFigure(
        { shape: pointShape, peerName: "GET /health (gateway only)", peerKind: "floor" },
        value(point.lat),
        value(floor.lat),
      ),
      latencyFigure(
        { shape: pointShape, peerName: "better-sqlite3 in process", peerKind: "floor" },
        value(point.lat),
        value(sqliteLat),
      ),
      point.tp.ok && floor.tp.ok
        ? figure({
            shape: `${pointShape}, 10 connections`,
            unit: "req/s",
            hearth: point.tp.value.reqPerSec,
            peer: floor.tp.value.reqPerSec,
            peerName: "GET /health (gateway only)",
            peerKind: "floor",
            lowerIsBetter: false,
          })
        : null,
    ].filter(Boolean),
  );
  if (point.lat.ok && ping.lat.ok && sqliteLat.ok) {
    out.push(
      `Point read p50: ${ratio(point.lat.value.p50, floorP50)} the gateway floor, ${ratio(point.lat.value.p50, ping.lat.value.p50)} the DO-hop floor, ${ratio(point.lat.value.p50, sqliteLat.value.p50)} better-sqlite3 in process.`,
      "",
    );
  }

  // --- range scan and count ------------------------------------------------------------------
  out.push(...(await scanSection(ctx, n, project, pgLoad.ok ? pgTable : null, pgLoad)));
  return out;
}

async function scanSection(ctx, n, project, pgTable, pgLoad) {
  const { cfg, step, pg } = ctx;
  const anon = keyHeaders(project.anonKey);
  const rand = prng(11);
  const windowAt = () => {
    const lo = Math.floor(rand() * (1000 - SCAN_WIDTH) * 1000);
    return [lo / 1000, (lo + SCAN_WIDTH * 1000) / 1000];
  };
  const scanUrl = ([lo, hi]) =>
    `${project.url}/rest/v1/items?score=gte.${lo}&score=lt.${hi}&order=score&limit=100`;
  const countUrl = (filter) => `${project.url}/rest/v1/items?select=id&limit=1${filter ? `&${filter}` : ""}`;
  const hearthCount = async (filter) => {
    const res = expectStatus(
      await request(countUrl(filter), { headers: { ...anon, prefer: "count=exact" } }),
      [200, 206],
      "count=exact",
    );
    const total = Number(String(res.headers["content-range"] ?? "").split("/")[1]);
    if (!Number.isInteger(total))
      throw new Error(`no total in Content-Range "${res.headers["content-range"]}"`);
    return total;
  };
  const pgScanSql = `SELECT id, name, score, flag, created_at FROM ${pgTable} WHERE score >= $1 AND score < $2 ORDER BY score LIMIT 100`;

  const queries = [
    {
      name: `range scan \`score=gte.X&score=lt.X+${SCAN_WIDTH}&order=score&limit=100\``,
      short: "filtered range scan, 100 rows",
      hearth: async (w) => {
        const res = expectStatus(await request(scanUrl(w), { headers: anon }), 200, "range scan");
        return JSON.parse(res.body).map((r) => r.score);
      },
      pg: async (w) => (await pg.query(pgScanSql, w)).rows.map((r) => r.score),
    },
    {
      name: "`count=exact` of the whole table (`select=id&limit=1`)",
      short: "count of the whole table",
      hearth: () => hearthCount(""),
      pg: async () => Number((await pg.query(`SELECT count(*) AS c FROM ${pgTable}`)).rows[0].c),
    },
    {
      name: `\`count=exact\` of a score window of ${SCAN_WIDTH}`,
      short: "count of a filtered window",
      hearth: ([lo, hi]) => hearthCount(`score=gte.${lo}&score=lt.${hi}`),
      pg: async (w) =>
        Number(
          (await pg.query(`SELECT count(*) AS c FROM ${pgTable} WHERE score >= $1 AND score < $2`, w)).rows[0]
            .c,
        ),
    },
  ];

  const rows = [];
  for (const q of queries) {
    const windows = Array.from({ length: cfg.scanCount + cfg.warmup }, windowAt);
    const agree = await step(`${q.name}: Hearth and PostgreSQL agree (${n})`, async () => {
      const w = windows[0];
      const h = await q.hearth(w);
      if (pgTable) {
        const p = await q.pg(w);
        if (JSON.stringify(h) !== JSON.stringify(p)) {
          throw new Error(
            `Hearth ${JSON.stringify(h).slice(0, 200)} ≠ PostgreSQL ${JSON.stringify(p).slice(0, 200)}`,
          );
        }
      }
    });
    const h = agree.ok
      ? await step(`${q.name} on Hearth (${n})`, async () =>
          summarize(
            await timeSequential((i) => q.hearth(windows[i % windows.length]), {
              count: cfg.scanCount,
              warmup: cfg.warmup,
            }),
          ),
        )
      : agree;
    const p = pgTable
      ? await step(`${q.name} on PostgreSQL (${n})`, async () =>
          summarize(
            await timeSequential((i) => q.pg(windows[i % windows.length]), {
              count: cfg.scanCount,
              warmup: cfg.warmup,
            }),
          ),
        )
      : pgLoad;
    ctx.figures.push(
      latencyFigure(
        {
          shape: `${q.short}, ${int(n)} rows`,
          peerName: "PostgreSQL (Debian, loopback TCP)",
          peerKind: "peer",
        },
        h.ok ? h.value : null,
        p.ok ? p.value : null,
      ),
    );
    rows.push([
      q.name,
      h.ok ? ms(h.value.p50) : errorCell(h.error),
      h.ok ? ms(h.value.p99) : "–",
      p.ok ? ms(p.value.p50) : errorCell(p.error),
      p.ok ? ms(p.value.p99) : "–",
      h.ok && p.ok ? ratio(h.value.p50, p.value.p50) : "–",
      h.ok && p.ok ? ratio(h.value.p99, p.value.p99) : "–",
    ]);
  }
  return [
    "### Filtered range scan and count",
    "",
    `No secondary index on \`score\` on either side (the bench schema declares none). PostgreSQL is queried with \`pg\` over loopback TCP; Hearth over HTTP with the anon key. Before timing, the first query's answer is compared between the two.`,
    "",
    table(
      [
        "Query",
        "Hearth p50 ms",
        "Hearth p99 ms",
        "PostgreSQL p50 ms",
        "PostgreSQL p99 ms",
        "p50 ratio",
        "p99 ratio",
      ],
      rows,
    ),
    "",
  ];
}

async function bulkSection(ctx) {
  const { cfg, step, server, pg, pgServer } = ctx;
  const n = cfg.bulkRows;
  const items = makeItems(n, { seed: 99 });
  const parts = chunks(n, Math.min(MAX_CHUNK_ROWS, n));
  const formats = [
    ["JSON array", "application/json", toJsonArray],
    ["NDJSON", "application/x-ndjson", toNdjson],
    ["Arrow IPC stream", "application/vnd.apache.arrow.stream", toArrowIpc],
  ];

  const pgCopy = pg
    ? await step(`PostgreSQL COPY ${n} rows`, async () => {
        await pg.query(PG_ITEMS_DDL("bulk_items"));
        const csv = toCsv(items);
        const file = await pgServer.writeServerFile("bulk_items.csv", csv);
        const t0 = process.hrtime.bigint();
        await pg.query(`COPY bulk_items FROM '${file}' (FORMAT csv)`);
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const count = Number((await pg.query("SELECT count(*) AS c FROM bulk_items")).rows[0].c);
        if (count !== n) throw new Error(`COPY loaded ${count} rows, expected ${n}`);
        return { seconds, bytes: Buffer.byteLength(csv), requests: 1 };
      })
    : { ok: false, error: new Error("PostgreSQL did not start") };
  const pgRate = pgCopy.ok ? n / pgCopy.value.seconds : Number.NaN;

  const rows = [];
  for (const [name, contentType, encode] of formats) {
    const r = await step(`bulk insert ${n} rows as ${name}`, async () => {
      const project = await createProject(server, `bench-bulk-${name.split(" ")[0].toLowerCase()}`);
      await putSchema(project, ITEMS_SCHEMA);
      const bodies = parts.map(([start, end]) => encode(items, start, end));
      const bytes = bodies.reduce(
        (s, b) => s + (typeof b === "string" ? Buffer.byteLength(b) : b.byteLength),
        0,
      );
      const headers = {
        ...keyHeaders(project.serviceKey),
        "content-type": contentType,
        prefer: "return=minimal",
      };
      const t0 = process.hrtime.bigint();
      for (const [i, body] of bodies.entries()) {
        const res = await request(`${project.url}/rest/v1/items`, { method: "POST", headers, body });
        expectStatus(res, [200, 201, 204], `POST ${name} chunk ${i + 1}/${bodies.length}`);
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const count = await countRows(project, "items");
      if (count !== n) throw new Error(`inserted ${n} rows but count=exact says ${count}`);
      return { seconds, bytes, requests: bodies.length };
    });
    if (r.ok && pgCopy.ok) {
      ctx.figures.push(
        figure({
          shape: `bulk insert of ${int(n)} rows as ${name}`,
          unit: "rows/s",
          hearth: n / r.value.seconds,
          peer: pgRate,
          peerName: "PostgreSQL COPY FROM a CSV file",
          peerKind: "peer",
          lowerIsBetter: false,
        }),
      );
    }
    rows.push([
      `Hearth, ${name}`,
      r.ok ? r.value.requests : "–",
      r.ok ? mb(r.value.bytes) : "–",
      r.ok ? r.value.seconds.toFixed(2) : errorCell(r.error),
      r.ok ? int(n / r.value.seconds) : "–",
      r.ok ? ratio(n / r.value.seconds, pgRate) : "–",
    ]);
  }
  rows.push([
    "PostgreSQL `COPY FROM` a CSV file",
    pgCopy.ok ? 1 : "–",
    pgCopy.ok ? mb(pgCopy.value.bytes) : "–",
    pgCopy.ok ? pgCopy.value.seconds.toFixed(2) : errorCell(pgCopy.error),
    pgCopy.ok ? int(pgRate) : "–",
    pgCopy.ok ? "1.00×" : "–",
  ]);
  return [
    `## Bulk insert of ${int(n)} rows`,
    "",
    `Into an empty \`items\` table (primary key only), in requests of at most ${int(MAX_CHUNK_ROWS)} rows with \`Prefer: return=minimal\`. Bodies are encoded before the clock starts; the time runs from the first request to the last answer. Every run is checked with \`count=exact\` afterwards. PostgreSQL: server-side \`COPY ... FROM '<file>' (FORMAT csv)\` of the same rows (fsync on, default settings).`,
    "",
    table(["Path", "requests", "body MB", "seconds", "rows/s", "÷ PostgreSQL COPY"], rows),
    "",
  ];
}
