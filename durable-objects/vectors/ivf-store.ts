/**
 * Vector indexes of segments in R2: built by `putSegment` (flush, compaction) beside each
 * segment, read on demand. An index is immutable like its segment. Two bounded LRUs per
 * object: the index parts (centroids, list offsets, row numbers) and, for version 2, the
 * vectors of the lists queries probed, fetched with ranged reads, so an approximate search
 * never holds a table's vectors: at most half the segment cache's bytes
 * (HEARTH_SEGMENT_CACHE_BYTES) of them. A failed or corrupt read falls back to an exact scan.
 */

import {
  buildIvf,
  decodeIvf,
  encodeIvf,
  IVF_HEADER_BYTES,
  type IvfIndex,
  ivfVectorsAt,
  readIvfHeader,
  vectorMatrix,
} from "../../shared/vector-index.ts";
import type { ColdStore } from "../cold/cold-store.ts";
import { type SegmentRef, segmentKey, withRetry } from "../cold/manifest.ts";
import type { ColumnInfo, TableInfo } from "../schema-index.ts";

/** Segments with fewer rows are scanned exactly: an index would not pay for itself. */
export const VECTOR_INDEX_MIN_ROWS = 2048;
const INDEX_CACHE_BYTES = 16 * 1024 * 1024;
const MIN_LIST_CACHE_BYTES = 16 * 1024 * 1024;

/** A byte-bounded LRU (a Map keeps insertion order: the first entries are the oldest). */
class Lru<T> {
  private readonly entries = new Map<string, { value: T; bytes: number }>();
  private bytes = 0;
  constructor(private readonly max: number) {}

  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: T, bytes: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.max || k === key) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}

interface Caches {
  indexes: Lru<IvfIndex>;
  lists: Lru<Float32Array>;
}

const caches = new WeakMap<ColdStore, Caches>();

function cachesOf(store: ColdStore): Caches {
  let c = caches.get(store);
  if (!c) {
    c = {
      indexes: new Lru(INDEX_CACHE_BYTES),
      lists: new Lru(Math.max(MIN_LIST_CACHE_BYTES, store.maxCacheBytes / 2)),
    };
    caches.set(store, c);
  }
  return c;
}

/** An index of one segment: its key in R2 and the decoded index part. */
export interface SegmentIndex {
  key: string;
  index: IvfIndex;
}

/**
 * The indexes of `column` for these segments (those that have a readable one), by segment
 * key. Only the index part of a version 2 object is read (two ranged reads), not its vectors.
 */
export async function loadIndexes(
  store: ColdStore,
  refs: readonly SegmentRef[],
  column: ColumnInfo,
): Promise<Map<string, SegmentIndex>> {
  const { indexes } = cachesOf(store);
  const out = new Map<string, SegmentIndex>();
  await Promise.all(
    refs.map(async (ref) => {
      const key = ref.vectorIndexes?.[column.name];
      if (!key) return;
      let index = indexes.get(key);
      if (!index) {
        try {
          const bucket = store.bucket();
          const head = await withRetry(`reading ${key}`, () =>
            bucket.get(key, { range: { offset: 0, length: IVF_HEADER_BYTES } }),
          );
          if (!head) return;
          const { vectorsAt } = readIvfHeader(new Uint8Array(await head.arrayBuffer()));
          const obj = await withRetry(`reading ${key}`, () =>
            bucket.get(key, { range: { offset: 0, length: vectorsAt } }),
          );
          if (!obj) return;
          index = decodeIvf(new Uint8Array(await obj.arrayBuffer()));
        } catch (err) {
          console.error(`vector index ${key} unreadable, scanning the segment instead`, err);
          return;
        }
        if (index.dimensions !== column.def.dimensions) return;
        indexes.set(key, index, index.centroids.byteLength + index.offsets.byteLength + index.ids.byteLength);
      }
      out.set(ref.key, { key, index });
    }),
  );
  return out;
}

/**
 * The vectors of some lists of a version 2 index (list → float32s, `dimensions` per row in
 * the list's row-number order), through the list cache; runs of adjacent lists not cached
 * are read with one ranged read each.
 */
export async function readLists(
  store: ColdStore,
  { key, index }: SegmentIndex,
  lists: readonly number[],
): Promise<Map<number, Float32Array>> {
  const cache = cachesOf(store).lists;
  const out = new Map<number, Float32Array>();
  const missing: number[] = [];
  for (const l of lists) {
    const hit = cache.get(`${key}#${l}`);
    if (hit) out.set(l, hit);
    else missing.push(l);
  }
  missing.sort((a, b) => a - b);
  const runs: number[][] = [];
  for (const l of missing) {
    const run = runs[runs.length - 1];
    if (run && run[run.length - 1] === l - 1) run.push(l);
    else runs.push([l]);
  }
  const { offsets, dimensions: dims } = index;
  const vectorsAt = ivfVectorsAt(index);
  const bucket = store.bucket();
  await Promise.all(
    runs.map(async (run) => {
      const first = offsets[run[0]!]!;
      const end = offsets[run[run.length - 1]! + 1]!;
      const length = (end - first) * dims * 4;
      let bytes = new Uint8Array(0);
      if (length > 0) {
        const obj = await withRetry(`reading ${key}`, () =>
          bucket.get(key, { range: { offset: vectorsAt + first * dims * 4, length } }),
        );
        if (!obj) throw new Error(`vector index ${key} is missing from the bucket`);
        bytes = new Uint8Array(await obj.arrayBuffer());
        if (bytes.byteLength !== length) throw new Error(`vector index ${key}: short read`);
      }
      for (const l of run) {
        const from = (offsets[l]! - first) * dims * 4;
        const to = (offsets[l + 1]! - first) * dims * 4;
        const vectors = new Float32Array(bytes.slice(from, to).buffer);
        cache.set(`${key}#${l}`, vectors, vectors.byteLength + 64);
        out.set(l, vectors);
      }
    }),
  );
  return out;
}

/**
 * Builds and writes the indexes of a new segment's vector columns (at least
 * VECTOR_INDEX_MIN_ROWS rows with a vector), version 2 with the vectors in list order;
 * returns column → R2 key.
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
    const bytes = encodeIvf(buildIvf(matrix, col.dimensions, rows), matrix);
    const key = segmentKey(projectId, table.name, `${name}.ivf-${encodeURIComponent(col.name)}`);
    await withRetry(`writing ${key}`, () => bucket.put(key, bytes));
    out[col.name] = key;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
