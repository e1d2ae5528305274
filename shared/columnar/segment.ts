/**
 * Segments: a table's flushed rows as one immutable Arrow IPC file (Feather v2) in R2, its
 * record batches (64k rows each) compressed with LZ4_FRAME, plus the column stats and the
 * primary-key bloom filter that the manifest keeps beside it. Values go in and come out in
 * storage form (shared/values.ts); each field records its Hearth type in `hearth.type`.
 *
 * LZ4 frames are written here from lz4js's block compressor rather than with its
 * `compress`, for two reasons. Its blocks may end with a match that starts 10 or 11 bytes
 * before the block's end, which the LZ4 format forbids (the last match starts at least 12
 * bytes before): liblz4, so pyarrow, rejects such a full 4 MiB block. And its frames carry
 * no content size, so its `decompress` allocates 4 MiB per block of every buffer.
 *
 * Decoding converts a column only when it is asked for, straight from the Arrow buffers.
 */

import {
  CompressionType,
  compressionRegistry,
  type Data,
  DataType,
  Field,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchReader,
  Schema,
  Struct,
  Type,
} from "apache-arrow";
import { compressBlock, decompress } from "lz4js";
import { compareValues } from "../collate.ts";
import { COLUMN_TYPES, type ColumnType } from "../schema.ts";
import { arrowSchema, columnData } from "./arrow.ts";

export interface SegmentColumn {
  name: string;
  type: ColumnType;
  /** vector columns: elements per value (FixedSizeList<Float32>) */
  dimensions?: number;
}

/** min/max over non-null storage values (JS order; null for bytes and json columns). */
export interface ColumnStats {
  min: number | string | null;
  max: number | string | null;
  nulls: number;
}

export interface SegmentInfo {
  rows: number;
  /** Encoded file size. */
  bytes: number;
  stats: Record<string, ColumnStats>;
}

export type SegmentValue = number | string | Uint8Array | null;

/** Field metadata key naming a column's Hearth type (uuid vs text, json vs text). */
export const TYPE_KEY = "hearth.type";
const BATCH_ROWS = 65_536;

// ---- LZ4 frames ---------------------------------------------------------------------------
const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK = 4 << 20; // block maximum 4 MiB (BD = 7 << 4)
const LZ4_TAIL = 7; // with lz4js's own 5-byte literal tail, no match starts in a block's last 12 bytes
const lz4Hashes = new Uint32Array(1 << 16);
let lz4Scratch = new Uint8Array(0);

function xxh32Short(b: Uint8Array, start: number, end: number): number {
  const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  let h = (0x165667b1 + (end - start)) | 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const w = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    h = Math.imul(rotl((h + Math.imul(w, 0xc2b2ae3d)) | 0, 17), 0x27d4eb2f);
  }
  for (; i < end; i++) h = Math.imul(rotl((h + Math.imul(b[i]!, 0x165667b1)) | 0, 11), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca77);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae3d);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Compresses src[start, start+len) into lz4Scratch; 0 when it is better stored as it is. */
function lz4Block(src: Uint8Array, start: number, len: number): number {
  if (len < 32) return 0;
  const n = compressBlock(src, lz4Scratch, start, len - LZ4_TAIL, lz4Hashes);
  if (n === 0) return 0;
  // Walk to the last sequence (literals only) and re-emit it with the held-back tail.
  const out = lz4Scratch;
  let p = 0;
  for (;;) {
    const at = p;
    const token = out[p++]!;
    let literals = token >> 4;
    if (literals === 15) for (let b = 255; b === 255; literals += b) b = out[p++]!;
    p += literals;
    if (p >= n) {
      const count = literals + LZ4_TAIL;
      let q = at;
      out[q++] = Math.min(count, 15) << 4;
      if (count >= 15) {
        let rest = count - 15;
        for (; rest >= 255; rest -= 255) out[q++] = 255;
        out[q++] = rest;
      }
      out.set(src.subarray(start + len - count, start + len), q);
      return q + count;
    }
    p += 2;
    if ((token & 15) === 15) while (out[p++] === 255);
  }
}

/** One LZ4 frame with its content size, linked blocks of at most 4 MiB. */
function lz4Frame(src: Uint8Array): Uint8Array {
  const n = src.length;
  const out = new Uint8Array(19 + n + 4 * Math.ceil(n / LZ4_BLOCK));
  const view = new DataView(out.buffer);
  view.setUint32(0, LZ4_MAGIC, true);
  out[4] = 0x48; // version 01, content size present
  out[5] = 7 << 4;
  view.setUint32(6, n, true); // content size, u64 (the high half stays 0)
  out[14] = (xxh32Short(out, 4, 14) >>> 8) & 0xff;
  let p = 15;
  const need = Math.min(n, LZ4_BLOCK) + (Math.min(n, LZ4_BLOCK) >> 7) + 64;
  if (lz4Scratch.length < need) lz4Scratch = new Uint8Array(need);
  lz4Hashes.fill(0);
  for (let s = 0; s < n; s += LZ4_BLOCK) {
    const len = Math.min(LZ4_BLOCK, n - s);
    const c = lz4Block(src, s, len);
    if (c > 0 && c < len) {
      view.setUint32(p, c, true);
      out.set(lz4Scratch.subarray(0, c), p + 4);
      p += 4 + c;
    } else {
      view.setUint32(p, (0x80000000 | len) >>> 0, true);
      out.set(src.subarray(s, s + len), p + 4);
      p += 4 + len;
    }
  }
  view.setUint32(p, 0, true); // end mark
  return out.subarray(0, p + 4);
}

compressionRegistry.set(CompressionType.LZ4_FRAME, { encode: lz4Frame, decode: (b) => decompress(b) });

/**
 * apache-arrow 21.2.0 prefixes each compressed buffer with its compressed length where the
 * format wants the uncompressed one (fixed upstream in apache/arrow-js#470). Its own reader
 * ignores the prefix; pyarrow sizes its output by it and fails ("Lz4 decompression buffer
 * too small"). Each buffer comes back as a [prefix, data] pair, so the prefix is rewritten.
 */
function fixLengthPrefixes(writer: RecordBatchFileWriter): void {
  const w = writer as unknown as { _compressBodyBuffers(b: ArrayBufferView[]): { buffers: Uint8Array[] } };
  if (typeof w._compressBodyBuffers !== "function") throw new Error("apache-arrow changed its writer");
  const compress = w._compressBodyBuffers.bind(writer);
  w._compressBodyBuffers = (buffers) => {
    const body = compress(buffers);
    buffers.forEach((b, i) => {
      const prefix = body.buffers[2 * i]!;
      if (prefix.byteLength !== 8) return; // an empty buffer has no prefix
      const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
      if (view.getBigInt64(0, true) !== -1n) view.setBigInt64(0, BigInt(b.byteLength), true);
    });
    return body;
  };
}

// ---- encode -------------------------------------------------------------------------------
function columnStats(type: ColumnType, values: unknown[]): ColumnStats {
  let nulls = 0;
  let min: number | string | null = null;
  let max: number | string | null = null;
  const ordered = type !== "bytes" && type !== "json" && type !== "vector";
  for (const v of values) {
    if (v === null || v === undefined) nulls++;
    else if (ordered && !(typeof v === "number" && Number.isNaN(v))) {
      const x = v as number | string;
      // SQLite's order (text by code point), so pruning agrees with SQL
      if (min === null || compareValues(x, min) < 0) min = x;
      if (max === null || compareValues(x, max) > 0) max = x;
    }
  }
  return { min, max, nulls };
}

function segmentSchema(columns: SegmentColumn[], metadata: Record<string, string>): Schema {
  const base = arrowSchema(columns, metadata);
  const fields = base.fields.map((f, j) => {
    const meta = new Map(f.metadata);
    meta.set(TYPE_KEY, columns[j]!.type);
    return new Field(f.name, f.type, true, meta);
  });
  return new Schema(fields, base.metadata);
}

/** `data[j]` holds column j's storage values (column-major), all columns the same length. */
export function encodeSegment(
  columns: SegmentColumn[],
  data: unknown[][],
  metadata: Record<string, string> = {},
): { bytes: Uint8Array; info: SegmentInfo } {
  if (data.length !== columns.length)
    throw new Error(`${data.length} value arrays for ${columns.length} columns`);
  const rows = data[0]?.length ?? 0;
  const short = columns.findIndex((_, j) => data[j]!.length !== rows);
  if (short >= 0)
    throw new Error(`column ${columns[short]!.name} has ${data[short]!.length} values, not ${rows}`);
  const schema = segmentSchema(columns, metadata);
  const writer = new RecordBatchFileWriter({ compressionType: CompressionType.LZ4_FRAME });
  fixLengthPrefixes(writer);
  writer.reset(undefined, schema); // a segment without rows is still a valid file
  for (let start = 0; start < rows; start += BATCH_ROWS) {
    const end = Math.min(rows, start + BATCH_ROWS);
    const children = columns.map((c, j) => columnData(c.type, data[j]!.slice(start, end), c.dimensions));
    const struct = makeData({ type: new Struct(schema.fields), length: end - start, nullCount: 0, children });
    writer.write(new RecordBatch(schema, struct));
  }
  writer.finish();
  const bytes = writer.toUint8Array(true);
  const stats = Object.fromEntries(columns.map((c, j) => [c.name, columnStats(c.type, data[j]!)]));
  return { bytes, info: { rows, bytes: bytes.byteLength, stats } };
}

// ---- decode -------------------------------------------------------------------------------
const utf8 = new TextDecoder();
const DAY_MS = 86_400_000;
const TWO_32 = 4_294_967_296;
const ARROW_TYPES = new Map(
  COLUMN_TYPES.map((t) => [t, String(arrowSchema([{ name: "x", type: t }]).fields[0]!.type)]),
);

function columnType(field: Field): ColumnType {
  const shown = String(field.type);
  const declared = field.metadata.get(TYPE_KEY);
  if (declared !== undefined) {
    const t = COLUMN_TYPES.find((c) => c === declared);
    if (!t) throw new Error(`segment column ${field.name} has unknown type ${declared}`);
    if (t === "vector") {
      const child = field.type.children?.[0]?.type;
      if (field.type.typeId !== Type.FixedSizeList || child?.typeId !== Type.Float || child.precision !== 1)
        throw new Error(`segment column ${field.name}: vector stored as ${shown}`);
      return t;
    }
    if (ARROW_TYPES.get(t) !== shown)
      throw new Error(`segment column ${field.name}: ${t} stored as ${shown}`);
    return t;
  }
  if (shown === "Utf8" && field.metadata.get("ARROW:extension:name") === "arrow.json") return "json";
  if (field.type.typeId === Type.Timestamp && shown.startsWith("Timestamp<MILLISECOND")) return "timestamp";
  for (const [t, arrow] of ARROW_TYPES) if (arrow === shown && t !== "uuid" && t !== "json") return t;
  throw new Error(`segment column ${field.name} has unsupported Arrow type ${shown}`);
}

function bodyBytes(d: Data): number {
  let n = (d.values?.byteLength ?? 0) + (d.valueOffsets?.byteLength ?? 0) + (d.nullBitmap?.byteLength ?? 0);
  for (const c of d.children ?? []) n += bodyBytes(c);
  return n;
}

/** An int64 buffer as (low, high) int32 pairs: cheaper than a BigInt per value. */
function int64Halves(big: BigInt64Array): Int32Array {
  return new Int32Array(big.buffer, big.byteOffset, big.length * 2);
}

// Instants whose ISO text has a four-digit year; toISOString widens the year outside them.
const MIN_ISO_MS = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const END_ISO_MS = 253_402_300_800_000; // 10000-01-01T00:00:00.000Z

function putDigits(b: Uint8Array, at: number, v: number, width: number): void {
  for (let k = at + width - 1; k >= at; k--, v = (v - (v % 10)) / 10) b[k] = 48 + (v % 10);
}

/** `YYYY-MM-DD` (width 10) or `YYYY-MM-DDTHH:MM:SS.mmmZ` (width 24) of ms at b[at]. */
function putIso(b: Uint8Array, at: number, ms: number, width: number): void {
  const days = Math.floor(ms / DAY_MS);
  // civil-from-days (H. Hinnant): the proleptic Gregorian date of a day number
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  putDigits(b, at, yoe + era * 400 + (month <= 2 ? 1 : 0), 4);
  b[at + 4] = 45; // -
  putDigits(b, at + 5, month, 2);
  b[at + 7] = 45;
  putDigits(b, at + 8, doy - Math.floor((153 * mp + 2) / 5) + 1, 2);
  if (width === 10) return;
  const t = ms - days * DAY_MS;
  b[at + 10] = 84; // T
  putDigits(b, at + 11, Math.floor(t / 3_600_000), 2);
  b[at + 13] = 58; // :
  putDigits(b, at + 14, Math.floor(t / 60_000) % 60, 2);
  b[at + 16] = 58;
  putDigits(b, at + 17, Math.floor(t / 1000) % 60, 2);
  b[at + 19] = 46; // .
  putDigits(b, at + 20, t % 1000, 3);
  b[at + 23] = 90; // Z
}

/**
 * ISO texts of a date or timestamp chunk: written as ASCII bytes, decoded once and cut, which
 * is several times faster than a Date and toISOString per value.
 */
function isoColumn(
  out: SegmentValue[],
  at: number,
  n: number,
  isNull: (i: number) => boolean,
  width: number,
  msOf: (i: number) => number,
): void {
  const inRange = (ms: number) => ms >= MIN_ISO_MS && ms < END_ISO_MS;
  const text = new Uint8Array(width * n);
  for (let i = 0; i < n; i++) {
    if (isNull(i)) continue;
    const ms = msOf(i);
    if (inRange(ms)) putIso(text, width * i, ms, width);
  }
  const all = utf8.decode(text);
  for (let i = 0; i < n; i++) {
    if (isNull(i)) out[at + i] = null;
    else {
      const ms = msOf(i);
      out[at + i] = inRange(ms)
        ? all.slice(width * i, width * (i + 1))
        : new Date(ms).toISOString().slice(0, width === 10 ? 10 : undefined);
    }
  }
}

/** Converts one Arrow chunk into out[at, at+length), returning an estimate of the JS heap used. */
function convertChunk(d: Data<DataType>, out: SegmentValue[], at: number): number {
  const n = d.length;
  const bits = d.nullCount > 0 ? d.nullBitmap : undefined;
  const off = d.offset;
  const isNull = (i: number) => bits !== undefined && ((bits[(off + i) >> 3]! >> ((off + i) & 7)) & 1) === 0;
  const type = d.type;
  const heap = 8 * n;
  switch (type.typeId) {
    case Type.Int:
    case Type.Float: {
      if (DataType.isInt(type) && type.bitWidth === 64) {
        const w = int64Halves(d.values as BigInt64Array);
        for (let i = 0; i < n; i++)
          out[at + i] = isNull(i) ? null : w[2 * i + 1]! * TWO_32 + (w[2 * i]! >>> 0);
        return heap + 8 * n;
      }
      const v = d.values as Int32Array | Float64Array;
      for (let i = 0; i < n; i++) out[at + i] = isNull(i) ? null : v[i]!;
      return type.typeId === Type.Float ? heap + 16 * n : heap; // doubles are boxed, int32s are not
    }
    case Type.Date: {
      const v = d.values as Int32Array;
      isoColumn(out, at, n, isNull, 10, (i) => v[i]! * DAY_MS);
      return heap + 32 * n;
    }
    case Type.Timestamp: {
      const w = int64Halves(d.values as BigInt64Array);
      isoColumn(out, at, n, isNull, 24, (i) => w[2 * i + 1]! * TWO_32 + (w[2 * i]! >>> 0));
      return heap + 56 * n;
    }
    case Type.Bool: {
      const v = d.values as Uint8Array;
      for (let i = 0; i < n; i++)
        out[at + i] = isNull(i) ? null : (v[(off + i) >> 3]! >> ((off + i) & 7)) & 1;
      return heap;
    }
    case Type.Utf8: {
      const o = d.valueOffsets as Int32Array;
      const v = d.values as Uint8Array;
      const first = o[0]!;
      const last = o[n]!;
      let ascii = true;
      for (let k = first; k < last && ascii; k++) ascii = v[k]! < 0x80;
      // ASCII bytes are UTF-16 units one for one: decode once, then cut.
      const all = ascii ? utf8.decode(v.subarray(first, last)) : "";
      for (let i = 0; i < n; i++) {
        if (isNull(i)) out[at + i] = null;
        else if (ascii) out[at + i] = all.slice(o[i]! - first, o[i + 1]! - first);
        else out[at + i] = utf8.decode(v.subarray(o[i]!, o[i + 1]!));
      }
      return heap + 24 * n + 2 * (last - first);
    }
    case Type.FixedSizeList: {
      // vectors: a view of each row's float32 bytes in the child buffer (no copy)
      const size: number = (type as unknown as { listSize: number }).listSize;
      const child = d.children[0]!;
      const f = child.values as Float32Array;
      const bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      const start = (child.offset + off * size) * 4;
      for (let i = 0; i < n; i++) {
        out[at + i] = isNull(i) ? null : bytes.subarray(start + i * size * 4, start + (i + 1) * size * 4);
      }
      return heap + 96 * n + size * 4 * n;
    }
    case Type.Binary: {
      const o = d.valueOffsets as Int32Array;
      const v = d.values as Uint8Array;
      for (let i = 0; i < n; i++) out[at + i] = isNull(i) ? null : v.slice(o[i]!, o[i + 1]!);
      return heap + 96 * n + (o[n]! - o[0]!);
    }
    default:
      throw new Error(`segment column of unsupported Arrow type ${String(type)}`);
  }
}

/** Lazily decoded segment: only the columns asked for are converted, once. */
export class SegmentData {
  private readonly converted = new Map<string, SegmentValue[]>();
  private convertedBytes = 0;

  private constructor(
    readonly rows: number,
    readonly columns: SegmentColumn[],
    readonly metadata: Record<string, string>,
    private readonly chunks: Map<string, Data[]>,
    private rawBytes: number,
  ) {}

  /**
   * Parses the IPC file and decompresses its record batches; converts nothing yet. Columns
   * in `without` are dropped once read (they read as nulls): vector search keeps a
   * segment's other columns in memory and reads its vectors from the index beside it.
   */
  static decode(bytes: Uint8Array, without?: ReadonlySet<string>): SegmentData {
    // Arrow views buffers in place as Int32/BigInt64 arrays, which need aligned offsets.
    const source = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes); // (a Buffer's slice is a view)
    const reader = RecordBatchReader.from(source).open();
    if (!reader.isFile()) throw new Error("segment is not an Arrow IPC file");
    const schema = reader.schema; // the reader forgets it once all batches are read
    const fields = schema.fields;
    const columns = fields.map((f): SegmentColumn => {
      const type = columnType(f);
      return type === "vector" ? { name: f.name, type, dimensions: f.type.listSize } : { name: f.name, type };
    });
    const chunks = new Map<string, Data[]>(
      fields.filter((f) => !without?.has(f.name)).map((f) => [f.name, []]),
    );
    let rows = 0;
    let raw = 0;
    for (const batch of reader) {
      if (batch.numRows === 0) continue;
      rows += batch.numRows;
      batch.data.children.forEach((d, j) => {
        const kept = chunks.get(fields[j]!.name);
        if (!kept) return;
        kept.push(d);
        raw += bodyBytes(d);
      });
    }
    return new SegmentData(rows, columns, Object.fromEntries(schema.metadata), chunks, raw);
  }

  /** Storage values of one column (bytes as Uint8Array); an unknown column reads as nulls. Do not mutate. */
  column(name: string): SegmentValue[] {
    const done = this.converted.get(name);
    if (done) return done;
    const chunks = this.chunks.get(name);
    if (!chunks) return new Array<SegmentValue>(this.rows).fill(null);
    const out = new Array<SegmentValue>(this.rows);
    let at = 0;
    for (const d of chunks) {
      this.convertedBytes += convertChunk(d, out, at);
      this.rawBytes -= bodyBytes(d);
      at += d.length;
    }
    // The Arrow buffers are no longer needed once converted.
    this.chunks.set(name, []);
    this.converted.set(name, out);
    return out;
  }

  /** Rough memory held, for a bounded cache: Arrow buffers not yet converted + converted columns. */
  approxBytes(): number {
    return this.rawBytes + this.convertedBytes;
  }
}

// ---- bloom filter -------------------------------------------------------------------------
const BLOOM_HEADER = 8; // u32 bit count, u8 k, 3 bytes reserved
const BLOOM_K = 7;
const BLOOM_BITS_PER_KEY = 10;
const enc = new TextEncoder();

/** Two 32-bit hashes of a key's UTF-8 (FNV-1a, then murmur3's finaliser), for double hashing. */
function bloomHashes(key: string): [number, number] {
  let h = 0x811c9dc5;
  for (const b of enc.encode(key)) h = Math.imul(h ^ b, 0x01000193);
  const mix = (x: number) => {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  return [mix(h), mix(h ^ 0x9e3779b9) | 1];
}

/** A bloom filter over primary-key strings; its 8-byte header holds the bit count and k. */
export function buildBloom(keys: string[]): Uint8Array {
  const m = Math.max(64, Math.ceil((keys.length * BLOOM_BITS_PER_KEY) / 64) * 64);
  const out = new Uint8Array(BLOOM_HEADER + m / 8);
  new DataView(out.buffer).setUint32(0, m, true);
  out[4] = BLOOM_K;
  for (const key of keys) {
    const [h1, h2] = bloomHashes(key);
    for (let i = 0; i < BLOOM_K; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % m;
      out[BLOOM_HEADER + (bit >> 3)]! |= 1 << (bit & 7);
    }
  }
  return out;
}

/** False means the key is certainly absent; true means it may be present. */
export function bloomMayContain(bloom: Uint8Array, key: string): boolean {
  if (bloom.length < BLOOM_HEADER) throw new Error("bloom filter without header");
  const m = new DataView(bloom.buffer, bloom.byteOffset, bloom.byteLength).getUint32(0, true);
  const k = bloom[4]!;
  if (m === 0 || k === 0 || bloom.length < BLOOM_HEADER + Math.ceil(m / 8)) {
    throw new Error("bloom filter header does not match its size");
  }
  const [h1, h2] = bloomHashes(key);
  for (let i = 0; i < k; i++) {
    const bit = ((h1 + Math.imul(i, h2)) >>> 0) % m;
    if ((bloom[BLOOM_HEADER + (bit >> 3)]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}
