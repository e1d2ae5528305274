/**
 * IVF-flat: the approximate index of one vector column of one segment (docs/vectors.md,
 * "Index format"). k-means centroids split the rows into lists; a query scans only the rows
 * of the `probes` lists whose centroids are nearest to it, with exact distances on the
 * segment's own float32 values. The index holds no vectors, only centroids and row numbers.
 *
 * Layout (little-endian): "HVI1", u32 version, u32 dimensions, u32 lists, u32 rows,
 * f32[lists × dimensions] centroids, u32[lists + 1] list offsets, u32[rows] row numbers.
 */
import type { Metric } from "./vector.ts";

const MAGIC = 0x31495648; // "HVI1"
const VERSION = 1;
const HEADER = 20;

export interface IvfIndex {
  dimensions: number;
  lists: number;
  centroids: Float32Array;
  offsets: Uint32Array;
  ids: Uint32Array;
}

/** Deterministic xorshift32 for sampling and seeding: the same segment gives the same index. */
function rng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

function sqDist(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const d0 = a[ao + i]! - b[bo + i]!;
    const d1 = a[ao + i + 1]! - b[bo + i + 1]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
  }
  if (i < n) {
    const d = a[ao + i]! - b[bo + i]!;
    s0 += d * d;
  }
  return s0 + s1;
}

/** The nearest centroid by squared distance; a partial sum past the best so far stops early. */
function nearestCentroid(c: Float32Array, lists: number, v: Float32Array, vo: number, dims: number): number {
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  for (let l = 0; l < lists; l++) {
    const o = l * dims;
    let s = 0;
    let i = 0;
    while (i < dims) {
      const end = Math.min(dims, i + 16);
      for (; i < end; i++) {
        const d = c[o + i]! - v[vo + i]!;
        s += d * d;
      }
      if (s >= bestD) break;
    }
    if (s < bestD) {
      bestD = s;
      best = l;
    }
  }
  return best;
}

/** How many lists for `rows` vectors: about √rows / 2 (cheaper to build; probes scan longer lists), at most 1024. */
export function listsFor(rows: number): number {
  return Math.max(1, Math.min(1024, Math.round(Math.sqrt(rows) / 2)));
}

/**
 * Builds the index over `rows` (row numbers of the segment that have a vector; `matrix`
 * holds vector r at r × dims). k-means on a sample (random seeds, Lloyd rounds), then every
 * row goes to its nearest centroid.
 */
export function buildIvf(
  matrix: Float32Array,
  dims: number,
  rows: Uint32Array,
  opts: { lists?: number; iterations?: number; sample?: number } = {},
): IvfIndex {
  const n = rows.length;
  const lists = Math.min(n, opts.lists ?? listsFor(n));
  const random = rng(n * 31 + dims);
  // sample: a partial Fisher-Yates over the row numbers
  const pool = Uint32Array.from(rows);
  const m = Math.min(n, Math.max(lists, opts.sample ?? lists * 32));
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(random() * (n - i));
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  const sample = pool.subarray(0, m);
  const centroids = new Float32Array(lists * dims);
  for (let l = 0; l < lists; l++)
    centroids.set(matrix.subarray(sample[l]! * dims, (sample[l]! + 1) * dims), l * dims);
  const sums = new Float64Array(lists * dims);
  const counts = new Uint32Array(lists);
  for (let it = 0; it < (opts.iterations ?? 6); it++) {
    sums.fill(0);
    counts.fill(0);
    for (const r of sample) {
      const l = nearestCentroid(centroids, lists, matrix, r * dims, dims);
      counts[l]!++;
      const o = l * dims;
      const vo = r * dims;
      for (let i = 0; i < dims; i++) sums[o + i]! += matrix[vo + i]!;
    }
    for (let l = 0; l < lists; l++) {
      // an empty list takes a random sample point, so no centroid is wasted
      if (counts[l] === 0) {
        const r = sample[Math.floor(random() * m)]!;
        centroids.set(matrix.subarray(r * dims, (r + 1) * dims), l * dims);
        continue;
      }
      for (let i = 0; i < dims; i++) centroids[l * dims + i] = sums[l * dims + i]! / counts[l]!;
    }
  }
  const assign = new Uint32Array(n);
  counts.fill(0);
  for (let k = 0; k < n; k++) {
    const l = nearestCentroid(centroids, lists, matrix, rows[k]! * dims, dims);
    assign[k] = l;
    counts[l]!++;
  }
  const offsets = new Uint32Array(lists + 1);
  for (let l = 0; l < lists; l++) offsets[l + 1] = offsets[l]! + counts[l]!;
  const fill = offsets.slice(0, lists);
  const ids = new Uint32Array(n);
  for (let k = 0; k < n; k++) ids[fill[assign[k]!]!++] = rows[k]!;
  return { dimensions: dims, lists, centroids, offsets, ids };
}

export function encodeIvf(index: IvfIndex): Uint8Array {
  const { dimensions, lists, centroids, offsets, ids } = index;
  const out = new Uint8Array(HEADER + 4 * (centroids.length + offsets.length + ids.length));
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, dimensions, true);
  view.setUint32(12, lists, true);
  view.setUint32(16, ids.length, true);
  let at = HEADER;
  for (const part of [centroids, offsets, ids]) {
    out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), at);
    at += part.byteLength;
  }
  return out;
}

/** Reads an index back, checking its header and size (bytes from R2 are not trusted blindly). */
export function decodeIvf(bytes: Uint8Array): IvfIndex {
  if (bytes.byteLength < HEADER) throw new Error("vector index: too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC || view.getUint32(4, true) !== VERSION)
    throw new Error("vector index: bad magic or version");
  const dimensions = view.getUint32(8, true);
  const lists = view.getUint32(12, true);
  const rows = view.getUint32(16, true);
  const size = HEADER + 4 * (lists * dimensions + lists + 1 + rows);
  if (bytes.byteLength !== size)
    throw new Error(`vector index: ${bytes.byteLength} bytes, header says ${size}`);
  const copy = bytes.slice(HEADER).buffer; // aligned
  const centroids = new Float32Array(copy, 0, lists * dimensions);
  const offsets = new Uint32Array(copy, 4 * lists * dimensions, lists + 1);
  const ids = new Uint32Array(copy, 4 * (lists * dimensions + lists + 1), rows);
  if (offsets[lists] !== rows) throw new Error("vector index: list offsets do not add up");
  return { dimensions, lists, centroids, offsets, ids };
}

/** Default lists probed: enough for recall@10 ≥ 0.95 on clustered data (bench/vectors.bench.mjs). */
export function defaultProbes(lists: number): number {
  return Math.min(lists, Math.max(8, Math.ceil(lists / 5)));
}

/** Row numbers of the `probes` lists whose centroids rank nearest to the query by `metric`. */
export function probeIvf(index: IvfIndex, query: Float32Array, metric: Metric, probes?: number): Uint32Array {
  const { lists, dimensions: dims, centroids, offsets, ids } = index;
  const p = Math.min(lists, probes ?? defaultProbes(lists));
  const score = new Float64Array(lists);
  let qn = 0;
  for (let i = 0; i < dims; i++) qn += query[i]! * query[i]!;
  for (let l = 0; l < lists; l++) {
    const o = l * dims;
    if (metric === "l2") {
      score[l] = sqDist(centroids, o, query, 0, dims);
      continue;
    }
    let dot = 0;
    let cn = 0;
    for (let i = 0; i < dims; i++) {
      dot += centroids[o + i]! * query[i]!;
      cn += centroids[o + i]! * centroids[o + i]!;
    }
    score[l] = metric === "dot" ? -dot : cn === 0 || qn === 0 ? 2 : 1 - dot / Math.sqrt(cn * qn);
  }
  const order = Array.from({ length: lists }, (_, l) => l).sort((a, b) => score[a]! - score[b]!);
  let total = 0;
  for (let j = 0; j < p; j++) total += offsets[order[j]! + 1]! - offsets[order[j]!]!;
  const out = new Uint32Array(total);
  let at = 0;
  for (let j = 0; j < p; j++) {
    const l = order[j]!;
    out.set(ids.subarray(offsets[l]!, offsets[l + 1]!), at);
    at += offsets[l + 1]! - offsets[l]!;
  }
  return out;
}

/** A segment column's vectors (storage values) as one matrix, and the rows that have one. */
export function vectorMatrix(
  values: ArrayLike<unknown>,
  dims: number,
): { matrix: Float32Array; rows: Uint32Array } {
  const n = values.length;
  const matrix = new Float32Array(n * dims);
  const bytes = new Uint8Array(matrix.buffer);
  const rows: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const b = v instanceof Uint8Array ? v : v instanceof ArrayBuffer ? new Uint8Array(v) : null;
    if (!b || b.byteLength !== dims * 4) continue;
    bytes.set(b, i * dims * 4);
    rows.push(i);
  }
  return { matrix, rows: Uint32Array.from(rows) };
}
