/**
 * Vector columns (docs/vectors.md): `{ "type": "vector", "dimensions": N }`. On the wire a
 * vector is a JSON array of N finite numbers; in SQLite and in segments it is N float32s,
 * little-endian (a BLOB of 4·N bytes; FixedSizeList<Float32> in Arrow). Distances are
 * pgvector's: cosine `1 − cos`, l2 Euclidean, dot the negated inner product, so smaller is
 * always nearer.
 */
import { HearthError } from "./errors.ts";

export const MAX_DIMENSIONS = 4096;
export const METRICS = ["cosine", "l2", "dot"] as const;
export type Metric = (typeof METRICS)[number];

function invalid(column: string, message: string): HearthError {
  return new HearthError("HEARTH_VECTOR_INVALID", message, {
    details: `column "${column}" holds vectors`,
    hint: "Send a vector as a JSON array of finite numbers, e.g. [0.1, 0.2, 0.3].",
  });
}

/**
 * A wire value (JSON array, typed array, or its text from CSV/query strings) → float32 bytes.
 * `dimensions` is checked when given (writes); a filter value is cast without it.
 */
export function vectorToStorage(
  v: unknown,
  column: string,
  fromText = false,
  dimensions?: number,
): ArrayBuffer {
  let list: unknown = v;
  if (typeof v === "string" && (fromText || v.trimStart().startsWith("["))) {
    try {
      list = JSON.parse(v);
    } catch {
      throw invalid(column, `invalid vector text for column "${column}": ${JSON.stringify(v.slice(0, 80))}`);
    }
  }
  // float32 bytes as they are stored (an export's Parquet/Arrow binary column read back)
  if (list instanceof ArrayBuffer) list = new Uint8Array(list);
  if (list instanceof Uint8Array && list.byteLength % 4 === 0) list = float32Of(list.slice());
  if (list instanceof Float32Array || list instanceof Float64Array) list = Array.from(list);
  if (!Array.isArray(list)) {
    throw invalid(column, `column "${column}" expects a vector (a JSON array of numbers)`);
  }
  if (list.length === 0 || list.length > MAX_DIMENSIONS) {
    throw invalid(column, `a vector has 1 to ${MAX_DIMENSIONS} dimensions, got ${list.length}`);
  }
  if (dimensions !== undefined && list.length !== dimensions) {
    throw invalid(column, `expected ${dimensions} dimensions, not ${list.length}`);
  }
  const out = new Float32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw invalid(
        column,
        `element ${i} of the vector is ${JSON.stringify(x) ?? String(x)}, not a finite number`,
      );
    }
    const f = Math.fround(x);
    if (!Number.isFinite(f)) throw invalid(column, `element ${i} (${x}) is beyond the float32 range`);
    out[i] = f;
  }
  return out.buffer;
}

/** float32 bytes as a Float32Array without a copy when aligned (SQLite BLOBs, segment views). */
export function float32Of(v: ArrayBuffer | Uint8Array): Float32Array {
  if (v instanceof ArrayBuffer) return new Float32Array(v, 0, v.byteLength >> 2);
  if (v.byteOffset % 4 === 0) return new Float32Array(v.buffer, v.byteOffset, v.byteLength >> 2);
  return new Float32Array(v.slice().buffer);
}

/** The shortest decimal that reads back as the same float32 (0.1, not 0.10000000149011612). */
export function float32Text(f: number): number {
  for (let p = 6; p < 9; p++) {
    const n = Number(f.toPrecision(p));
    if (Math.fround(n) === f) return n;
  }
  return Number(f.toPrecision(9));
}

/** Stored bytes → the wire's JSON array. */
export function vectorFromStorage(v: ArrayBuffer | Uint8Array): number[] {
  const f = float32Of(v);
  const out = new Array<number>(f.length);
  for (let i = 0; i < f.length; i++) out[i] = float32Text(f[i]!);
  return out;
}

/** Squared norm, kept per stored vector by the index and per query. */
export function norm(a: Float32Array | Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

// The loops below run four independent sums: about twice as fast in V8 as one running sum
// (the adds no longer wait on each other), which is most of an exact search's time.

export function dot(a: Float32Array, b: Float32Array, n: number, bOffset = 0): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (let o = bOffset; i + 3 < n; i += 4, o += 4) {
    s0 += a[i]! * b[o]!;
    s1 += a[i + 1]! * b[o + 1]!;
    s2 += a[i + 2]! * b[o + 2]!;
    s3 += a[i + 3]! * b[o + 3]!;
  }
  for (; i < n; i++) s0 += a[i]! * b[bOffset + i]!;
  return s0 + s1 + s2 + s3;
}

export function l2Squared(a: Float32Array, b: Float32Array, n: number, bOffset = 0): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (let o = bOffset; i + 3 < n; i += 4, o += 4) {
    const d0 = a[i]! - b[o]!;
    const d1 = a[i + 1]! - b[o + 1]!;
    const d2 = a[i + 2]! - b[o + 2]!;
    const d3 = a[i + 3]! - b[o + 3]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; i++) {
    const d = a[i]! - b[bOffset + i]!;
    s0 += d * d;
  }
  return s0 + s1 + s2 + s3;
}

/**
 * A distance function for one query vector: `(values, offset)` reads `dims` floats of a
 * stored vector. Cosine of a zero vector is undefined (pgvector answers NaN): null, and
 * such rows are left out of the ranking.
 */
export function distanceTo(
  query: Float32Array,
  metric: Metric,
): (b: Float32Array, offset: number) => number | null {
  const n = query.length;
  switch (metric) {
    case "l2":
      return (b, o) => Math.sqrt(l2Squared(query, b, n, o));
    case "dot":
      return (b, o) => -dot(query, b, n, o);
    case "cosine": {
      const qn = norm(query);
      return (b, o) => {
        let s0 = 0;
        let s1 = 0;
        let n0 = 0;
        let n1 = 0;
        let i = 0;
        for (; i + 1 < n; i += 2) {
          const y0 = b[o + i]!;
          const y1 = b[o + i + 1]!;
          s0 += query[i]! * y0;
          s1 += query[i + 1]! * y1;
          n0 += y0 * y0;
          n1 += y1 * y1;
        }
        if (i < n) {
          const y = b[o + i]!;
          s0 += query[i]! * y;
          n0 += y * y;
        }
        const bn = n0 + n1;
        if (bn === 0 || qn === 0) return null;
        return 1 - (s0 + s1) / (qn * Math.sqrt(bn));
      };
    }
  }
}
