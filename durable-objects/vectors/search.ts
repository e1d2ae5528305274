/**
 * `POST {url}/rest/v1/rpc/vector_search` (docs/vectors.md): the k nearest rows of a table
 * by a vector column, over hot ∪ flushed rows. Access is the normal read's: the request is
 * checked as `GET /table?select=…&<filter>` (buildLevel), candidates are ranked in JS, and
 * the rows returned are read back through the read path (runLevel with their keys), so a
 * row comes back only if that GET would return it. Flushed rows are ranked first (async:
 * segments, indexes and the vectors of probed lists are read as needed, one segment at a
 * time); the hot rows and the read-back then run synchronously, after checking that no flush
 * or promotion happened meanwhile (else the ranking starts again).
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import { parseQuery } from "../../shared/rest/parse-query.ts";
import { distanceTo, float32Of, METRICS, type Metric, norm, vectorToStorage } from "../../shared/vector.ts";
import { nearestLists, probeIvf } from "../../shared/vector-index.ts";
import { exactlyFiltered, prepareRead, rowFilter, tablesOf } from "../cold/cold-read.ts";
import { type ColdView, type LoadedSegment, sqlSafe } from "../cold/cold-store.ts";
import { overlaySql, type SqlExec } from "../cold/overlay.ts";
import { quoteIdent } from "../migrate.ts";
import { buildLevel, firstAlias, type Level, levelWhere, type Row, runLevel } from "../read.ts";
import type { RestContext } from "../rest-handler.ts";
import { respond } from "../rest-response.ts";
import type { ColumnInfo, SchemaIndex, TableInfo } from "../schema-index.ts";
import { SqlParams } from "../sql-where.ts";
import { loadIndexes, readLists } from "./ivf-store.ts";

export const MAX_K = 1000;
const FORBIDDEN_IN_FILTER = new Set(["select", "order", "limit", "offset", "columns", "on_conflict"]);

const SearchBodySchema = z
  .object({
    table: z.string().min(1),
    column: z.string().min(1),
    vector: z.unknown(),
    k: z.unknown().optional(),
    metric: z.string().optional(),
    filter: z.string().max(8192).optional(),
    select: z.string().max(8192).optional(),
    exact: z.boolean().optional(),
    probes: z.number().int().min(1).max(65_536).optional(),
  })
  .strict();

function invalid(message: string, hint?: string): HearthError {
  return new HearthError("HEARTH_VECTOR_INVALID", message, hint ? { hint } : {});
}

export interface SearchRequest {
  table: TableInfo;
  column: ColumnInfo;
  query: Float32Array;
  k: number;
  metric: Metric;
  level: Level;
  exact: boolean;
  probes?: number;
}

/** Body → a checked request (table, column, vector, k, metric) and the read plan it stands for. */
export function parseSearch(ctx: RestContext, body: unknown): SearchRequest {
  const parsed = SearchBodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `Invalid vector_search body: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
      { hint: 'Send {"table", "column", "vector", "k"?, "metric"?, "filter"?, "select"?, "exact"?}.' },
    );
  }
  const b = parsed.data;
  const table = ctx.schema.table(b.table);
  const column = ctx.schema.column(table, b.column);
  if (column.type !== "vector" || column.def.dimensions === undefined) {
    throw invalid(`column ${table.name}.${column.name} is a ${column.type} column, not a vector`);
  }
  const k = b.k ?? 10;
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw invalid(`k must be an integer from 1 to ${MAX_K}, got ${JSON.stringify(k)}`);
  }
  const metric = (b.metric ?? "cosine") as Metric;
  if (!METRICS.includes(metric)) {
    throw invalid(`unknown metric ${JSON.stringify(b.metric)}`, `Use one of ${METRICS.join(", ")}.`);
  }
  const query = new Float32Array(vectorToStorage(b.vector, column.name, false, column.def.dimensions));
  if (metric === "cosine" && norm(query) === 0) {
    throw invalid(
      "the query vector is zero: its cosine distance is undefined",
      "Use l2 or dot, or another vector.",
    );
  }
  const params = new URLSearchParams(b.filter ?? "");
  for (const key of params.keys()) {
    const last = key.split(".").pop() ?? key;
    if (FORBIDDEN_IN_FILTER.has(last)) {
      throw new HearthError("PGRST100", `"${key}" is not allowed in a vector_search filter`, {
        hint: "filter holds filters only; use the body's select and k.",
      });
    }
  }
  params.set("select", b.select ?? "*");
  const plan = parseQuery(params);
  const level = buildLevel(ctx.schema, ctx.principal, table, plan.select, plan);
  if (level.fields.some((f) => f.aggregate)) {
    throw new HearthError("PGRST123", "Aggregates are not allowed in a vector_search select");
  }
  return {
    table,
    column,
    query,
    k,
    metric,
    level,
    exact: b.exact ?? false,
    ...(b.probes !== undefined ? { probes: b.probes } : {}),
  };
}

/**
 * One ranked candidate: a hot row (its key) or a cold row: its segment and row number (and
 * its vector when it was read beside the segment), or its values once taken out of a segment
 * that is not kept.
 */
interface Candidate {
  d: number;
  key: unknown[];
  seg?: LoadedSegment;
  i?: number;
  vec?: Float32Array;
  row?: unknown[];
}

function compareKeys(a: unknown[], b: unknown[]): number {
  for (let j = 0; j < a.length; j++) {
    const x = a[j] as number | string;
    const y = b[j] as number | string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const nearer = (a: Candidate, b: Candidate) => a.d - b.d || compareKeys(a.key, b.key);

/**
 * The nearest candidates seen, at most `cap` (a max-heap: O(n log cap) and O(cap) memory, so
 * an exact search over 100k flushed rows holds k candidates, not 100k); `cap` is Infinity
 * when the read path may still drop candidates the JS filters let through.
 */
class Ranking {
  private readonly heap: Candidate[] = [];
  constructor(readonly cap: number) {}

  /** The distance a candidate must not exceed to enter (Infinity until the ranking is full). */
  limit(): number {
    return this.heap.length < this.cap ? Number.POSITIVE_INFINITY : this.heap[0]!.d;
  }

  /** Whether a candidate at distance `d` can enter (checked before building it). */
  admits(d: number): boolean {
    return this.heap.length < this.cap || d <= this.heap[0]!.d;
  }

  add(c: Candidate): void {
    const h = this.heap;
    if (this.cap === Number.POSITIVE_INFINITY) {
      h.push(c);
      return;
    }
    if (h.length < this.cap) {
      h.push(c);
      for (let j = h.length - 1; j > 0; ) {
        const p = (j - 1) >> 1;
        if (nearer(h[j]!, h[p]!) <= 0) break;
        [h[j], h[p]] = [h[p]!, h[j]!];
        j = p;
      }
      return;
    }
    if (nearer(c, h[0]!) >= 0) return;
    h[0] = c;
    for (let j = 0; ; ) {
      const l = 2 * j + 1;
      const r = l + 1;
      let m = j;
      if (l < h.length && nearer(h[l]!, h[m]!) > 0) m = l;
      if (r < h.length && nearer(h[r]!, h[m]!) > 0) m = r;
      if (m === j) break;
      [h[j], h[m]] = [h[m]!, h[j]!];
      j = m;
    }
  }

  /** Takes the rows of `seg`'s candidates out of it, so the segment need not stay in memory. */
  release(seg: LoadedSegment, rowOf: (c: Candidate) => unknown[]): void {
    for (const c of this.heap) {
      if (c.seg !== seg) continue;
      c.row = rowOf(c);
      delete c.seg;
    }
  }

  get size(): number {
    return this.heap.length;
  }

  sorted(): Candidate[] {
    return this.heap.sort(nearer);
  }
}

/** Hot rows passing the level's WHERE (filters, policy, embeds over hot ∪ cold), ranked. */
function hotCandidates(
  sql: SqlStorage,
  schema: SchemaIndex,
  view: ColdView | null,
  req: SearchRequest,
  out: Ranking,
): void {
  const { level, table, column } = req;
  const root = table.name;
  const exec: SqlExec = view
    ? overlaySql(sql, view, (t) => (t.name === root && tablesOf(level).get(root) === 1 ? [] : view.rows(t)))
    : sql;
  const params = new SqlParams();
  const alias = firstAlias();
  const where = levelWhere(schema, level, alias, params);
  const keys = table.primaryKey.map((c) => `${alias}.${quoteIdent(c)}`).join(", ");
  const vec = `${alias}.${quoteIdent(column.name)}`;
  const text = `SELECT ${keys}, ${vec} FROM main.${quoteIdent(root)} AS ${alias} WHERE ${where} AND ${vec} IS NOT NULL`;
  const distance = distanceTo(req.query, req.metric);
  const bytes = req.query.length * 4;
  const n = table.primaryKey.length;
  for (const r of exec.exec(text, ...params.values).raw()) {
    const v = r[n];
    if (!(v instanceof ArrayBuffer) || v.byteLength !== bytes) continue;
    const d = distance(float32Of(v), 0);
    if (d !== null && out.admits(d)) out.add({ d, key: r.slice(0, n) });
  }
}

/**
 * The l2 distance of `b` at `o` to `q`, or Infinity once its running sum passes `limit`²:
 * most rows of a scan are far from the query and are dropped after part of their
 * dimensions. The sums are those of shared/vector.ts's l2Squared, in the same order, so a
 * row that is kept gets the same distance.
 */
function l2Within(q: Float32Array, b: Float32Array, o: number, limit: number): number {
  const n = q.length;
  const bound = limit === Number.POSITIVE_INFINITY ? limit : limit * limit * (1 + 1e-9);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  while (i + 3 < n) {
    const end = Math.min(n - 3, i + 64);
    for (; i < end; i += 4) {
      const d0 = q[i]! - b[o + i]!;
      const d1 = q[i + 1]! - b[o + i + 1]!;
      const d2 = q[i + 2]! - b[o + i + 2]!;
      const d3 = q[i + 3]! - b[o + i + 3]!;
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
    if (s0 + s1 + s2 + s3 > bound) return Number.POSITIVE_INFINITY;
  }
  for (; i < n; i++) {
    const d = q[i]! - b[o + i]!;
    s0 += d * d;
  }
  return Math.sqrt(s0 + s1 + s2 + s3);
}

/** What scanning one segment needs: the column's place, the filter, the distance. */
interface Scan {
  req: SearchRequest;
  view: ColdView;
  at: number;
  pkAt: number[];
  filter: ((seg: LoadedSegment, i: number) => boolean) | undefined;
  /** the distance of the stored vector at (b, offset), given the ranking's current limit */
  distance: (b: Float32Array, offset: number, limit: number) => number | null;
}

function scanOf(view: ColdView, req: SearchRequest): Scan {
  const names = [...req.table.columns.keys()];
  const plain = distanceTo(req.query, req.metric);
  const q = req.query;
  return {
    req,
    view,
    at: names.indexOf(req.column.name),
    pkAt: req.table.primaryKey.map((c) => names.indexOf(c)),
    filter: rowFilter(req.level),
    distance: req.metric === "l2" ? (b, o, limit) => l2Within(q, b, o, limit) : (b, o) => plain(b, o),
  };
}

/** Ranks rows of a whole segment (its vectors in memory): every row, or the given row numbers. */
function scanSegment(scan: Scan, seg: LoadedSegment, out: Ranking, rows?: Iterable<number>): void {
  const { req, view, filter, distance } = scan;
  const cols = seg.columnsFor(req.table);
  const source = cols[scan.at]!;
  const bytes = req.query.length * 4;
  // per-row views share a few buffers (one per Arrow batch): one Float32Array per buffer
  let buffer: ArrayBufferLike | null = null;
  let floats: Float32Array<ArrayBufferLike> = new Float32Array(0);
  const visit = (i: number) => {
    const v = Array.isArray(source) ? source[i] : source.value;
    if (!(v instanceof Uint8Array) || v.byteLength !== bytes) return;
    let d: number | null;
    if (v.byteOffset % 4 !== 0) d = distance(float32Of(v), 0, out.limit());
    else {
      if (v.buffer !== buffer) {
        buffer = v.buffer;
        floats = new Float32Array(v.buffer, 0, v.buffer.byteLength >> 2);
      }
      d = distance(floats, v.byteOffset >> 2, out.limit());
    }
    if (d === null || !out.admits(d)) return;
    if (!view.isLive(req.table.name, seg, i) || (filter && !filter(seg, i))) return;
    out.add({ d, key: scan.pkAt.map((j) => valueAt(cols[j]!, i)), seg, i });
  };
  if (rows) for (const i of rows) visit(i);
  else for (let i = 0; i < seg.data.rows; i++) visit(i);
}

/** Ranks the rows of some lists of a segment's version 2 index, from the lists' own vectors. */
function scanLists(
  scan: Scan,
  seg: LoadedSegment,
  ids: Uint32Array,
  offsets: Uint32Array,
  lists: Map<number, Float32Array>,
  out: Ranking,
): void {
  const { req, view, filter, distance } = scan;
  const cols = seg.columnsFor(req.table);
  const dims = req.query.length;
  for (const [l, vectors] of lists) {
    const first = offsets[l]!;
    const n = offsets[l + 1]! - first;
    for (let j = 0; j < n; j++) {
      const i = ids[first + j]!;
      if (i >= seg.data.rows) continue;
      const d = distance(vectors, j * dims, out.limit());
      if (d === null || !out.admits(d)) continue;
      if (!view.isLive(req.table.name, seg, i) || (filter && !filter(seg, i))) continue;
      out.add({
        d,
        key: scan.pkAt.map((k) => valueAt(cols[k]!, i)),
        seg,
        i,
        vec: vectors.subarray(j * dims, (j + 1) * dims),
      });
    }
  }
}

function valueAt(col: unknown[] | { value: unknown }, i: number): unknown {
  return Array.isArray(col) ? col[i] : col.value;
}

/** A cold candidate's storage values for the overlay (its vector from the index when read there). */
function coldRow(table: TableInfo, at: number, c: Candidate): unknown[] {
  if (c.row) return c.row;
  const values = c.seg!.columnsFor(table).map((col) => valueAt(col, c.i!));
  if (c.vec) values[at] = new Uint8Array(c.vec.buffer, c.vec.byteOffset, c.vec.byteLength);
  return values.map(sqlSafe);
}

interface Ranked {
  view: ColdView | null;
  ranking: Ranking;
  /** segments searched through their index (0: the search was exact) */
  indexed: number;
}

/**
 * Ranks hot ∪ cold rows: segments one at a time (an indexed segment by its probed lists when
 * `approximate`, read beside it; any other one whole, through the segment cache, and let go
 * once ranked), then the hot rows. Starts again (a few times) when a flush or a promotion
 * happened while segments were read, so the ranking is of one state.
 */
async function rank(ctx: RestContext, req: SearchRequest, approximate: boolean): Promise<Ranked> {
  const cap = exactlyFiltered(req.level) ? req.k : Number.POSITIVE_INFINITY;
  const root = req.table.name;
  // The root's segments are loaded without the searched column: its vectors are read
  // beside them (indexed segments) or from the whole segment, one at a time.
  const slim = tablesOf(req.level).get(root) === 1 ? new Set([req.column.name]) : undefined;
  for (let attempt = 0; ; attempt++) {
    const shadows = ctx.cold.shadowCount;
    const view = ctx.cold.isEmpty
      ? null
      : (await prepareRead(ctx.cold, ctx.sql, ctx.schema, req.level, undefined, slim)).view;
    const ranking = new Ranking(cap);
    let indexed = 0;
    if (view) {
      const segs = view.segments.get(root) ?? [];
      const scan = scanOf(view, req);
      const indexes = approximate
        ? await loadIndexes(
            ctx.cold,
            segs.map((s) => s.ref),
            req.column,
          )
        : new Map();
      const probed = await Promise.all(
        segs.map(async (seg) => {
          const ix = indexes.get(seg.ref.key);
          if (ix?.index.version !== 2) return null;
          return readLists(ctx.cold, ix, nearestLists(ix.index, req.query, req.metric, req.probes));
        }),
      );
      const at = scan.at;
      for (const [j, seg] of segs.entries()) {
        const ix = indexes.get(seg.ref.key);
        const lists = probed[j];
        if (ix && lists) {
          scanLists(scan, seg, ix.index.ids, ix.index.offsets, lists, ranking);
          indexed++;
          continue;
        }
        const whole = slim ? await ctx.cold.segment(seg.ref, req.table) : seg;
        // a version 1 index holds row numbers only: its probed rows are scanned in the segment
        const rows = ix ? probeIvf(ix.index, req.query, req.metric, req.probes) : undefined;
        scanSegment(scan, whole, ranking, rows);
        if (ix) indexed++;
        if (whole !== seg && cap !== Number.POSITIVE_INFINITY)
          ranking.release(whole, (c) => coldRow(req.table, at, c));
      }
      const moved = ctx.cold.manifestVersion !== view.manifest.version || ctx.cold.shadowCount !== shadows;
      if (moved && attempt < 3) continue;
    }
    hotCandidates(ctx.sql, ctx.schema, view, req, ranking);
    return { view, ranking, indexed };
  }
}

const PK_KEY = "\u0000pk";

/**
 * The rows of the ranked candidates that the read path returns, nearest first, until k:
 * each batch is read with runLevel over an overlay holding only the batch's cold rows,
 * with the primary key added under reserved names to tell which candidates it kept.
 */
function verified(
  sql: SqlStorage,
  view: ColdView | null,
  req: SearchRequest,
  ranked: Candidate[],
  schema: SchemaIndex,
): Row[] {
  const { table, k } = req;
  const at = [...table.columns.keys()].indexOf(req.column.name);
  const level: Level = {
    ...req.level,
    fields: [
      ...req.level.fields,
      ...table.primaryKey.map((c, j) => ({
        key: `${PK_KEY}${j}`,
        field: { column: c, path: [], asText: false },
      })),
    ],
  };
  const out: Row[] = [];
  for (let start = 0; start < ranked.length && out.length < k; ) {
    const batch = ranked.slice(start, start + Math.max(k - out.length, Math.min(2 * k, 1000)));
    start += batch.length;
    const cold = batch.filter((c) => c.seg !== undefined || c.row !== undefined);
    const exec: SqlExec = view
      ? overlaySql(sql, view, (t) =>
          t.name === table.name ? cold.map((c) => coldRow(table, at, c)) : view.rows(t),
        )
      : sql;
    const distances = new Map(batch.map((c) => [JSON.stringify(c.key), c.d]));
    // runLevel answers in key order and leaves out the rows the filters or policy refuse
    for (const row of runLevel(exec, schema, level, { keys: batch.map((c) => c.key) })) {
      const key = table.primaryKey.map((_, j) => row[`${PK_KEY}${j}`]);
      for (let j = 0; j < key.length; j++) delete row[`${PK_KEY}${j}`];
      row._distance = distances.get(JSON.stringify(key)) ?? null;
      out.push(row);
      if (out.length === k) break;
    }
  }
  return out;
}

export async function vectorSearch(ctx: RestContext, request: Request): Promise<Response> {
  if (request.method.toUpperCase() !== "POST") {
    throw new HearthError("PGRST117", `Unsupported HTTP method: ${request.method}`, {
      hint: "rpc/vector_search is called with POST and a JSON body.",
    });
  }
  const text = await request.text();
  if (text.length > ctx.maxBodyBytes) {
    throw new HearthError("HEARTH_PAYLOAD_TOO_LARGE", "The request body is too large");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HearthError("PGRST102", "Empty or invalid json", { hint: "Send a JSON object." });
  }
  const req = parseSearch(ctx, body);
  let ranked = await rank(ctx, req, !req.exact);
  if (ranked.indexed > 0 && ranked.ranking.size < req.k) {
    // the probed lists hold fewer than k matching rows (a selective filter): rank them all
    ranked = await rank(ctx, req, false);
  }
  const rows = verified(ctx.sql, ranked.view, req, ranked.ranking.sorted(), ctx.schema);
  return respond(
    200,
    JSON.stringify(rows),
    {
      "content-type": "application/json; charset=utf-8",
      // how the answer was found: "exact", or "approximate; indexed-segments=N"
      "x-hearth-vector-search":
        ranked.indexed > 0 ? `approximate; indexed-segments=${ranked.indexed}` : "exact",
    },
    ctx.requestId,
  );
}
