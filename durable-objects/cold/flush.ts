/**
 * Flush: every hot row becomes part of a new manifest version, then leaves the hot tier.
 *
 *   1. marker    `_hearth_meta.flush_inflight` = {flushId, version, lastLsn} (local, durable)
 *   2. segments  each table's hot rows → Arrow segments (+ bloom) in R2; names derive from
 *                the LSN range, so a retried flush overwrites the same objects
 *   3. manifest  `manifests/<n+1>.json` put only if absent: the compare-and-swap: a second
 *                writer of the same version sees it exists and gives up (409)
 *   4. catalog   D1: manifest + segment rows, `projects.manifest_version` n → n+1 (one batch;
 *                an outage is 503 HEARTH_CATALOG_UNAVAILABLE)
 *   5. drop      one SQLite transaction: hot rows deleted with the WAL muted, shadows
 *                cleared, local version n+1, marker removed
 *
 * A crash after 3 or 4 is finished by `recoverFlush` on the next start (the manifest with
 * the marker's flushId exists: redo 4 and 5, both idempotent); a crash before 3 leaves only
 * unreferenced objects. Either way no row is lost or duplicated: until 5 commits the rows
 * are hot and the committed manifest (if any) holds the same rows, which step 5 then drops.
 * The caller runs a flush with no other request interleaving (blockConcurrencyWhile).
 */

import { and, eq, inArray } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import { buildBloom, encodeSegment, type SegmentColumn } from "../../shared/columnar/segment.ts";
import { HearthError } from "../../shared/errors.ts";
import { catalogFailure } from "../../workers/catalog/guard.ts";
import { manifests, projects, segments } from "../../workers/catalog/schema.ts";
import { quoteIdent } from "../migrate.ts";
import type { SchemaIndex, TableInfo } from "../schema-index.ts";
import { DEFAULT_WAL_RETENTION, trimWal, type WalRetention } from "../sync/retention.ts";
import { putVectorIndexes } from "../vectors/ivf-store.ts";
import type { ColdStore } from "./cold-store.ts";
import {
  keyText,
  type Manifest,
  manifestKey,
  retried,
  type SegmentRef,
  segmentKey,
  withRetry,
} from "./manifest.ts";

export type FlushStep =
  | "segments"
  | "manifest"
  | "catalog"
  | "drop"
  // the compaction that follows a flush (compact.ts): new segments written, manifest put, catalog committed
  | "compact-segments"
  | "compact-manifest"
  | "compact-catalog";

export interface FlushHooks {
  /** test hook: called after each step; throwing there simulates a crash */
  afterStep?: (step: FlushStep) => void | Promise<void>;
}

export interface FlushContext {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  bucket: R2Bucket;
  catalog: D1Database;
  store: ColdStore;
  projectId: string;
  schema: SchemaIndex | null;
  schemaVersion: number;
  /** rows per segment before a table's flush is split into parts */
  segmentRows: number;
  /** what the WAL keeps past a flush, for sync clients catching up by LSN (sync/retention.ts) */
  walRetention?: WalRetention;
  hooks?: FlushHooks;
}

export interface FlushResult {
  flushed: boolean;
  version: number;
  segments: number;
  rows: number;
  bytes: number;
  lastLsn: number;
  /** segments merged by the compaction that followed */
  compacted?: number;
}

export interface Marker {
  flushId: string;
  version: number;
  lastLsn: number;
}

/**
 * Whether a flush or compaction stopped between its manifest and its drop (a failed catalog
 * commit, a crash). Its recovery drops the whole hot tier, so it must run before any new
 * write lands: the write paths call `recoverFlush` first while this holds.
 */
export function flushPending(sql: SqlStorage): boolean {
  return readMarker(sql) !== null;
}

function readMarker(sql: SqlStorage): Marker | null {
  const row = sql.exec("SELECT value FROM _hearth_meta WHERE key = 'flush_inflight'").toArray()[0];
  return row ? (JSON.parse(String(row.value)) as Marker) : null;
}

export function hotRowCount(sql: SqlStorage, schema: SchemaIndex | null): number {
  let n = 0;
  for (const t of schema?.tables.values() ?? []) {
    n += Number(sql.exec(`SELECT count(*) AS n FROM ${quoteIdent(t.name)}`).one().n);
  }
  return n;
}

export function lastLsn(sql: SqlStorage): number {
  const r = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = '_hearth_wal'").toArray()[0];
  return r ? Number(r.seq) : 0;
}

export function sequences(sql: SqlStorage, schema: SchemaIndex | null): Record<string, number> {
  const out: Record<string, number> = {};
  const names = new Set(schema?.tables.keys() ?? []);
  for (const r of sql.exec("SELECT name, seq FROM sqlite_sequence")) {
    if (names.has(String(r.name))) out[String(r.name)] = Number(r.seq);
  }
  return out;
}

/** Tables ordered so that children come before the parents they reference. */
function childrenFirst(schema: SchemaIndex): TableInfo[] {
  const out: TableInfo[] = [];
  const seen = new Set<string>();
  const visit = (t: TableInfo) => {
    if (seen.has(t.name)) return;
    seen.add(t.name);
    for (const rel of schema.relationshipsOf(t.name)) {
      if (rel.kind === "one-to-many" && rel.foreignTable !== t.name)
        visit(schema.tables.get(rel.foreignTable)!);
    }
    out.push(t);
  };
  for (const t of schema.tables.values()) visit(t);
  return out;
}

/** A table's columns as a segment stores them (vectors with their dimensions). */
export function segmentColumnsOf(table: TableInfo): SegmentColumn[] {
  return [...table.columns.values()].map((c) =>
    c.type === "vector" && c.def.dimensions !== undefined
      ? { name: c.name, type: c.type, dimensions: c.def.dimensions }
      : { name: c.name, type: c.type },
  );
}

/** Vector bytes per segment part: a part is built in memory (rows, Arrow, LZ4, index) at once. */
const VECTOR_PART_BYTES = 16 * 1024 * 1024;

/**
 * Rows per segment part of `table`: `segmentRows`, fewer for tables with vector columns
 * (10,922 rows of 384 float32s), so a flush or compaction of one part stays well inside a
 * Durable Object's 128 MB.
 */
export function partRows(table: TableInfo, segmentRows: number): number {
  let bytes = 0;
  for (const c of table.columns.values()) if (c.type === "vector") bytes += 4 * (c.def.dimensions ?? 0);
  if (bytes === 0) return segmentRows;
  return Math.max(1, Math.min(segmentRows, Math.max(1024, Math.floor(VECTOR_PART_BYTES / bytes))));
}

/** Step 2 for one table: its hot rows as segments, a part per `segmentRows` rows. */
async function writeTable(
  ctx: FlushContext,
  table: TableInfo,
  firstLsn: number,
  last: number,
): Promise<SegmentRef[]> {
  const columns = segmentColumnsOf(table);
  const rowsPerPart = partRows(table, ctx.segmentRows);
  const select = columns.map((c) => quoteIdent(c.name)).join(", ");
  const refs: SegmentRef[] = [];
  let after = -1e19; // below every rowid, as in export.ts
  for (let part = 0; ; part++) {
    const raw = ctx.sql
      .exec(
        `SELECT _rowid_ AS r, ${select} FROM ${quoteIdent(table.name)} WHERE _rowid_ > ? ORDER BY _rowid_ LIMIT ?`,
        after,
        rowsPerPart,
      )
      .raw();
    const data: unknown[][] = columns.map(() => []);
    const keys: string[] = [];
    const pkAt = table.primaryKey.map((c) => columns.findIndex((s) => s.name === c));
    let n = 0;
    for (const r of raw) {
      after = Number(r[0]);
      for (let j = 0; j < columns.length; j++) {
        const v = r[j + 1];
        data[j]!.push(v instanceof ArrayBuffer ? new Uint8Array(v) : v);
      }
      keys.push(keyText(pkAt.map((j) => r[j + 1])));
      n++;
    }
    if (n === 0) break;
    const name = `${firstLsn}-${last}${part > 0 ? `-${part}` : ""}`;
    refs.push(await putSegment(ctx, table, name, data, keys, firstLsn, last));
    if (n < rowsPerPart) break;
  }
  return refs;
}

/** Encodes one segment (+ its bloom filter) and writes both to R2. */
export async function putSegment(
  ctx: Pick<FlushContext, "bucket" | "projectId">,
  table: TableInfo,
  name: string,
  data: unknown[][],
  keys: string[],
  firstLsn: number,
  last: number,
): Promise<SegmentRef> {
  const columns = segmentColumnsOf(table);
  const key = segmentKey(ctx.projectId, table.name, `${name}.arrow`);
  const bloomKey = segmentKey(ctx.projectId, table.name, `${name}.bloom`);
  const { bytes, info } = encodeSegment(columns, data, {
    "hearth.table": table.name,
    "hearth.first_lsn": String(firstLsn),
    "hearth.last_lsn": String(last),
  });
  const bloom = buildBloom(keys);
  await withRetry(`writing ${key}`, () => ctx.bucket.put(key, bytes));
  await withRetry(`writing ${bloomKey}`, () => ctx.bucket.put(bloomKey, bloom));
  const vectorIndexes = await putVectorIndexes(ctx.bucket, ctx.projectId, table, name, columns, data);
  return {
    key,
    bloomKey,
    rows: info.rows,
    bytes: info.bytes,
    firstLsn,
    lastLsn: last,
    stats: info.stats,
    deleted: [],
    ...(vectorIndexes ? { vectorIndexes } : {}),
  };
}

/**
 * The catalog rows of `manifest` as the project `projectId`'s current version (idempotent):
 * its `manifests` row, a `segments` row per segment it lists, and `projects.manifest_version`
 * moved from the version before (or kept). Written by a flush's step 4 and, in the same batch
 * as the project's own rows, by a fork (workers/admin/fork.ts). One statement per segment: a
 * D1 statement binds at most 100 values.
 */
export function manifestStatements(
  db: DrizzleD1Database,
  projectId: string,
  manifest: Manifest,
): [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]] {
  const refs = Object.entries(manifest.tables).flatMap(([t, list]) => list.map((r) => ({ t, r })));
  const v = manifest.version;
  return [
    db
      .insert(manifests)
      .values({
        projectId,
        version: v,
        r2Key: manifestKey(projectId, v),
        lastLsn: manifest.lastLsn,
        segments: refs.length,
        rows: refs.reduce((s, x) => s + x.r.rows - x.r.deleted.length, 0),
        bytes: refs.reduce((s, x) => s + x.r.bytes, 0),
        createdAt: manifest.createdAt,
      })
      .onConflictDoNothing(),
    ...refs.map(({ t, r }) =>
      db
        .insert(segments)
        .values({
          projectId,
          version: v,
          r2Key: r.key,
          tableName: t,
          rows: r.rows,
          bytes: r.bytes,
          firstLsn: r.firstLsn,
          lastLsn: r.lastLsn,
          stats: JSON.stringify(r.stats),
        })
        .onConflictDoNothing(),
    ),
    db
      .update(projects)
      .set({ manifestVersion: v })
      .where(and(eq(projects.id, projectId), inArray(projects.manifestVersion, [v - 1, v]))),
  ];
}

/**
 * Step 4: the catalog rows of a committed manifest (idempotent). A D1 outage that outlasts
 * the retries is 503 HEARTH_CATALOG_UNAVAILABLE (workers/catalog/guard.ts).
 */
export async function commitCatalog(
  ctx: Pick<FlushContext, "catalog" | "projectId">,
  manifest: Manifest,
): Promise<void> {
  const db = drizzle(ctx.catalog);
  try {
    await retried(() => db.batch(manifestStatements(db, ctx.projectId, manifest)));
  } catch (err) {
    throw catalogFailure(err);
  }
  const now = await ctx.catalog
    .prepare("SELECT manifest_version AS v FROM projects WHERE id = ?")
    .bind(ctx.projectId)
    .first<{ v: number }>()
    .catch((err) => {
      throw catalogFailure(err);
    });
  if (now && now.v !== manifest.version) {
    throw new HearthError(
      "HEARTH_FLUSH_CONFLICT",
      `The catalog moved to manifest version ${now.v} while this flush committed ${manifest.version}`,
    );
  }
}

/** Step 5: the flushed rows leave the hot tier, in one transaction. */
function dropHot(ctx: FlushContext, manifest: Manifest): void {
  ctx.storage.transactionSync(() => {
    ctx.sql.exec("UPDATE _hearth_state SET muted = 1 WHERE id = 1");
    ctx.sql.exec("PRAGMA defer_foreign_keys = ON");
    if (ctx.schema) {
      for (const t of childrenFirst(ctx.schema)) deleteAll(ctx.sql, t);
    }
    ctx.sql.exec("UPDATE _hearth_state SET muted = 0 WHERE id = 1");
    ctx.store.clearShadows();
    ctx.store.setVersion(manifest.version);
    // The WAL keeps its retained tail past a flush (realtime and sync catch up from it).
    trimWal(ctx.sql, ctx.walRetention ?? DEFAULT_WAL_RETENTION, manifest.lastLsn, Date.now());
    ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
  });
  ctx.store.install(manifest);
}

/** Deletes every row of a table; a self-reference with RESTRICT is peeled leaf by leaf. */
function deleteAll(sql: SqlStorage, table: TableInfo): void {
  try {
    sql.exec(`DELETE FROM ${quoteIdent(table.name)}`);
  } catch (err) {
    if (!/constraint/i.test(String(err))) throw err;
    const self = table.def.columns;
    const refCol = Object.entries(self).find(([, c]) => c.references?.startsWith(`${table.name}.`));
    if (!refCol) throw err;
    const [fk, def] = refCol;
    const target = def.references!.slice(table.name.length + 1);
    for (let i = 0; i < 10_000; i++) {
      const n = Number(sql.exec(`SELECT count(*) AS n FROM ${quoteIdent(table.name)}`).one().n);
      if (n === 0) return;
      sql.exec(
        `DELETE FROM ${quoteIdent(table.name)} WHERE ${quoteIdent(target)} NOT IN (SELECT ${quoteIdent(fk)} FROM ${quoteIdent(table.name)} WHERE ${quoteIdent(fk)} IS NOT NULL)`,
      );
    }
    throw err;
  }
}

/** Whether there is anything a flush would change. */
export function needsFlush(ctx: FlushContext, current: Manifest): boolean {
  if (ctx.store.shadowCount > 0) return true;
  if (current.schemaVersion !== ctx.schemaVersion) return true;
  return hotRowCount(ctx.sql, ctx.schema) > 0;
}

export async function flush(ctx: FlushContext): Promise<FlushResult> {
  await recoverFlush(ctx);
  const current = await ctx.store.current();
  if (!needsFlush(ctx, current)) {
    return {
      flushed: false,
      version: current.version,
      segments: 0,
      rows: 0,
      bytes: 0,
      lastLsn: current.lastLsn,
    };
  }
  const version = current.version + 1;
  const last = Math.max(lastLsn(ctx.sql), current.lastLsn);
  const marker: Marker = { flushId: crypto.randomUUID(), version, lastLsn: last };
  ctx.sql.exec(
    "INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('flush_inflight', ?)",
    JSON.stringify(marker),
  );
  const written: Record<string, SegmentRef[]> = {};
  try {
    for (const table of ctx.schema?.tables.values() ?? []) {
      written[table.name] = await writeTable(ctx, table, current.lastLsn + 1, last);
    }
  } catch (err) {
    // Nothing refers to what was written: the flush simply did not happen.
    ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
    throw err;
  }
  await ctx.hooks?.afterStep?.("segments");

  const tables: Record<string, SegmentRef[]> = {};
  for (const table of ctx.schema?.tables.values() ?? []) {
    const shadows = ctx.store.shadowsOf(table.name);
    const bySegment = new Map<string, string[]>();
    for (const { seg, text } of shadows.values()) {
      const list = bySegment.get(seg) ?? [];
      list.push(text);
      bySegment.set(seg, list);
    }
    const kept = (current.tables[table.name] ?? []).map((ref) => {
      const extra = bySegment.get(ref.key);
      if (!extra) return ref;
      const merged = new Set([...ref.deleted, ...extra]);
      return { ...ref, deleted: [...merged] };
    });
    // A segment whose every row is gone is dropped from the manifest.
    const live = kept.filter((r) => r.deleted.length < r.rows);
    const all = [...live, ...(written[table.name] ?? [])];
    if (all.length > 0) tables[table.name] = all;
  }
  const manifest: Manifest = {
    version,
    projectId: ctx.projectId,
    createdAt: new Date().toISOString(),
    lastLsn: last,
    flushId: marker.flushId,
    schema: ctx.schema?.schema ?? null,
    schemaVersion: ctx.schemaVersion,
    sequences: { ...current.sequences, ...sequences(ctx.sql, ctx.schema) },
    tables,
  };
  const key = manifestKey(ctx.projectId, version);
  // A put that fails after landing is settled by recovery (the marker's flushId).
  const put = await withRetry(`writing ${key}`, () =>
    ctx.bucket.put(key, JSON.stringify(manifest), {
      onlyIf: { etagDoesNotMatch: "*" },
      httpMetadata: { contentType: "application/json" },
    }),
  );
  if (put === null) {
    const existing = await withRetry(`reading ${key}`, () => ctx.bucket.get(key));
    const other = existing ? ((await existing.json()) as Manifest) : null;
    if (other?.flushId !== marker.flushId) {
      ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
      throw new HearthError(
        "HEARTH_FLUSH_CONFLICT",
        `Manifest version ${version} was committed by another flush`,
        {
          hint: "Retry: the next flush starts from the newest manifest.",
        },
      );
    }
  }
  await ctx.hooks?.afterStep?.("manifest");
  await commitOrForget(ctx, manifest);
  await ctx.hooks?.afterStep?.("catalog");
  dropHot(ctx, manifest);
  await ctx.hooks?.afterStep?.("drop");
  const refs = Object.values(written).flat();
  return {
    flushed: true,
    version,
    segments: refs.length,
    rows: refs.reduce((s, r) => s + r.rows, 0),
    bytes: refs.reduce((s, r) => s + r.bytes, 0),
    lastLsn: last,
  };
}

/**
 * Finishes or forgets a flush that a crash interrupted (see the header). Runs at start-up
 * and before every flush.
 */
export async function recoverFlush(ctx: FlushContext): Promise<void> {
  const marker = readMarker(ctx.sql);
  if (!marker) return;
  const key = manifestKey(ctx.projectId, marker.version);
  const obj = await withRetry(`reading ${key}`, () => ctx.bucket.get(key));
  const manifest = obj ? ((await obj.json()) as Manifest) : null;
  if (!manifest || manifest.flushId !== marker.flushId) {
    ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
    return;
  }
  await commitOrForget(ctx, manifest);
  dropHot(ctx, manifest);
}

/** Step 4; a conflict (another writer moved the catalog) abandons the flush for good. */
async function commitOrForget(ctx: FlushContext, manifest: Manifest): Promise<void> {
  try {
    await commitCatalog(ctx, manifest);
  } catch (err) {
    if (err instanceof HearthError && err.code === "HEARTH_FLUSH_CONFLICT") {
      ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
    }
    throw err;
  }
}
