/**
 * Section 3 of the storage bench: queries over flushed rows through the REST API vs DuckDB
 * over the same segment files (taken from the local R2 bucket), and point reads by primary
 * key, warm vs the first one after a freeze. Each query is defined once, for both sides.
 */
import { prng } from "./data.mjs";
import { duckdbVersions, runDuckdbScan } from "./duckdb.mjs";
import { latencyFigure } from "./figures.mjs";
import { expectStatus, keyHeaders, request } from "./hearth.mjs";
import { r2Objects, r2Read } from "./local-state.mjs";
import { errorBlock, errorCell, table } from "./markdown.mjs";
import { int, mb, ms, ratio, summarize, timeSequential } from "./stats.mjs";
import { eventsAt } from "./storage-data.mjs";
import { adminCall, elapsed, waitEvicted } from "./storage-hearth.mjs";

const SCAN_WIDTH = 1_000;
const AGG_SQL = "SELECT kind, sum(amount) AS sum, count(*) AS count FROM events";

const aggRows = (rows) =>
  rows.map((r) => ({ kind: r.kind, sum: r.sum, count: r.count })).sort((a, b) => (a.kind < b.kind ? -1 : 1));
const aggTuples = (d) => aggRows(d.first.map(([kind, sum, count]) => ({ kind, sum, count })));
/** Same kinds and counts, sums within 1e-9 relative (float sums in another order). */
const sameAgg = (a, b) =>
  a.length === b.length &&
  a.every(
    (r, i) =>
      r.kind === b[i].kind &&
      r.count === b[i].count &&
      Math.abs(r.sum - b[i].sum) <= 1e-9 * Math.max(1, Math.abs(b[i].sum)),
  );
const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The queries over `events` (n rows): `path(i)` for Hearth, `sql` + `params[i]` for DuckDB
 * (`at` is quoted: a keyword in DuckDB's grammar), and how each side's first answer is
 * reduced to something comparable.
 */
function eventQueries(n, cfg) {
  const rand = prng(5);
  const windows = Array.from({ length: cfg.scanCount + cfg.warmup }, () => {
    const lo = 1 + Math.floor(rand() * (n - SCAN_WIDTH));
    return [lo, lo + SCAN_WIDTH];
  });
  const ids = Array.from({ length: cfg.points + 20 }, () => 1 + Math.floor(rand() * n));
  const since = eventsAt(Math.floor(n * 0.9));
  const at = (list, i) => list[i % list.length];
  return [
    {
      key: "agg",
      name: "aggregate `select=kind,amount.sum(),count()&at=gte.<t>` (last 10% of rows)",
      path: () => `events?select=kind,amount.sum(),count()&at=gte.${encodeURIComponent(since)}`,
      sql: `${AGG_SQL} WHERE "at" >= CAST(? AS TIMESTAMPTZ) GROUP BY kind ORDER BY kind`,
      params: [[since]],
      count: cfg.scanCount,
      warmup: cfg.warmup,
      answer: aggRows,
      duckAnswer: aggTuples,
      same: sameAgg,
    },
    {
      key: "aggAll",
      name: "aggregate of the whole table `select=kind,amount.sum(),count()`",
      path: () => "events?select=kind,amount.sum(),count()",
      sql: `${AGG_SQL} GROUP BY kind ORDER BY kind`,
      params: [[]],
      count: cfg.allCount,
      warmup: 1,
      answer: aggRows,
      duckAnswer: aggTuples,
      same: sameAgg,
    },
    {
      key: "range",
      name: `range scan \`id=gte.X&id=lt.X+${SCAN_WIDTH}&order=id&limit=${SCAN_WIDTH}\``,
      path: (i) => {
        const [lo, hi] = at(windows, i);
        return `events?id=gte.${lo}&id=lt.${hi}&order=id&limit=${SCAN_WIDTH}`;
      },
      sql: `SELECT id, user_id, kind, amount, epoch_ms("at") FROM events WHERE id >= ? AND id < ? ORDER BY id LIMIT ${SCAN_WIDTH}`,
      params: windows,
      count: cfg.scanCount,
      warmup: cfg.warmup,
      answer: (rows) => ({ count: rows.length, first: rows[0]?.id, last: rows.at(-1)?.id }),
      duckAnswer: (d) => ({ count: d.firstCount, first: d.first[0]?.[0], last: d.last?.[0] }),
      expected: { count: SCAN_WIDTH, first: windows[0][0], last: windows[0][1] - 1 },
      same: sameJson,
    },
    {
      key: "point",
      name: "point read `id=eq.N`",
      path: (i) => `events?id=eq.${at(ids, i)}`,
      sql: `SELECT id, user_id, kind, amount, epoch_ms("at") FROM events WHERE id = ?`,
      params: ids.map((id) => [id]),
      count: cfg.points,
      warmup: 20,
      answer: (rows) => ({ count: rows.length, id: rows[0]?.id }),
      duckAnswer: (d) => ({ count: d.firstCount, id: d.first[0]?.[0] }),
      expected: { count: 1, id: ids[0] },
      same: sameJson,
    },
  ];
}

/**
 * Runs every query through the REST API (anon key): the first request timed alone, then
 * `warmup` + `count` timed ones. Resolves `{ [key]: step result of {answer, firstMs, lat} }`.
 */
export async function scanHearth({ cfg, hearthStep }, project, n, mode) {
  const headers = keyHeaders(project.anonKey);
  const results = {};
  for (const q of eventQueries(n, cfg)) {
    results[q.key] = await hearthStep(`${q.key} on Hearth, ${mode} (${n})`, async () => {
      const get = async (i) => {
        const res = await request(`${project.url}/rest/v1/${q.path(i)}`, { headers });
        return JSON.parse(expectStatus(res, 200, `${q.name} (${mode})`).body);
      };
      const t0 = process.hrtime.bigint();
      const answer = q.answer(await get(0));
      const firstMs = elapsed(t0);
      if (q.expected && !q.same(answer, q.expected)) {
        throw new Error(`${q.key}: expected ${JSON.stringify(q.expected)}, got ${JSON.stringify(answer)}`);
      }
      const lat = summarize(await timeSequential(get, { count: q.count, warmup: q.warmup }));
      return { answer, firstMs, lat };
    });
  }
  return results;
}

/** The segment files of `events` in the local bucket, as the current manifest lists them. */
function segmentFiles(stateDir, project, manifestVersion, n) {
  const manifestKey = `projects/${project.id}/manifests/${manifestVersion}.json`;
  const refs = r2Read(stateDir, manifestKey, { json: true }).tables.events ?? [];
  if (refs.some((r) => r.deleted.length > 0)) {
    throw new Error("events segments have tombstones: DuckDB would see deleted rows");
  }
  if (refs.reduce((s, r) => s + r.rows, 0) !== n) {
    throw new Error(`manifest ${manifestKey} lists ${refs.length} segments without ${n} rows`);
  }
  const byKey = new Map(r2Objects(stateDir, `projects/${project.id}/tables/events/`).map((o) => [o.key, o]));
  return refs.map((r) => {
    const o = byKey.get(r.key);
    if (!o) throw new Error(`segment ${r.key} is not in the local bucket`);
    return o;
  });
}

export async function scanSection(ctx, scan) {
  const { cfg, step, server } = ctx;
  const out = [`## 3. Scans over ${int(cfg.scanRows)} flushed rows`, ""];
  if (!scan) return [...out, "Not run: loading or flushing the events dataset failed (see section 2).", ""];
  const { project, n } = scan;
  const queries = eventQueries(n, cfg);
  const files = await step("scan: segment files of `events` from the local R2 bucket", () =>
    segmentFiles(server.stateDir, project, scan.stats.manifestVersion, n),
  );
  const cold = await scanHearth(ctx, project, n, "cold tier");
  const peer = files.ok
    ? await step("scan: DuckDB over the same segment files", async () => {
        const versions = duckdbVersions();
        const res = await runDuckdbScan({
          files: files.value.map((f) => f.file),
          table: "events",
          queries: queries.map(({ key, sql, params, count, warmup }) => ({
            key,
            sql,
            params,
            count,
            warmup,
          })),
        });
        if (res.rows !== n) throw new Error(`DuckDB read ${res.rows} rows from the segments, expected ${n}`);
        return { ...res, versions };
      })
    : files;
  const rows = [];
  const disagree = [];
  const failures = [];
  for (const q of queries) {
    const hot = scan.hot?.[q.key];
    const c = cold[q.key];
    const d = peer.ok ? peer.value.queries[q.key] : null;
    const dLat = d ? summarize(d.samples) : null;
    for (const [side, r] of [
      ["hot", hot],
      ["flushed", c],
    ]) {
      if (r && !r.ok) failures.push(errorBlock(`${q.key} on Hearth, ${side}`, r.error), "");
    }
    if (c.ok && d && !q.same(c.value.answer, q.duckAnswer(d))) {
      disagree.push(
        `${q.key}: Hearth ${JSON.stringify(c.value.answer).slice(0, 300)} ≠ DuckDB ${JSON.stringify(q.duckAnswer(d)).slice(0, 300)}`,
      );
    }
    ctx.figures?.push(
      latencyFigure(
        {
          shape: `${q.name} over ${int(n)} flushed rows`,
          peerName: "DuckDB over the same segment files",
          peerKind: "peer",
          note: "Hearth over HTTP on loopback; DuckDB in process, all cores",
        },
        c.ok ? c.value.lat : null,
        dLat,
      ),
    );
    rows.push([
      q.name,
      hot?.ok ? ms(hot.value.lat.p50) : hot ? errorCell(hot.error) : "–",
      c.ok ? ms(c.value.firstMs) : errorCell(c.error),
      c.ok ? `${ms(c.value.lat.p50)} / ${ms(c.value.lat.p99)} (${c.value.lat.n})` : "–",
      d ? ms(d.firstMs) : errorCell(peer.error),
      d ? `${ms(dLat.p50)} / ${ms(dLat.p99)}` : "–",
      c.ok && d ? ratio(c.value.lat.p50, dLat.p50) : "–",
      hot?.ok && c.ok ? ratio(c.value.lat.p50, hot.value.lat.p50) : "–",
    ]);
  }
  if (disagree.length > 0) {
    await step("scan: Hearth and DuckDB answers agree", () => {
      throw new Error(disagree.join("; "));
    });
  }
  const d = peer.ok ? peer.value : null;
  out.push(
    `The \`events\` table of section 2 (${int(n)} rows in ${files.ok ? files.value.length : "?"} segments, ${files.ok ? mb(files.value.reduce((s, f) => s + f.size, 0)) : "?"} MB). Hearth: \`GET /rest/v1/events?...\` with the anon key, sequential requests (count in brackets) after warm-up ones; "hot" ran on the same project before its flush; "first" is the first request of that query after the flush (segments that earlier queries loaded stay cached). DuckDB${d ? ` ${d.versions.duckdb} (pyarrow ${d.versions.pyarrow}, Python ${d.versions.python})` : ""} reads the segment files found in the local R2 bucket (blobs named by miniflare's object index): pyarrow decodes them${d ? ` (${ms(d.loadMs)} ms for all, then ${ms(d.connectMs)} ms to connect and register)` : ""}, DuckDB queries the Arrow table in process on all cores, answers fetched as Python tuples. Same parameters on both sides; ${disagree.length === 0 && d ? "the first answers of every query agree (aggregates: kinds, counts, sums)." : `answers compared: ${disagree.length ? disagree.join("; ") : "no DuckDB answers"}.`}`,
    "",
    table(
      [
        "Query",
        "Hearth hot p50 ms",
        "Hearth flushed, first ms",
        "Hearth flushed p50 / p99 ms (n)",
        "DuckDB first ms",
        "DuckDB p50 / p99 ms",
        "Hearth ÷ DuckDB (p50)",
        "flushed ÷ hot (p50)",
      ],
      rows,
    ),
    "",
    ...failures,
  );
  out.push(...(await pointSection(ctx, scan, cold.point)));
  return out;
}

async function pointSection({ cfg, hearthStep, server }, { project, n, hot }, warm) {
  const rand = prng(13);
  const headers = keyHeaders(project.anonKey);
  const coldRead = async (evict) => {
    await adminCall(project, "freeze");
    if (evict) await waitEvicted(server.stateDir);
    const id = 1 + Math.floor(rand() * n);
    const t0 = process.hrtime.bigint();
    const res = await request(`${project.url}/rest/v1/events?id=eq.${id}`, { headers });
    const took = elapsed(t0);
    expectStatus(res, 200, "first read after freeze");
    if (JSON.parse(res.body)[0]?.id !== id) throw new Error(`id=eq.${id} returned ${res.body.slice(0, 200)}`);
    return took;
  };
  const wakes = async (evict) => {
    const samples = [];
    for (let i = 0; i < cfg.coldWakes; i++) samples.push(await coldRead(evict));
    return summarize(samples);
  };
  const kept = await hearthStep("point: first read after freeze (object still in memory)", () =>
    wakes(false),
  );
  const evicted = await hearthStep("point: first read after freeze and eviction", () => wakes(true));
  const warmP50 = warm.ok ? warm.value.lat.p50 : Number.NaN;
  const row = (name, r) => [
    name,
    r.ok ? r.value.n : "–",
    r.ok ? ms(r.value.p50) : errorCell(r.error),
    r.ok ? `${ms(r.value.min)} / ${ms(r.value.max)}` : "–",
    r.ok ? ratio(r.value.p50, warmP50) : "–",
  ];
  const lat = (r) => (r?.ok ? { ok: true, value: r.value.lat } : (r ?? { ok: false, error: "not run" }));
  return [
    `### Point read by primary key, ${int(n)} rows: hot, warm, cold`,
    "",
    "`GET /rest/v1/events?id=eq.N` (anon key, random N). Hot: before the flush. Warm: flushed, the project awake and its segments cached. Cold: `POST /admin/v1/freeze`, then the first read, which rebuilds the object from D1 and the manifest and loads the bloom filters and the segment that holds N; either at once (workerd still holds the object, its storage emptied) or after waiting until workerd evicted it (its database closed).",
    "",
    table(
      ["Read", "samples", "p50 ms", "min / max ms", "÷ warm p50"],
      [
        row("hot (before flush)", lat(hot?.point)),
        row("warm (flushed, cached)", lat(warm)),
        row("cold: frozen, object still in memory", kept),
        row("cold: frozen and evicted", evicted),
      ],
    ),
    "",
    ...[kept, evicted].flatMap((r) => (r.ok ? [] : [errorBlock("A cold read", r.error), ""])),
  ];
}
