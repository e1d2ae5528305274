/**
 * `POST {url}/rest/v1/rpc/vector_search` (docs/vectors.md): the k nearest rows of a table
 * by a vector column, over hot ∪ flushed rows. Access is the normal read's: the request is
 * checked as `GET /table?select=…&<filter>` (buildLevel), candidates are ranked in JS, and
 * the rows returned are read back through the read path (runLevel with their keys), so a
 * row comes back only if that GET would return it. Async work (segments, indexes) happens
 * first; the ranking and the SQL then run synchronously on one consistent view.
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import { parseQuery } from "../../shared/rest/parse-query.ts";
import { distanceTo, float32Of, METRICS, type Metric, norm, vectorToStorage } from "../../shared/vector.ts";
import { exactlyFiltered, prepareRead, rowFilter, tablesOf } from "../cold/cold-read.ts";
import { type ColdView, type LoadedSegment, sqlSafe } from "../cold/cold-store.ts";
import { overlaySql, type SqlExec } from "../cold/overlay.ts";
import { quoteIdent } from "../migrate.ts";
import { buildLevel, firstAlias, type Level, levelWhere, type Row, runLevel } from "../read.ts";
import type { RestContext } from "../rest-handler.ts";
import { respond } from "../rest-response.ts";
import type { ColumnInfo, SchemaIndex, TableInfo } from "../schema-index.ts";
import { SqlParams } from "../sql-where.ts";
import { type IndexProbe, loadIndexes } from "./ivf-store.ts";

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

/** One ranked candidate: a hot row (its key) or a cold row (segment, index). */
interface Candidate {
  d: number;
  key: unknown[];
  seg?: LoadedSegment;
  i?: number;
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
  constructor(private readonly cap: number) {}

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

/** Live cold rows of the root passing its own filters (JS), ranked: every row, or an index's probed lists. */
function coldCandidates(
  view: ColdView,
  req: SearchRequest,
  probes: Map<LoadedSegment, IndexProbe>,
  out: Ranking,
): void {
  const { table, column, level } = req;
  const at = [...table.columns.keys()].indexOf(column.name);
  const pkAt = table.primaryKey.map((c) => [...table.columns.keys()].indexOf(c));
  const filter = rowFilter(level);
  const distance = distanceTo(req.query, req.metric);
  const bytes = req.query.length * 4;
  for (const seg of view.segments.get(table.name) ?? []) {
    const cols = seg.columnsFor(table);
    const source = cols[at]!;
    const vectorAt = (i: number): unknown => (Array.isArray(source) ? source[i] : source.value);
    const visit = (i: number) => {
      if (!view.isLive(table.name, seg, i)) return;
      if (filter && !filter(seg, i)) return;
      const v = vectorAt(i);
      if (!(v instanceof Uint8Array || v instanceof ArrayBuffer) || v.byteLength !== bytes) return;
      const d = distance(float32Of(v), 0);
      if (d === null || !out.admits(d)) return;
      out.add({ d, key: pkAt.map((j) => valueAt(cols[j]!, i)), seg, i });
    };
    const probe = probes.get(seg);
    if (probe) for (const i of probe.rows(req.query, req.metric, req.probes)) visit(i);
    else for (let i = 0; i < seg.data.rows; i++) visit(i);
  }
}

function valueAt(col: unknown[] | { value: unknown }, i: number): unknown {
  return Array.isArray(col) ? col[i] : col.value;
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
    const cold = batch.filter((c) => c.seg !== undefined);
    const exec: SqlExec = view
      ? overlaySql(sql, view, (t) =>
          t.name === table.name
            ? cold.map((c) => view.rowValues(table, c.seg!, c.i!).map(sqlSafe))
            : view.rows(t),
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
  const view = ctx.cold.isEmpty ? null : (await prepareRead(ctx.cold, ctx.sql, ctx.schema, req.level)).view;
  const probes = view && !req.exact ? await loadIndexes(ctx.cold, view, req.table, req.column) : new Map();
  // Rows the JS filters pass are the rows SQL returns when they are exact: keep only the k nearest.
  const cap = exactlyFiltered(req.level) ? req.k : Number.POSITIVE_INFINITY;
  let ranking = new Ranking(cap);
  hotCandidates(ctx.sql, ctx.schema, view, req, ranking);
  if (view) coldCandidates(view, req, probes, ranking);
  let approximate = probes.size > 0;
  if (approximate && ranking.size < req.k && view) {
    // the probed lists hold fewer than k matching rows (a selective filter): rank them all
    ranking = new Ranking(cap);
    hotCandidates(ctx.sql, ctx.schema, view, req, ranking);
    coldCandidates(view, req, new Map(), ranking);
    approximate = false;
  }
  const rows = verified(ctx.sql, view, req, ranking.sorted(), ctx.schema);
  return respond(
    200,
    JSON.stringify(rows),
    {
      "content-type": "application/json; charset=utf-8",
      // how the answer was found: "exact", or "approximate; indexed-segments=N"
      "x-hearth-vector-search": approximate ? `approximate; indexed-segments=${probes.size}` : "exact",
    },
    ctx.requestId,
  );
}
