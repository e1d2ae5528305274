/**
 * The storage engine (issue 3) under `npm start` (wrangler dev, local workerd):
 * 1. idle cost card: N small projects frozen; DO storage, R2 bytes, D1 catalog bytes and
 *    workerd RSS per frozen project, read from the state dir and /proc (not through the API:
 *    a stats call would wake the project) — bench/lib/storage-idle.mjs;
 * 2. bytes at rest after a flush (R2) vs PostgreSQL's `pg_total_relation_size` vs raw CSV;
 * 3. scans over flushed rows through the REST API vs DuckDB reading the same segment files
 *    (taken from the local R2 bucket) in the same run, and point reads warm vs cold (frozen)
 *    — bench/lib/storage-scan.mjs.
 * A step that fails is reported in the results with its error; the others still run.
 */
import { spawnSync } from "node:child_process";
import { REPO_ROOT } from "../scripts/server-process.mjs";
import { figure } from "./lib/figures.mjs";
import {
  countRows,
  createProject,
  expectStatus,
  keyHeaders,
  putSchema,
  request,
  startBenchHearth,
} from "./lib/hearth.mjs";
import { r2Objects } from "./lib/local-state.mjs";
import { errorBlock, errorCell, table } from "./lib/markdown.mjs";
import { startPostgres } from "./lib/postgres.mjs";
import { int, mb, ratio } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";
import { csv, datasets, ndjson, schemaOf } from "./lib/storage-data.mjs";
import { adminCall, elapsed, HEARTH_ENV, withServerContext } from "./lib/storage-hearth.mjs";
import { idleSection } from "./lib/storage-idle.mjs";
import { scanHearth, scanSection } from "./lib/storage-scan.mjs";

export const title = "Storage engine: idle cost, bytes at rest, cold scans";

/** The commit the servers run, and the server files changed on top of it (the snapshot has them). */
function codeVersion() {
  const git = (...args) => spawnSync("git", args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 10_000 });
  const head = git("rev-parse", "--short", "HEAD");
  if (head.status !== 0) return "unknown (git failed)";
  const dirty = git("status", "--porcelain", "--", "durable-objects", "workers", "shared", "migrations")
    .stdout.split("\n")
    .filter(Boolean).length;
  return `commit ${head.stdout.trim()}${dirty ? ` plus uncommitted changes in ${dirty} server file(s)` : ""}`;
}

const CHUNK_ROWS = 50_000;

export default async function run({ quick, log }) {
  const cfg = quick
    ? {
        idle: 50,
        sizes: [100_000],
        scanRows: 100_000,
        scanCount: 30,
        warmup: 5,
        allCount: 5,
        points: 200,
        coldWakes: 3,
      }
    : {
        idle: 1_000,
        sizes: [100_000, 1_000_000],
        scanRows: 1_000_000,
        scanCount: 50,
        warmup: 10,
        allCount: 5,
        points: 200,
        coldWakes: 5,
      };
  const { step, failedSteps } = stepRunner(log);
  const figures = [];
  const out = [
    `# ${title}${quick ? " (quick)" : ""}`,
    "",
    "Hearth runs under `npm start` (wrangler dev, local workerd, throwaway state dir) with `HEARTH_FREEZE_AFTER_SECONDS=0` and flush thresholds out of reach, so rows are flushed and projects frozen only by `POST /admin/v1/flush` and `/freeze`; segments have the default 262,144 rows. Code: " +
      codeVersion() +
      " (each server runs from a snapshot of the checkout taken when it starts). Latencies are client-side wall time over loopback. Sizes in the idle card are read from the state dir (SQLite files copied and opened elsewhere) and /proc, never through the API.",
    "",
  ];
  out.push(...(await idleSection({ cfg, step })));

  const [hearth, pgServer] = await Promise.all([
    step("start Hearth (data)", () => startBenchHearth({ env: HEARTH_ENV })),
    step("start PostgreSQL", () => startPostgres({ log })),
  ]);
  try {
    if (!hearth.ok) {
      out.push(errorBlock("Starting Hearth", hearth.error));
      return { markdown: out.join("\n"), failedSteps };
    }
    const pg = pgServer.ok ? await pgServer.value.client() : null;
    const server = hearth.value;
    const ctx = {
      cfg,
      step,
      // Hearth's steps: a failure says whether the server is still up and what it printed.
      hearthStep: (name, fn) => step(name, () => withServerContext(server, fn)),
      log,
      server,
      pg,
      pgServer: pgServer.ok ? pgServer.value : null,
      figures,
    };
    try {
      const bytes = await bytesSection(ctx, pgServer);
      out.push(...bytes.out);
      out.push(...(await scanSection(ctx, bytes.scanProject)));
    } finally {
      await pg?.end();
    }
  } finally {
    if (hearth.ok) await hearth.value.stop();
    if (pgServer.ok) await pgServer.value.stop();
  }
  return { markdown: out.join("\n"), failedSteps, figures: figures.filter(Boolean) };
}

/** Loads a dataset into a new project as NDJSON; resolves `{ project, seconds }`. */
async function loadHearth(server, ds, n) {
  const project = await createProject(server, `bytes-${ds.key}-${n}`);
  await putSchema(project, schemaOf(ds));
  const headers = {
    ...keyHeaders(project.serviceKey),
    "content-type": "application/x-ndjson",
    prefer: "return=minimal",
  };
  let ms = 0; // requests only: each body is encoded before its clock starts
  for (const t of ds.tables) {
    for (let start = 0; start < t.n; start += CHUNK_ROWS) {
      const end = Math.min(t.n, start + CHUNK_ROWS);
      const body = ndjson(t, start, end);
      const t0 = process.hrtime.bigint();
      const res = await request(`${project.url}/rest/v1/${t.name}`, { method: "POST", headers, body });
      ms += elapsed(t0);
      expectStatus(res, [200, 201, 204], `POST ${t.name} rows ${start}..${end}`);
    }
  }
  const seconds = ms / 1000;
  for (const t of ds.tables) {
    const count = await countRows(project, t.name);
    if (count !== t.n) throw new Error(`${t.name}: loaded ${t.n} rows, count=exact says ${count}`);
  }
  return { project, seconds };
}

async function loadPostgres(pg, pgServer, ds, n) {
  let csvBytes = 0;
  const names = ds.tables.map((t) => `${t.name}_${n}`);
  for (const t of ds.tables) {
    const name = `${t.name}_${n}`;
    await pg.query(
      t.pgDdl
        .replace(`TABLE ${t.name} `, `TABLE ${name} `)
        .replace(/REFERENCES (\w+)\(/, `REFERENCES $1_${n}(`),
    );
    const text = csv(t);
    csvBytes += Buffer.byteLength(text);
    const file = await pgServer.writeServerFile(`${name}.csv`, text);
    await pg.query(`COPY ${name} FROM '${file}' (FORMAT csv)`);
    await pg.query(`VACUUM (ANALYZE) ${name}`);
  }
  const sizes = await pg.query(
    "SELECT sum(pg_total_relation_size(c)) AS total, sum(pg_relation_size(c)) AS heap FROM unnest($1::regclass[]) AS c",
    [names],
  );
  return { csvBytes, total: Number(sizes.rows[0].total), heap: Number(sizes.rows[0].heap) };
}

async function bytesSection(ctx, pgServer) {
  const { cfg, step, hearthStep, server, pg } = ctx;
  const out = ["## 2. Bytes at rest", ""];
  const rows = [];
  const failures = [];
  let scanProject = null;
  for (const n of cfg.sizes) {
    for (const ds of datasets(n)) {
      const label = `${ds.name}, ${int(n)}`;
      const total = ds.tables.reduce((s, t) => s + t.n, 0);
      const hearth = await hearthStep(`bytes: ${label} into Hearth, flushed`, async () => {
        const { project, seconds } = await loadHearth(server, ds, n);
        const before = await adminCall(project, "stats", "stats before flush");
        let hot = null;
        if (ds.key === "events" && n === cfg.scanRows) hot = await scanHearth(ctx, project, n, "hot");
        const t0 = process.hrtime.bigint();
        const flushed = await adminCall(project, "flush");
        const flushSeconds = elapsed(t0) / 1000;
        const after = await adminCall(project, "stats", "stats after flush");
        if (after.coldRows !== total || after.hotRows !== 0) {
          throw new Error(
            `after flush: ${after.coldRows} cold and ${after.hotRows} hot rows, expected ${total} cold`,
          );
        }
        const objects = r2Objects(server.stateDir, `projects/${project.id}/`);
        const r2Total = objects.reduce((s, o) => s + o.size, 0);
        if (ds.key === "events" && n === cfg.scanRows) scanProject = { project, n, hot, stats: after };
        return { seconds, before, flushed, flushSeconds, after, r2Total, objects: objects.length };
      });
      const peer = pg
        ? await step(`bytes: ${label} into PostgreSQL`, () => loadPostgres(pg, ctx.pgServer, ds, n))
        : { ok: false, error: pgServer.error ?? new Error("PostgreSQL did not start") };
      const h = hearth.ok ? hearth.value : null;
      const p = peer.ok ? peer.value : null;
      if (!hearth.ok) failures.push(errorBlock(`Hearth, ${label}`, hearth.error), "");
      if (!peer.ok && pg) failures.push(errorBlock(`PostgreSQL, ${label}`, peer.error), "");
      if (h && p) {
        ctx.figures.push(
          figure({
            shape: `bytes at rest after a flush: ${label} rows`,
            unit: "MB",
            hearth: h.r2Total / 1e6,
            peer: p.total / 1e6,
            peerName: "PostgreSQL pg_total_relation_size (tables and indexes)",
            peerKind: "peer",
            lowerIsBetter: true,
            note: "Hearth: every R2 object of the project (segments, bloom filters, manifest)",
          }),
        );
      }
      rows.push([
        label,
        int(total),
        p ? mb(p.csvBytes) : "–",
        p ? `${mb(p.total)} (heap ${mb(p.heap)})` : errorCell(peer.error),
        h ? mb(h.after.r2Bytes) : errorCell(hearth.error),
        h ? `${mb(h.r2Total)} (${h.objects} objects)` : "–",
        h && p ? ratio(h.r2Total, p.total) : "–",
        h && p ? ratio(h.r2Total, p.csvBytes) : "–",
        h
          ? `${mb(h.before.doStorageBytes)} → ${mb(h.after.doStorageBytes)} (${int(h.after.wal?.entries)} WAL entries kept)`
          : "–",
        h ? int(total / h.seconds) : "–",
        h ? `${h.flushSeconds.toFixed(1)} s, ${h.flushed.segments} segments` : "–",
      ]);
    }
  }
  out.push(
    "Each dataset is its own project, loaded as NDJSON in requests of 50,000 rows (the load rate counts request time only), then flushed once by `POST /admin/v1/flush` (its wall time). `users + events` holds n events and n/100 users (`events.user_id` refers to `users.id`). The same rows go into PostgreSQL with `COPY` (primary keys, the foreign key, `VACUUM (ANALYZE)` after), and the CSV column is the size of those COPY files (no header). Hearth's R2 total is read from the local bucket: every object under `projects/<id>/`.",
    "",
    table(
      [
        "Dataset, n",
        "rows",
        "CSV MB",
        "PostgreSQL total MB",
        "R2 segments MB (`stats.r2Bytes`)",
        "R2 total MB",
        "R2 ÷ PostgreSQL",
        "R2 ÷ CSV",
        "DO SQLite MB before → after flush",
        "load rows/s (NDJSON)",
        "flush",
      ],
      rows,
    ),
    "",
    ...failures,
  );
  return { out, scanProject };
}
