/**
 * `{url}/rest/v1/...` inside the project's DO: parse (shared/rest), check against the
 * schema and the caller's policies, run on the hot tier, shape the PostgREST response.
 * Writes run in one `transactionSync` with their WAL entries; a singular or max-affected
 * failure throws inside it, so nothing is written.
 */
import { HearthError } from "../shared/errors.ts";
import type { Principal } from "../shared/principal.ts";
import { type RowBatch, readRowBatch } from "../shared/rest/bodies.ts";
import { buildOpenApi } from "../shared/rest/openapi.ts";
import { type AcceptMedia, parseAcceptMedia, parsePrefer, parseRange } from "../shared/rest/parse-headers.ts";
import { parseQuery } from "../shared/rest/parse-query.ts";
import type { Prefer, QueryPlan } from "../shared/rest/plan.ts";
import { aggregateFastPath, aggregateRows } from "./cold/aggregate.ts";
import {
  coldCount,
  insertNeedsCold,
  levelExec,
  prepareRead,
  prepareWrite,
  readLevelExec,
} from "./cold/cold-read.ts";
import type { ColdStore, ColdView } from "./cold/cold-store.ts";
import type { Manifest } from "./cold/manifest.ts";
import type { SqlExec } from "./cold/overlay.ts";
import { promoteForInsert, promoteTargets } from "./cold/promote.ts";
import { readAccess, writeAccess } from "./policy.ts";
import { buildLevel, countLevel, type Level, MAX_ROWS, type Row, runLevel } from "./read.ts";
import { contentRange, formatBody, respond, singular } from "./rest-response.ts";
import { SchemaIndex, type TableInfo } from "./schema-index.ts";
import { vectorSearch } from "./vectors/search.ts";
import { beginWalTx, walCountsOf } from "./wal.ts";
import { deleteRows, insertBatch, type PrimaryKey, selectTargets, updateRows } from "./write.ts";

export interface RestContext {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  schema: SchemaIndex;
  principal: Principal;
  requestId: string;
  maxBodyBytes: number;
  /** `http://host/p/<id>/rest/v1` */
  baseUrl: string;
  cold: ColdStore;
  /** resolves `as_of` (a manifest version or an ISO time) to a kept manifest */
  snapshot: (asOf: string) => Promise<Manifest>;
  /**
   * Runs at the end of a write's transaction, after its rows and WAL entries: what it writes
   * commits with them or not at all (sync records its mutation ids this way).
   */
  inTransaction?: () => void;
  /**
   * Runs before a write reads or changes anything: the project finishes a flush that stopped
   * between its manifest and its drop (that drop empties the hot tier, so no write may come
   * first). Throws when it cannot, and the write is refused with nothing done.
   */
  beforeWrite?: () => Promise<void>;
}

function preferenceApplied(
  prefer: Prefer,
  applied: Partial<Record<"resolution" | "missing" | "return" | "count", boolean>>,
): Record<string, string> {
  const parts: string[] = [];
  if (applied.resolution && prefer.resolution) parts.push(`resolution=${prefer.resolution}`);
  if (applied.missing && prefer.missing) parts.push(`missing=${prefer.missing}`);
  if (applied.return && prefer.return) parts.push(`return=${prefer.return}`);
  if (applied.count && prefer.count) parts.push(`count=${prefer.count}`);
  return parts.length > 0 ? { "preference-applied": parts.join(", ") } : {};
}

function strictPrefer(prefer: Prefer): void {
  if (prefer.handling === "strict" && prefer.invalid.length > 0) {
    throw new HearthError("PGRST122", "Invalid preferences given with handling=strict", {
      details: `Invalid preferences: ${prefer.invalid.join(", ")}`,
    });
  }
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HearthError("PGRST125", `Invalid path specified in request URL: ${segment}`, {
      details: "The table name is not valid percent-encoded UTF-8.",
    });
  }
}

export async function handleRest(ctx: RestContext, request: Request, subpath: string): Promise<Response> {
  const url = new URL(request.url);
  const method = request.method.toUpperCase();
  if (subpath === "" || subpath === "/") {
    if (method !== "GET" && method !== "HEAD")
      throw new HearthError("PGRST117", `Unsupported HTTP method: ${method}`);
    return openApi(ctx, request);
  }
  const segments = subpath.slice(1).split("/");
  if (segments[0] === "rpc") {
    if (segments.length === 2 && segments[1] === "vector_search") return vectorSearch(ctx, request);
    throw new HearthError(
      "PGRST202",
      `Could not find the function ${segments.slice(1).join("/")} in the schema cache`,
      {
        hint: "Hearth's functions: vector_search (docs/vectors.md).",
      },
    );
  }
  if (segments.length !== 1)
    throw new HearthError("PGRST125", `Invalid path specified in request URL: ${subpath}`);
  const asOf = url.searchParams.get("as_of");
  url.searchParams.delete("as_of");
  if (asOf !== null && method !== "GET" && method !== "HEAD") {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      "as_of is only allowed on GET and HEAD: a snapshot is read-only",
    );
  }
  let snapshot: Manifest | undefined;
  if (asOf !== null) {
    snapshot = await ctx.snapshot(asOf);
    if (!snapshot.schema) {
      throw new HearthError(
        "PGRST205",
        `Could not find the table '${segments[0]}' in snapshot ${snapshot.version}`,
      );
    }
    ctx = { ...ctx, schema: new SchemaIndex(snapshot.schema) };
  }
  const table = ctx.schema.table(decodePathSegment(segments[0]!));
  const accept = parseAcceptMedia(request.headers.get("accept"));
  if (!accept || accept.format === "openapi") {
    throw new HearthError(
      "PGRST107",
      `None of these media types are available: ${request.headers.get("accept")}`,
    );
  }
  // Headers.get joins repeated Prefer headers with ", ", which parsePrefer splits again.
  const preferHeader = request.headers.get("prefer");
  const prefer = parsePrefer(preferHeader ? [preferHeader] : []);
  strictPrefer(prefer);
  const plan = parseQuery(url.searchParams);
  switch (method) {
    case "GET":
    case "HEAD":
      return read(ctx, request, table, plan, prefer, accept, method === "HEAD", snapshot);
    case "POST":
      return insert(ctx, request, table, plan, prefer, accept);
    case "PATCH":
      return update(ctx, request, table, plan, prefer, accept);
    case "DELETE":
      return remove(ctx, table, plan, prefer, accept);
    case "OPTIONS":
      return respond(200, null, { allow: "OPTIONS,GET,HEAD,POST,PATCH,DELETE" }, ctx.requestId);
    default:
      throw new HearthError("PGRST117", `Unsupported HTTP method: ${method}`);
  }
}

function openApi(ctx: RestContext, request: Request): Response {
  const accept = request.headers.get("accept");
  if (accept && !/(application\/(openapi\+)?json|\*\/\*)/.test(accept)) {
    throw new HearthError("PGRST107", `None of these media types are available: ${accept}`);
  }
  const tables = [...ctx.schema.tables.values()]
    .filter((t) => {
      try {
        readAccess(ctx.principal, t);
        return true;
      } catch {
        return false;
      }
    })
    .map((t) => t.name);
  const doc = buildOpenApi(ctx.schema.schema, { serverUrl: ctx.baseUrl, tables });
  return respond(
    200,
    JSON.stringify(doc),
    { "content-type": "application/openapi+json; charset=utf-8" },
    ctx.requestId,
  );
}

function pagingOf(plan: QueryPlan, request: Request): { offset: number; limit?: number } {
  // PostgREST applies the Range header to GET only (not HEAD).
  const range = request.method.toUpperCase() === "GET" ? parseRange(request.headers.get("range")) : null;
  let offset = plan.offset ?? 0;
  let end = plan.limit !== undefined ? offset + plan.limit : Number.POSITIVE_INFINITY;
  if (range) {
    offset = Math.max(offset, range.offset);
    if (range.limit !== undefined) end = Math.min(end, range.offset + range.limit);
  }
  return Number.isFinite(end) ? { offset, limit: Math.max(0, end - offset) } : { offset };
}

/**
 * `exec` over hot ∪ cold for a read of `level` (plain SQLite while nothing was flushed),
 * and the count when it can be taken without merging: hot rows in SQL + cold rows in JS.
 */
async function readExec(
  ctx: RestContext,
  level: Level,
  paging: { offset: number; limit?: number },
  wantCount: boolean,
  snapshot?: Manifest,
): Promise<{ exec: SqlExec; count: number | null }> {
  if (!snapshot && ctx.cold.isEmpty) {
    return { exec: ctx.sql, count: wantCount ? countLevel(ctx.sql, ctx.schema, level) : null };
  }
  const { view } = await prepareRead(ctx.cold, ctx.sql, ctx.schema, level, snapshot);
  const k = paging.offset + Math.min(paging.limit ?? MAX_ROWS, MAX_ROWS);
  const exec = readLevelExec(ctx.sql, view, level, k);
  let count: number | null = null;
  if (wantCount) {
    const cold = coldCount(view, level);
    const hot = view.includeHot ? countLevel(ctx.sql, ctx.schema, level) : 0;
    count = cold === null ? countLevel(levelExec(ctx.sql, view, level), ctx.schema, level) : hot + cold;
  }
  return { exec, count };
}

/** Loads the cold rows a write to `table` may touch; null while nothing was flushed. */
async function writeView(ctx: RestContext, table: TableInfo): Promise<ColdView | null> {
  await ctx.beforeWrite?.();
  if (ctx.cold.isEmpty) return null;
  return prepareWrite(ctx.cold, ctx.schema, table);
}

async function read(
  ctx: RestContext,
  request: Request,
  table: TableInfo,
  plan: QueryPlan,
  prefer: Prefer,
  accept: AcceptMedia,
  head: boolean,
  snapshot?: Manifest,
): Promise<Response> {
  const level = buildLevel(ctx.schema, ctx.principal, table, plan.select, plan);
  const paging = pagingOf(plan, request);
  const wantCount = prefer.count !== undefined;
  let exec: SqlExec = ctx.sql;
  let fast: { rows: Row[]; groups: number } | null = null;
  if ((snapshot || !ctx.cold.isEmpty) && aggregateFastPath(level)) {
    // Aggregates over flushed rows run on the column vectors, not through SQL.
    const { view } = await prepareRead(ctx.cold, ctx.sql, ctx.schema, level, snapshot);
    fast = aggregateRows(ctx.sql, ctx.schema, view, level, paging);
  }
  const grouped = level.fields.some((f) => !f.aggregate);
  let total: number | null = null;
  if (fast) total = wantCount ? (grouped ? fast.groups : 1) : null;
  else ({ exec, count: total } = await readExec(ctx, level, paging, wantCount, snapshot));
  if (total !== null && paging.offset > total && total > 0) {
    throw new HearthError("PGRST103", "Requested range not satisfiable", {
      details: `An offset of ${paging.offset} was requested, but there are only ${total} rows.`,
      status: 416,
    });
  }
  const rows = paging.limit === 0 ? [] : fast ? fast.rows : runLevel(exec, ctx.schema, level, paging);
  const { body, type } = formatBody(
    rows,
    accept,
    level.fields.map((f) => f.key),
  );
  const partial = total !== null && rows.length < total && !(rows.length === 0 && total === 0);
  const status = partial ? 206 : 200;
  return respond(
    status,
    head ? null : body,
    {
      "content-type": type,
      "content-range": contentRange(paging.offset, rows.length, total),
      ...preferenceApplied(prefer, { count: wantCount }),
    },
    ctx.requestId,
  );
}

async function bodyOf(ctx: RestContext, request: Request, plan: QueryPlan): Promise<RowBatch> {
  return readRowBatch(request, {
    maxBytes: ctx.maxBodyBytes,
    ...(plan.columns ? { columns: plan.columns } : {}),
  });
}

/** The representation of written rows, re-read through the read path (embeds included). */
function representation(ctx: RestContext, level: Level, keys: PrimaryKey[], view: ColdView | null): Row[] {
  if (keys.length === 0) return [];
  const exec = view ? levelExec(ctx.sql, view, level) : ctx.sql;
  return runLevel(exec, ctx.schema, level, { keys });
}

function writeResponse(
  ctx: RestContext,
  status: number,
  rows: Row[] | null,
  count: number,
  prefer: Prefer,
  accept: AcceptMedia,
  level: Level,
  extra: Record<string, string>,
): Response {
  const headers: Record<string, string> = { ...extra };
  if (prefer.count) headers["content-range"] = `*/${count}`;
  if (rows === null) return respond(status === 200 ? 204 : status, null, headers, ctx.requestId);
  const { body, type } = formatBody(
    rows,
    accept,
    level.fields.map((f) => f.key),
  );
  headers["content-type"] = type;
  return respond(status, body, headers, ctx.requestId);
}

async function insert(
  ctx: RestContext,
  request: Request,
  table: TableInfo,
  plan: QueryPlan,
  prefer: Prefer,
  accept: AcceptMedia,
): Promise<Response> {
  const access = writeAccess(ctx.principal, table);
  const batch = await bodyOf(ctx, request, plan);
  const level = buildLevel(ctx.schema, ctx.principal, table, plan.select, plan);
  const upsert =
    prefer.resolution !== undefined
      ? { target: plan.onConflict ?? table.primaryKey, resolution: prefer.resolution }
      : plan.onConflict
        ? { target: plan.onConflict, resolution: "merge-duplicates" as const }
        : undefined;
  const wantRows = prefer.return === "representation";
  // Embeds of the representation may name flushed rows; conflicts and parents may be cold.
  const view = await writeView(ctx, table);
  const needsCold = view !== null && insertNeedsCold(table, ctx.schema, batch.columns);
  const result = ctx.cold.transaction(ctx.storage, () => {
    const tx = beginWalTx(ctx.sql);
    if (view && needsCold) promoteForInsert(ctx.cold, ctx.sql, view, table, batch);
    const keys = insertBatch(ctx.sql, table, batch, {
      access,
      missingDefault: prefer.missing === "default",
      returnKeys: wantRows || prefer.return === "headers-only",
      ...(upsert ? { upsert } : {}),
    });
    const counts = walCountsOf(ctx.sql, tx);
    const rows = wantRows ? representation(ctx, level, keys, view) : null;
    if (accept.format === "object" && wantRows) singular(rows!);
    ctx.inTransaction?.();
    return { keys, counts, rows, written: counts.INSERT + counts.UPDATE };
  });
  // PostgREST: 201 when anything was inserted, 200 when an upsert only updated (or did nothing).
  const status = upsert !== undefined && result.counts.INSERT === 0 ? 200 : 201;
  const extra: Record<string, string> = preferenceApplied(prefer, {
    resolution: upsert !== undefined && prefer.resolution !== undefined,
    missing: prefer.missing !== undefined,
    return: prefer.return !== undefined,
    count: prefer.count !== undefined,
  });
  if (prefer.return === "headers-only" && result.keys.length === 1) {
    const key = result.keys[0]!;
    const q = table.primaryKey
      .map((c, i) => `${c}=${key[i] === null ? "is.null" : `eq.${key[i]}`}`)
      .join("&");
    extra.location = `/${table.name}?${q}`;
  }
  return writeResponse(ctx, status, result.rows, result.written, prefer, accept, level, extra);
}

function requireFilter(plan: QueryPlan, prefer: Prefer, verb: "UPDATE" | "DELETE"): void {
  if (plan.where.length === 0 && prefer.maxAffected === undefined) {
    throw new HearthError("21000", `${verb} requires a WHERE clause`, {
      hint: "Add a filter (e.g. ?id=eq.1, or ?id=not.is.null to mean every row), or send Prefer: max-affected=<n>.",
    });
  }
}

function checkMaxAffected(prefer: Prefer, n: number): void {
  if (prefer.maxAffected !== undefined && n > prefer.maxAffected) {
    throw new HearthError("PGRST124", "Query result exceeds max-affected preference constraint", {
      details: `The query affects ${n} rows`,
    });
  }
}

/**
 * The rows a PATCH or DELETE selects, over hot ∪ flushed rows, checked against
 * max-affected and made hot (with the flushed rows that refer to them) so SQL can write them.
 */
function hotTargets(
  ctx: RestContext,
  view: ColdView | null,
  level: Level,
  plan: QueryPlan,
  prefer: Prefer,
): PrimaryKey[] {
  const targets = selectTargets(
    view ? levelExec(ctx.sql, view, level) : ctx.sql,
    ctx.schema,
    level,
    plan.limit,
  );
  checkMaxAffected(prefer, targets.length);
  if (view) promoteTargets(ctx.cold, ctx.sql, view, level.table, targets);
  return targets;
}

async function update(
  ctx: RestContext,
  request: Request,
  table: TableInfo,
  plan: QueryPlan,
  prefer: Prefer,
  accept: AcceptMedia,
): Promise<Response> {
  const access = writeAccess(ctx.principal, table);
  requireFilter(plan, prefer, "UPDATE");
  const patch = await bodyOf(ctx, request, plan);
  if (!patch.single && patch.rows.length !== 1) {
    throw new HearthError("PGRST102", "PATCH expects one JSON object with the columns to change", {
      details: `The body holds ${patch.rows.length} rows.`,
    });
  }
  const level = buildLevel(ctx.schema, ctx.principal, table, plan.select, plan);
  const wantRows = prefer.return === "representation";
  const view = await writeView(ctx, table);
  const result = ctx.cold.transaction(ctx.storage, () => {
    beginWalTx(ctx.sql);
    const targets = hotTargets(ctx, view, level, plan, prefer);
    if (view) promoteForUpdate(ctx, view, table, patch);
    const keys = updateRows(ctx.sql, table, targets, patch, access);
    const rows = wantRows ? representation(ctx, level, keys, view) : null;
    if (accept.format === "object" && wantRows) singular(rows!);
    ctx.inTransaction?.();
    return { keys, rows };
  });
  const extra = preferenceApplied(prefer, {
    return: prefer.return !== undefined,
    count: prefer.count !== undefined,
  });
  if (result.keys.length > 0) extra["content-range"] = `0-${result.keys.length - 1}/*`;
  return writeResponse(ctx, 200, result.rows, result.keys.length, prefer, accept, level, extra);
}

async function remove(
  ctx: RestContext,
  table: TableInfo,
  plan: QueryPlan,
  prefer: Prefer,
  accept: AcceptMedia,
): Promise<Response> {
  writeAccess(ctx.principal, table);
  requireFilter(plan, prefer, "DELETE");
  const level = buildLevel(ctx.schema, ctx.principal, table, plan.select, plan);
  const wantRows = prefer.return === "representation";
  const view = await writeView(ctx, table);
  const result = ctx.cold.transaction(ctx.storage, () => {
    beginWalTx(ctx.sql);
    const targets = hotTargets(ctx, view, level, plan, prefer);
    const rows = wantRows ? representation(ctx, level, targets, view) : null;
    const n = deleteRows(ctx.sql, table, targets);
    if (accept.format === "object" && wantRows) singular(rows!);
    ctx.inTransaction?.();
    return { n, rows };
  });
  const extra = preferenceApplied(prefer, {
    return: prefer.return !== undefined,
    count: prefer.count !== undefined,
  });
  return writeResponse(ctx, 200, result.rows, result.n, prefer, accept, level, extra);
}

/** Cold rows an update's new values collide with (unique columns) or refer to (parents). */
function promoteForUpdate(ctx: RestContext, view: ColdView, table: TableInfo, patch: RowBatch): void {
  promoteForInsert(ctx.cold, ctx.sql, view, table, { ...patch, rows: patch.rows.slice(0, 1) });
}
