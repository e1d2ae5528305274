/**
 * Vector search (issue 8; docs/vectors.md): N × 384 generated clustered float32 vectors
 * (100k; `--quick` 20k), the same vectors and queries for three engines in one run:
 * - Hearth under `npm start`: Arrow bulk insert, flush (segment + IVF-flat index in R2),
 *   `rpc/vector_search` exact (`exact: true`) and approximate, over HTTP;
 * - LanceDB (@lancedb/lancedb, a local directory): flat search (`bypassVectorIndex`) and its
 *   default IVF_PQ index, in process;
 * - hnswlib-node (HNSW, M 16, efConstruction 200, ef 64), in process.
 * Recall@10 is against a brute-force l2 top-10 computed here. Queries are sequential (one
 * client): queries/s = 1000 / mean latency. Hearth's figures include HTTP and JSON.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  Field,
  FixedSizeList,
  Float32,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
} from "apache-arrow";
import { onCleanup } from "./lib/cleanup.mjs";
import { prng } from "./lib/data.mjs";
import { latencyFigure } from "./lib/figures.mjs";
import {
  createProject,
  expectStatus,
  keyHeaders,
  putSchema,
  request,
  startBenchHearth,
} from "./lib/hearth.mjs";
import { r2Objects } from "./lib/local-state.mjs";
import { errorBlock, table } from "./lib/markdown.mjs";
import { int, mb, ms, summarize } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";
import { HEARTH_ENV } from "./lib/storage-hearth.mjs";

export const title = "Vector search: Hearth exact and IVF vs LanceDB and hnswlib";

const DIMS = 384;
const K = 10;

/** n vectors around 200 random centres with Gaussian noise (σ 1.2 per dimension), and queries like them. */
function dataset(n, queries) {
  const random = prng(384);
  const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
  const clusters = 200;
  const centres = Float32Array.from({ length: clusters * DIMS }, gauss);
  const point = (out, at) => {
    const c = Math.floor(random() * clusters);
    for (let i = 0; i < DIMS; i++) out[at + i] = centres[c * DIMS + i] + 1.2 * gauss();
  };
  const matrix = new Float32Array(n * DIMS);
  for (let r = 0; r < n; r++) point(matrix, r * DIMS);
  const qs = Array.from({ length: queries }, () => {
    const q = new Float32Array(DIMS);
    point(q, 0);
    return q;
  });
  return { matrix, queries: qs };
}

/** Brute-force l2 top-k row numbers (the ground truth). */
function truth(matrix, n, q) {
  const best = [];
  for (let r = 0; r < n; r++) {
    let s = 0;
    const o = r * DIMS;
    for (let i = 0; i < DIMS; i++) {
      const d = q[i] - matrix[o + i];
      s += d * d;
    }
    if (best.length === K && s >= best[K - 1].d) continue;
    let at = best.length;
    while (at > 0 && best[at - 1].d > s) at--;
    best.splice(at, 0, { r, d: s });
    if (best.length > K) best.pop();
  }
  return best.map((b) => b.r);
}

const recallOf = (got, want) => got.filter((x) => want.includes(x)).length / want.length;
const elapsed = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Runs `search(q)` → row numbers for every query, timed; `warmup` untimed first. */
async function measure(queries, truths, search, warmup = 3) {
  for (let i = 0; i < Math.min(warmup, queries.length); i++) await search(queries[i]);
  const times = [];
  let recall = 0;
  for (const [i, q] of queries.entries()) {
    const t0 = process.hrtime.bigint();
    const got = await search(q);
    times.push(elapsed(t0));
    recall += recallOf(got, truths[i]);
  }
  const s = summarize(times);
  return { ...s, qps: 1000 / s.mean, recall: recall / queries.length };
}

async function dirBytes(dir) {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? await dirBytes(p) : (await stat(p)).size;
  }
  return total;
}

/** Rows [from, to) as one Arrow IPC stream: id Int32, emb FixedSizeList<Float32>[DIMS]. */
function arrowChunk(matrix, from, to) {
  const n = to - from;
  const list = new FixedSizeList(DIMS, new Field("item", new Float32(), false));
  const schema = new Schema([new Field("id", new Int32(), false), new Field("emb", list, false)]);
  const children = [
    makeData({ type: new Int32(), length: n, data: Int32Array.from({ length: n }, (_, i) => from + i) }),
    makeData({
      type: list,
      length: n,
      nullCount: 0,
      child: makeData({ type: new Float32(), length: n * DIMS, data: matrix.slice(from * DIMS, to * DIMS) }),
    }),
  ];
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
  return tableToIPC(new Table([batch]), "stream");
}

async function hearthSection(step, cfg, data, truths, log) {
  const out = { rows: [], notes: [] };
  const server = await step("start Hearth", () =>
    startBenchHearth({
      env: HEARTH_ENV,
      // workerd's own complaints (memory, restarts) go to the log: they explain a failed step
      onOutput: (text) => {
        if (/exceeded|memory|restart|uncaught|fatal/i.test(text))
          log(`    workerd: ${text.trim().slice(0, 400)}`);
      },
    }),
  );
  if (!server.ok) return { ...out, error: server.error };
  try {
    const hearth = server.value;
    const project = await createProject(hearth, "vectors");
    await putSchema(project, {
      tables: {
        items: {
          columns: {
            id: { type: "integer", primaryKey: true },
            emb: { type: "vector", dimensions: DIMS },
          },
        },
      },
    });
    const headers = keyHeaders(project.serviceKey);
    const t0 = process.hrtime.bigint();
    for (let from = 0; from < cfg.n; from += 10_000) {
      const body = arrowChunk(data.matrix, from, Math.min(cfg.n, from + 10_000));
      const res = await request(`${project.url}/rest/v1/items`, {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/vnd.apache.arrow.stream",
          prefer: "return=minimal",
        },
        body,
      });
      expectStatus(res, 201, "bulk insert");
    }
    const insertMs = elapsed(t0);
    log(`    inserted ${cfg.n} rows in ${ms(insertMs)} ms`);
    const t1 = process.hrtime.bigint();
    expectStatus(await request(`${project.url}/admin/v1/flush`, { method: "POST", headers }), 200, "flush");
    const flushMs = elapsed(t1);
    const objects = r2Objects(hearth.stateDir, `projects/${project.id}/tables/`);
    const indexes = objects.filter((o) => o.key.includes(".ivf-"));
    const indexBytes = indexes.reduce((s, o) => s + o.size, 0);
    // the index part of each object (before its list-ordered vectors), from its header
    const indexPartBytes = indexes.reduce((s, o) => {
      const head = readFileSync(o.file).subarray(0, 20);
      const [dims, lists, rows] = [8, 12, 16].map((at) => head.readUInt32LE(at));
      return s + 20 + 4 * (lists * dims + lists + 1 + rows + lists);
    }, 0);
    const segmentBytes = objects.filter((o) => o.key.endsWith(".arrow")).reduce((s, o) => s + o.size, 0);
    const search = (exact) => async (q) => {
      const res = await request(`${project.url}/rest/v1/rpc/vector_search`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({
          table: "items",
          column: "emb",
          vector: Array.from(q),
          k: K,
          metric: "l2",
          select: "id",
          exact,
        }),
      });
      expectStatus(res, 200, "vector_search");
      const how = res.headers["x-hearth-vector-search"];
      if (exact ? how !== "exact" : !String(how).startsWith("approximate"))
        throw new Error(`search was ${how}`);
      return JSON.parse(res.body).map((r) => r.id);
    };
    // The first request after this long flush made wrangler dev restart workerd (503 "Your
    // worker restarted mid-request") in every 100k run, whichever search came first, and a GET
    // there once hung for 120 s (docs/gotchas.md, cold tier). One search is sent first and
    // retried once after a 503; the answer of the retry is kept in the notes.
    const t2 = process.hrtime.bigint();
    const first = async () =>
      request(`${project.url}/rest/v1/rpc/vector_search`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({
          table: "items",
          column: "emb",
          vector: Array.from(data.queries[0]),
          k: K,
          select: "id",
        }),
      });
    let firstRes = await first();
    const restarted = firstRes.status === 503;
    if (restarted) firstRes = await first();
    expectStatus(firstRes, 200, "first search after the flush");
    out.notes.push(
      `Hearth: the first search after the flush${restarted ? ' got 503 from wrangler dev ("Your worker restarted mid-request", with no output from workerd: docs/gotchas.md); its retry' : ""} took ${ms(elapsed(t2))} ms in all (reads the segments without their vectors, the index parts and the probed lists from R2).`,
    );
    const approx = await step("Hearth IVF", () => measure(data.queries, truths, search(false)));
    const exact = await step("Hearth exact", () =>
      measure(data.queries.slice(0, cfg.exactQueries), truths, search(true)),
    );
    out.rows.push(
      ["Hearth exact (`exact: true`)", exact, null, null],
      ["Hearth IVF-flat (default probes)", approx, flushMs, indexBytes],
    );
    out.notes.push(
      `Hearth: bulk insert of ${int(cfg.n)} rows (Arrow FixedSizeList, 10k per request) ${ms(insertMs)} ms; the flush (segment ${mb(segmentBytes)} MB + index, in workerd) ${ms(flushMs)} ms — its index build time column is the whole flush.`,
      `Hearth: the index objects (${mb(indexBytes)} MB) hold a copy of the vectors in list order (4 × ${DIMS} bytes per row, read by ranged reads of the probed lists); the index part proper (centroids, list offsets, row numbers, spreads) is ${mb(indexPartBytes)} MB.`,
    );
  } finally {
    await server.value.stop();
  }
  return out;
}

async function lanceSection(step, cfg, data, truths) {
  const out = { rows: [], notes: [] };
  const lancedb = await import("@lancedb/lancedb");
  const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-lance-"));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const db = await lancedb.connect(dir);
  const rows = Array.from({ length: cfg.n }, (_, i) => ({
    id: i,
    vector: Array.from(data.matrix.subarray(i * DIMS, (i + 1) * DIMS)),
  }));
  const tbl = await db.createTable("items", rows, { mode: "overwrite" });
  const search = (flat) => async (q) => {
    let query = tbl.search(Array.from(q)).distanceType("l2").limit(K).select(["id", "_distance"]);
    if (flat) query = query.bypassVectorIndex();
    return (await query.toArray()).map((r) => r.id);
  };
  const flat = await step("LanceDB flat", () =>
    measure(data.queries.slice(0, cfg.exactQueries), truths, search(true)),
  );
  const before = await dirBytes(dir);
  const t0 = process.hrtime.bigint();
  await tbl.createIndex("vector", { config: lancedb.Index.ivfPq({ distanceType: "l2" }) });
  const buildMs = elapsed(t0);
  const indexBytes = (await dirBytes(dir)) - before;
  const ivf = await step("LanceDB IVF_PQ", () => measure(data.queries, truths, search(false)));
  out.rows.push(
    ["LanceDB flat (`bypassVectorIndex`)", flat, null, null],
    ["LanceDB IVF_PQ (defaults)", ivf, buildMs, indexBytes],
  );
  return out;
}

async function hnswSection(step, cfg, data, truths) {
  const out = { rows: [], notes: [] };
  const { default: hnswlib } = await import("hnswlib-node");
  const index = new hnswlib.HierarchicalNSW("l2", DIMS);
  const t0 = process.hrtime.bigint();
  index.initIndex(cfg.n, 16, 200, 100);
  for (let i = 0; i < cfg.n; i++)
    index.addPoint(Array.from(data.matrix.subarray(i * DIMS, (i + 1) * DIMS)), i);
  const buildMs = elapsed(t0);
  const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-hnsw-"));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  index.writeIndexSync(path.join(dir, "index.bin"));
  const bytes = (await stat(path.join(dir, "index.bin"))).size;
  index.setEf(64);
  const res = await step("hnswlib", () =>
    measure(data.queries, truths, async (q) => index.searchKnn(Array.from(q), K).neighbors),
  );
  out.rows.push(["hnswlib-node HNSW (M 16, efC 200, ef 64)", res, buildMs, bytes]);
  return out;
}

export default async function run({ quick, log }) {
  const cfg = quick
    ? { n: 20_000, queries: 50, exactQueries: 20 }
    : { n: 100_000, queries: 200, exactQueries: 50 };
  const { step, failedSteps } = stepRunner(log);
  log(`  generating ${cfg.n} × ${DIMS} vectors and the ground truth...`);
  const data = dataset(cfg.n, cfg.queries);
  const truths = data.queries.map((q) => truth(data.matrix, cfg.n, q));
  const sections = [];
  for (const [name, fn] of [
    ["Hearth", hearthSection],
    ["LanceDB", lanceSection],
    ["hnswlib-node", hnswSection],
  ]) {
    const r = await step(name, () => fn(step, cfg, data, truths, log));
    sections.push(r.ok ? r.value : { rows: [], notes: [], error: r.error, name });
  }
  const rows = [];
  const notes = [];
  for (const s of sections) {
    notes.push(...s.notes);
    for (const [name, r, buildMs, bytes] of s.rows) {
      if (!r.ok) {
        rows.push([name, "failed", "–", "–", "–", "–", "–"]);
        continue;
      }
      const v = r.value;
      rows.push([
        name,
        v.qps.toFixed(1),
        ms(v.p50),
        ms(v.p99),
        v.recall.toFixed(3),
        buildMs === null ? "–" : `${(buildMs / 1000).toFixed(1)} s`,
        bytes === null ? "–" : `${mb(bytes)} MB`,
      ]);
    }
  }
  const errors = sections.filter((s) => s.error).map((s) => errorBlock(s.name ?? "A section", s.error));
  const markdown = [
    `# ${title}`,
    "",
    `${int(cfg.n)} × ${DIMS} float32 vectors (200 Gaussian clusters, σ 1.2), ${cfg.queries} queries like them (exact rows: the first ${cfg.exactQueries}), k = ${K}, l2. Recall@10 against a brute-force top-10 computed in Node. Sequential queries; queries/s = 1000 / mean latency.`,
    "",
    table(["engine", "queries/s", "p50 ms", "p99 ms", "recall@10", "index build", "index bytes"], rows),
    "",
    ...notes.map((n) => `- ${n}`),
    "- LanceDB and hnswlib run in the bench's own process (no HTTP); Hearth answers over HTTP from wrangler dev, with JSON bodies.",
    "",
    ...errors,
  ].join("\n");
  // The card (bench/run.mjs): each Hearth search path beside the peer doing the same kind of search.
  const measured = new Map(
    sections
      .flatMap((sec) => sec.rows)
      .filter(([, r]) => r.ok)
      .map(([name, r]) => [name, r.value]),
  );
  const pick = (prefix) => [...measured].find(([name]) => name.startsWith(prefix))?.[1];
  const pair = (shape, hearthName, peerName, peerLabel) => {
    const h = pick(hearthName);
    const p = pick(peerName);
    if (!h || !p) return null;
    return latencyFigure(
      {
        shape,
        peerName: peerLabel,
        note: `recall@10: Hearth ${h.recall.toFixed(3)}, peer ${p.recall.toFixed(3)}`,
      },
      h,
      p,
    );
  };
  const figures = [
    pair(
      `exact k-NN search, ${int(cfg.n)} × ${DIMS}, k = ${K}`,
      "Hearth exact",
      "LanceDB flat",
      "LanceDB flat scan, in process",
    ),
    pair(
      `approximate k-NN search, ${int(cfg.n)} × ${DIMS}, k = ${K}`,
      "Hearth IVF",
      "hnswlib-node",
      "hnswlib-node HNSW, in process",
    ),
  ].filter(Boolean);
  return { markdown, failedSteps, figures };
}
