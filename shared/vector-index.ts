/**
 * IVF-flat: the approximate index of one vector column of one segment (docs/vectors.md,
 * "Index format"). k-means centroids split the rows into lists; a query scans only the rows
 * of the `probes` lists whose centroids are nearest to it, with exact distances on the
 * segment's float32 values.
 *
 * Layout (little-endian): "HVI1", u32 version, u32 dimensions, u32 lists, u32 rows,
 * f32[lists × dimensions] centroids, u32[lists + 1] list offsets, u32[rows] row numbers;
 * version 2 then holds f32[lists] spreads and f32[rows × dimensions], the vectors in
 * row-number order (list by list), so a query reads only its probed lists' vectors with
 * ranged reads, without the segment. Version 1 (no spreads, no vectors) is still read: its
 * lists are scanned in the segment.
 */
import type { Metric } from "./vector.ts";

const MAGIC = 0x31495648; // "HVI1"
const VERSION = 2;
/** Bytes of the fixed header: magic, version, dimensions, lists, rows. */
export const IVF_HEADER_BYTES = 20;
const HEADER = IVF_HEADER_BYTES;

export interface IvfIndex {
  dimensions: number;
  lists: number;
  centroids: Float32Array;
  offsets: Uint32Array;
  ids: Uint32Array;
  /**
   * Per list: the mean squared distance of its rows to its centroid (version 2). Ranking
   * lists for l2 by ‖q − c‖² + spread, the mean squared distance from q to the list's rows,
   * keeps a list whose centroid is the mean of many far-apart clusters (near every query,
   * but none of its rows is) from being probed by every query.
   */
  spread?: Float32Array;
  /** 1: centroids and row numbers only; 2: followed by the list-ordered vectors at `vectorsAt` */
  version?: number;
}

export interface IvfHeader {
  version: number;
  dimensions: number;
  lists: number;
  rows: number;
  /** bytes of the header, centroids, offsets and row numbers: where version 2's vectors start */
  vectorsAt: number;
  /** bytes of the whole object */
  size: number;
}

/** Where a version 2 index's vectors start: after its header, centroids, offsets and row numbers. */
export function ivfVectorsAt(index: IvfIndex): number {
  const spreads = index.version === 2 ? index.lists : 0;
  return HEADER + 4 * (index.centroids.length + index.offsets.length + index.ids.length + spreads);
}

/** The header of an index (its first IVF_HEADER_BYTES bytes), checked. */
export function readIvfHeader(bytes: Uint8Array): IvfHeader {
  if (bytes.byteLength < HEADER) throw new Error("vector index: too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (view.getUint32(0, true) !== MAGIC || (version !== 1 && version !== 2))
    throw new Error("vector index: bad magic or version");
  const dimensions = view.getUint32(8, true);
  const lists = view.getUint32(12, true);
  const rows = view.getUint32(16, true);
  const vectorsAt = HEADER + 4 * (lists * dimensions + lists + 1 + rows + (version === 2 ? lists : 0));
  const size = version === 2 ? vectorsAt + 4 * rows * dimensions : vectorsAt;
  return { version, dimensions, lists, rows, vectorsAt, size };
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

/**
 * k-means++ seeds: each next seed is a sample point drawn with probability proportional to
 * its squared distance from the nearest seed so far. Random seeds leave some clusters of the
 * data without a seed; their points then join a centroid that drifts to the mean of many
 * clusters, which is near every query: a few huge lists that every query probes.
 */
function seedPlusPlus(
  matrix: Float32Array,
  dims: number,
  sample: Uint32Array,
  centroids: Float32Array,
  lists: number,
  random: () => number,
): void {
  const m = sample.length;
  const near = new Float64Array(m).fill(Number.POSITIVE_INFINITY);
  let pick = Math.floor(random() * m);
  for (let l = 0; l < lists; l++) {
    const r = sample[pick]!;
    centroids.set(matrix.subarray(r * dims, (r + 1) * dims), l * dims);
    if (l === lists - 1) break;
    let total = 0;
    for (let j = 0; j < m; j++) {
      const d = sqDist(matrix, sample[j]! * dims, centroids, l * dims, dims);
      if (d < near[j]!) near[j] = d;
      total += near[j]!;
    }
    let x = random() * total;
    pick = m - 1;
    for (let j = 0; j < m; j++) {
      x -= near[j]!;
      if (x <= 0) {
        pick = j;
        break;
      }
    }
  }
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
  opts: { lists?: number; iterations?: number; sample?: number; seeding?: "random" | "plusplus" } = {},
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
  if (opts.seeding === "random") {
    for (let l = 0; l < lists; l++)
      centroids.set(matrix.subarray(sample[l]! * dims, (sample[l]! + 1) * dims), l * dims);
  } else seedPlusPlus(matrix, dims, sample, centroids, lists, random);
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
  const spread = new Float32Array(lists);
  for (let k = 0; k < n; k++)
    spread[assign[k]!]! += sqDist(matrix, rows[k]! * dims, centroids, assign[k]! * dims, dims);
  for (let l = 0; l < lists; l++) if (counts[l]! > 0) spread[l]! /= counts[l]!;
  const offsets = new Uint32Array(lists + 1);
  for (let l = 0; l < lists; l++) offsets[l + 1] = offsets[l]! + counts[l]!;
  const fill = offsets.slice(0, lists);
  const ids = new Uint32Array(n);
  for (let k = 0; k < n; k++) ids[fill[assign[k]!]!++] = rows[k]!;
  return { dimensions: dims, lists, centroids, offsets, ids, spread, version: 2 };
}

/**
 * The index as bytes: version 2 with the spreads and the vectors of `matrix` (row r at
 * r × dimensions) in list order when it is given, else version 1 (for tests of the old reader).
 */
export function encodeIvf(index: IvfIndex, matrix?: Float32Array): Uint8Array {
  const { dimensions, lists, centroids, offsets, ids } = index;
  const parts: ArrayBufferView[] = [centroids, offsets, ids];
  if (matrix) parts.push(index.spread ?? new Float32Array(lists));
  const indexBytes = HEADER + parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(indexBytes + (matrix ? 4 * ids.length * dimensions : 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, matrix ? VERSION : 1, true);
  view.setUint32(8, dimensions, true);
  view.setUint32(12, lists, true);
  view.setUint32(16, ids.length, true);
  let at = HEADER;
  for (const part of parts) {
    out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), at);
    at += part.byteLength;
  }
  if (matrix) {
    const vectors = new Float32Array(out.buffer, indexBytes, ids.length * dimensions);
    for (let j = 0; j < ids.length; j++)
      vectors.set(matrix.subarray(ids[j]! * dimensions, (ids[j]! + 1) * dimensions), j * dimensions);
  }
  return out;
}

/**
 * Reads an index back, checking its header and size (bytes from R2 are not trusted blindly):
 * a whole object, or for version 2 its index part alone (the first `vectorsAt` bytes).
 */
export function decodeIvf(bytes: Uint8Array): IvfIndex {
  const { version, dimensions, lists, rows, vectorsAt, size } = readIvfHeader(bytes);
  if (bytes.byteLength !== size && bytes.byteLength !== vectorsAt)
    throw new Error(`vector index: ${bytes.byteLength} bytes, header says ${size}`);
  const copy = bytes.slice(HEADER, vectorsAt).buffer; // aligned
  const centroids = new Float32Array(copy, 0, lists * dimensions);
  const offsets = new Uint32Array(copy, 4 * lists * dimensions, lists + 1);
  const ids = new Uint32Array(copy, 4 * (lists * dimensions + lists + 1), rows);
  const spread =
    version === 2 ? new Float32Array(copy, 4 * (lists * dimensions + lists + 1 + rows), lists) : undefined;
  if (offsets[lists] !== rows) throw new Error("vector index: list offsets do not add up");
  for (let l = 0; l < lists; l++)
    if (offsets[l]! > offsets[l + 1]!) throw new Error("vector index: list offsets go backwards");
  return { dimensions, lists, centroids, offsets, ids, version, ...(spread ? { spread } : {}) };
}

/**
 * Default lists probed: a quarter. On the bench's clustered data (bench/vectors.bench.mjs,
 * 100k × 384 in 10 segments) a fifth gave recall@10 0.948, a quarter 0.975 (42 % of the rows
 * read), a third 0.992 (60 %).
 */
export function defaultProbes(lists: number): number {
  return Math.min(lists, Math.max(8, Math.ceil(lists / 4)));
}

/** The `probes` lists whose centroids rank nearest to the query by `metric`, nearest first. */
export function nearestLists(
  index: IvfIndex,
  query: Float32Array,
  metric: Metric,
  probes?: number,
): number[] {
  const { lists, dimensions: dims, centroids, spread } = index;
  const p = Math.min(lists, probes ?? defaultProbes(lists));
  const score = new Float64Array(lists);
  let qn = 0;
  for (let i = 0; i < dims; i++) qn += query[i]! * query[i]!;
  for (let l = 0; l < lists; l++) {
    const o = l * dims;
    if (metric === "l2") {
      score[l] = sqDist(centroids, o, query, 0, dims) + (spread?.[l] ?? 0);
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
  return Array.from({ length: lists }, (_, l) => l)
    .sort((a, b) => score[a]! - score[b]!)
    .slice(0, p);
}

/** Row numbers of the `probes` lists whose centroids rank nearest to the query by `metric`. */
export function probeIvf(index: IvfIndex, query: Float32Array, metric: Metric, probes?: number): Uint32Array {
  const { offsets, ids } = index;
  const order = nearestLists(index, query, metric, probes);
  let total = 0;
  for (const l of order) total += offsets[l + 1]! - offsets[l]!;
  const out = new Uint32Array(total);
  let at = 0;
  for (const l of order) {
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
