/**
 * Compaction and garbage collection of the cold tier.
 *
 * Compaction runs right after a flush, in the same exclusive section (no shadows exist
 * then, so no promoted row points at a segment about to be replaced). Per table, the small
 * segments (fewer live rows than a quarter of a full one) and the ones that are mostly
 * tombstones are rewritten as few full segments holding only their live rows; the new
 * manifest version is committed like a flush's (marker, CAS put, catalog).
 *
 * Garbage collection drops manifest versions older than the retention window (never the
 * current one) from the catalog and R2, then deletes each segment object no kept manifest
 * of any project refers to any more (forks share segments by reference).
 */
import type { TableInfo } from "../schema-index.ts";
import { commitCatalog, type FlushContext, type Marker, partRows, putSegment } from "./flush.ts";
import { keyText, type Manifest, manifestKey, type SegmentRef, withRetry } from "./manifest.ts";

export interface CompactResult {
  compacted: number;
  written: number;
  version: number;
}

function live(r: SegmentRef): number {
  return r.rows - r.deleted.length;
}

/** The segments of a table worth rewriting, or none. */
function pick(refs: SegmentRef[], segmentRows: number): SegmentRef[] {
  const small = Math.max(1, Math.floor(segmentRows / 4));
  const chosen = refs.filter((r) => live(r) < small || r.deleted.length > r.rows * 0.3);
  if (chosen.length >= 2) return chosen;
  if (chosen.length === 1 && chosen[0]!.deleted.length > chosen[0]!.rows * 0.3) return chosen;
  return [];
}

export async function compact(ctx: FlushContext): Promise<CompactResult> {
  const current = await ctx.store.current();
  if (ctx.store.shadowCount > 0 || !ctx.schema) return { compacted: 0, written: 0, version: current.version };
  const version = current.version + 1;
  const tables: Record<string, SegmentRef[]> = { ...current.tables };
  let compacted = 0;
  let written = 0;
  for (const table of ctx.schema.tables.values()) {
    const refs = current.tables[table.name] ?? [];
    const chosen = pick(refs, partRows(table, ctx.segmentRows));
    if (chosen.length === 0) continue;
    const fresh = await rewrite(ctx, table, chosen, version);
    const gone = new Set(chosen.map((r) => r.key));
    tables[table.name] = [...refs.filter((r) => !gone.has(r.key)), ...fresh].sort(
      (a, b) => a.firstLsn - b.firstLsn,
    );
    if (tables[table.name]!.length === 0) delete tables[table.name];
    compacted += chosen.length;
    written += fresh.length;
  }
  if (compacted === 0) return { compacted: 0, written: 0, version: current.version };
  await ctx.hooks?.afterStep?.("compact-segments");
  const marker: Marker = { flushId: crypto.randomUUID(), version, lastLsn: current.lastLsn };
  ctx.sql.exec(
    "INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('flush_inflight', ?)",
    JSON.stringify(marker),
  );
  const manifest: Manifest = {
    ...current,
    version,
    createdAt: new Date().toISOString(),
    flushId: marker.flushId,
    tables,
  };
  const key = manifestKey(ctx.projectId, version);
  const put = await withRetry(`writing ${key}`, () =>
    ctx.bucket.put(key, JSON.stringify(manifest), { onlyIf: { etagDoesNotMatch: "*" } }),
  );
  if (put === null) {
    ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
    return { compacted: 0, written: 0, version: current.version };
  }
  await ctx.hooks?.afterStep?.("compact-manifest");
  await commitCatalog(ctx, manifest);
  await ctx.hooks?.afterStep?.("compact-catalog");
  ctx.storage.transactionSync(() => {
    ctx.store.setVersion(version);
    ctx.sql.exec("DELETE FROM _hearth_meta WHERE key = 'flush_inflight'");
  });
  ctx.store.install(manifest);
  return { compacted, written, version };
}

/** The live rows of `chosen`, as full segments named after the LSN range they cover. */
async function rewrite(
  ctx: FlushContext,
  table: TableInfo,
  chosen: SegmentRef[],
  version: number,
): Promise<SegmentRef[]> {
  const first = Math.min(...chosen.map((r) => r.firstLsn));
  const last = Math.max(...chosen.map((r) => r.lastLsn));
  const ncols = table.columns.size;
  const out: SegmentRef[] = [];
  let data: unknown[][] = Array.from({ length: ncols }, () => []);
  let keys: string[] = [];
  const emit = async () => {
    if (keys.length === 0) return;
    const name = `${first}-${last}-c${version}${out.length > 0 ? `-${out.length}` : ""}`;
    out.push(await putSegment(ctx, table, name, data, keys, first, last));
    data = Array.from({ length: ncols }, () => []);
    keys = [];
  };
  const pkAt = table.primaryKey.map((c) => [...table.columns.keys()].indexOf(c));
  const rowsPerPart = partRows(table, ctx.segmentRows);
  for (const ref of chosen) {
    const seg = await ctx.store.segment(ref, table);
    const layout = seg.columnsFor(table);
    for (let i = 0; i < seg.data.rows; i++) {
      if (seg.deleted.has(seg.keyAt(i))) continue;
      const row = layout.map((c) => (Array.isArray(c) ? c[i] : c.value));
      row.forEach((v, j) => {
        data[j]!.push(v);
      });
      keys.push(keyText(pkAt.map((j) => row[j])));
      if (keys.length >= rowsPerPart) await emit();
    }
  }
  await emit();
  return out;
}

export interface GcResult {
  manifests: number;
  objects: number;
}

/** Drops manifests past retention and the segment objects nothing refers to any more. */
export async function collectGarbage(
  ctx: Pick<FlushContext, "catalog" | "bucket" | "projectId">,
  currentVersion: number,
  retentionMs: number,
): Promise<GcResult> {
  const db = ctx.catalog;
  const cutoff = new Date(Date.now() - retentionMs).toISOString();
  const old = await db
    // A version is kept for the retention window after it was *replaced* (its successor's
    // creation), so an as_of time within the window always finds the state of that time.
    .prepare(
      "SELECT m.version AS version FROM manifests m WHERE m.project_id = ?1 AND m.version < ?2 AND (SELECT n.created_at FROM manifests n WHERE n.project_id = ?1 AND n.version = m.version + 1) <= ?3 ORDER BY m.version LIMIT 200",
    )
    .bind(ctx.projectId, currentVersion, cutoff)
    .all<{ version: number }>();
  const versions = old.results.map((r) => r.version);
  if (versions.length === 0) return { manifests: 0, objects: 0 };
  const marks = versions.map(() => "?").join(", ");
  const candidates = await db
    .prepare(`SELECT DISTINCT r2_key AS k FROM segments WHERE project_id = ? AND version IN (${marks})`)
    .bind(ctx.projectId, ...versions)
    .all<{ k: string }>();
  await withRetry("dropping expired manifests from the catalog", () =>
    db.batch([
      db
        .prepare(`DELETE FROM segments WHERE project_id = ? AND version IN (${marks})`)
        .bind(ctx.projectId, ...versions),
      db
        .prepare(`DELETE FROM manifests WHERE project_id = ? AND version IN (${marks})`)
        .bind(ctx.projectId, ...versions),
    ]),
  );
  const doomed: string[] = [];
  for (const { k } of candidates.results) {
    const still = await db.prepare("SELECT 1 AS x FROM segments WHERE r2_key = ? LIMIT 1").bind(k).first();
    if (!still) doomed.push(k, k.replace(/\.arrow$/, ".bloom"));
  }
  // vector indexes beside the doomed segments (docs/vectors.md): `<segment>.ivf-<column>`
  const indexes: string[] = [];
  for (let i = 0; i < doomed.length; i += 2) {
    const prefix = doomed[i]!.replace(/\.arrow$/, ".ivf-");
    const listed = await withRetry("listing vector indexes", () => ctx.bucket.list({ prefix }));
    for (const o of listed.objects) indexes.push(o.key);
  }
  const manifestKeys = versions.map((v) => manifestKey(ctx.projectId, v));
  const all = [...doomed, ...indexes, ...manifestKeys];
  for (let i = 0; i < all.length; i += 1000) {
    const page = all.slice(i, i + 1000);
    await withRetry("deleting expired objects", () => ctx.bucket.delete(page));
  }
  return { manifests: versions.length, objects: doomed.length / 2 };
}
