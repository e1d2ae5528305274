/**
 * Vector indexes of segments in R2: built by `putSegment` (flush, compaction) beside each
 * segment, read on demand into a per-object LRU bounded in bytes. An index is immutable
 * like its segment; a failed or corrupt read falls back to an exact scan of the segment.
 */

import type { Metric } from "../../shared/vector.ts";
import {
  buildIvf,
  decodeIvf,
  encodeIvf,
  type IvfIndex,
  probeIvf,
  vectorMatrix,
} from "../../shared/vector-index.ts";
import type { ColdStore, ColdView, LoadedSegment } from "../cold/cold-store.ts";
import { segmentKey, withRetry } from "../cold/manifest.ts";
import type { ColumnInfo, TableInfo } from "../schema-index.ts";

/** Segments with fewer rows are scanned exactly: an index would not pay for itself. */
export const VECTOR_INDEX_MIN_ROWS = 2048;
const CACHE_BYTES = 64 * 1024 * 1024;

export interface IndexProbe {
  rows(query: Float32Array, metric: Metric, probes?: number): Uint32Array;
}

class IndexCache {
  private readonly entries = new Map<string, { index: IvfIndex; bytes: number }>();
  private bytes = 0;

  get(key: string): IvfIndex | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.index;
  }

  set(key: string, index: IvfIndex): void {
    const bytes = index.centroids.byteLength + index.offsets.byteLength + index.ids.byteLength;
    this.entries.set(key, { index, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= CACHE_BYTES || k === key) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}

const caches = new WeakMap<ColdStore, IndexCache>();

/** The indexes of `column` for the root table's loaded segments (those that have one). */
export async function loadIndexes(
  store: ColdStore,
  view: ColdView,
  table: TableInfo,
  column: ColumnInfo,
): Promise<Map<LoadedSegment, IndexProbe>> {
  let cache = caches.get(store);
  if (!cache) {
    cache = new IndexCache();
    caches.set(store, cache);
  }
  const out = new Map<LoadedSegment, IndexProbe>();
  for (const seg of view.segments.get(table.name) ?? []) {
    const key = seg.ref.vectorIndexes?.[column.name];
    if (!key) continue;
    let index = cache.get(key);
    if (!index) {
      try {
        const obj = await withRetry(`reading ${key}`, () => store.bucket().get(key));
        if (!obj) continue;
        index = decodeIvf(new Uint8Array(await obj.arrayBuffer()));
      } catch (err) {
        console.error(`vector index ${key} unreadable, scanning the segment instead`, err);
        continue;
      }
      if (index.dimensions !== column.def.dimensions) continue;
      cache.set(key, index);
    }
    const found = index;
    out.set(seg, { rows: (query, metric, probes) => probeIvf(found, query, metric, probes) });
  }
  return out;
}

/**
 * Builds and writes the indexes of a new segment's vector columns (at least
 * VECTOR_INDEX_MIN_ROWS rows with a vector); returns column → R2 key.
 */
export async function putVectorIndexes(
  bucket: R2Bucket,
  projectId: string,
  table: TableInfo,
  name: string,
  columns: { name: string; type: string; dimensions?: number }[],
  data: unknown[][],
): Promise<Record<string, string> | undefined> {
  const out: Record<string, string> = {};
  for (const [j, col] of columns.entries()) {
    if (col.type !== "vector" || col.dimensions === undefined) continue;
    const { matrix, rows } = vectorMatrix(data[j]!, col.dimensions);
    if (rows.length < VECTOR_INDEX_MIN_ROWS) continue;
    const bytes = encodeIvf(buildIvf(matrix, col.dimensions, rows));
    const key = segmentKey(projectId, table.name, `${name}.ivf-${encodeURIComponent(col.name)}`);
    await withRetry(`writing ${key}`, () => bucket.put(key, bytes));
    out[col.name] = key;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
