/**
 * Arrow IPC (stream format) for `?format=arrow` exports and their import. Types: text,
 * uuid → Utf8; json → Utf8 tagged with the canonical `arrow.json` extension; integer →
 * Int32; bigint → Int64; float → Float64; boolean → Bool; timestamp → Timestamp(ms, UTC);
 * date → Date32 (days); bytes → Binary. Every field is nullable.
 *
 * workerd forbids apache-arrow's builders (they compile code with `new Function`), so
 * vectors are made from typed arrays with `makeData`. The stream writer is given a sink
 * that receives each message as it is encoded, instead of its internal queue (which only
 * hands bytes out asynchronously), so a table is written a record batch at a time.
 * Reading goes batch by batch too, through the REST bulk-insert converter (fromArrow).
 */
import {
  Binary,
  Bool,
  type Data,
  type DataType,
  DateDay,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  tableToIPC,
  Utf8,
} from "apache-arrow";
import { fromArrow } from "../rest/bodies-arrow.ts";
import type { HeaderRows } from "../rest/bodies-common.ts";
import type { ColumnType } from "../schema.ts";
import type { ColumnSpec } from "./wire.ts";

const DAY_MS = 86_400_000;
const JSON_EXTENSION = new Map([
  ["ARROW:extension:name", "arrow.json"],
  ["ARROW:extension:metadata", ""],
]);

function arrowType(type: ColumnType, dimensions?: number): DataType {
  switch (type) {
    case "vector":
      return dimensions === undefined
        ? new Binary()
        : new FixedSizeList(dimensions, new Field("item", new Float32(), false));
    case "text":
    case "uuid":
    case "json":
      return new Utf8();
    case "integer":
      return new Int32();
    case "bigint":
      return new Int64();
    case "float":
      return new Float64();
    case "boolean":
      return new Bool();
    case "timestamp":
      return new TimestampMillisecond("UTC");
    case "date":
      return new DateDay();
    case "bytes":
      return new Binary();
  }
}

export function arrowSchema(columns: ColumnSpec[], metadata: Record<string, string> = {}): Schema {
  const fields = columns.map(
    (c) =>
      new Field(c.name, arrowType(c.type, c.dimensions), true, c.type === "json" ? JSON_EXTENSION : null),
  );
  return new Schema(fields, new Map(Object.entries(metadata)));
}

const enc = new TextEncoder();

function instant(v: unknown, what: string): number {
  const ms = Date.parse(String(v));
  if (Number.isNaN(ms)) throw new Error(`stored ${what} ${JSON.stringify(v)} is not a valid ${what}`);
  return ms;
}

/** One column's storage values → Arrow data of `type`. */
export function columnData(type: ColumnType, values: unknown[], dimensions?: number): Data {
  const n = values.length;
  const nullBitmap = new Uint8Array((n + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (values[i] === null || values[i] === undefined) nullCount++;
    else nullBitmap[i >> 3]! |= 1 << (i & 7);
  }
  const base = { length: n, nullCount, nullBitmap };
  if (type === "vector" && dimensions !== undefined) return vectorData(values, dimensions, base);
  const fill = <A extends { [i: number]: number | bigint }>(out: A, f: (v: never) => number | bigint): A => {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v !== null && v !== undefined) out[i] = f(v as never);
    }
    return out;
  };
  switch (type) {
    case "integer":
      return makeData({ ...base, type: new Int32(), data: fill(new Int32Array(n), (v: number) => v) });
    case "bigint":
      return makeData({
        ...base,
        type: new Int64(),
        data: fill(new BigInt64Array(n), (v: number) => BigInt(v)),
      });
    case "float":
      return makeData({ ...base, type: new Float64(), data: fill(new Float64Array(n), (v: number) => v) });
    case "boolean": {
      const bits = new Uint8Array((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (values[i] === 1) bits[i >> 3]! |= 1 << (i & 7);
      return makeData({ ...base, type: new Bool(), data: bits });
    }
    case "timestamp":
      return makeData({
        ...base,
        type: new TimestampMillisecond("UTC"),
        data: fill(new BigInt64Array(n), (v: string) => BigInt(instant(v, "timestamp"))),
      });
    case "date":
      return makeData({
        ...base,
        type: new DateDay(),
        data: fill(new Int32Array(n), (v: string) => Math.floor(instant(v, "date") / DAY_MS)),
      });
    case "vector": // without its dimensions, a vector travels as its float32 bytes
    case "bytes": {
      const parts = new Array<Uint8Array | undefined>(n);
      const valueOffsets = new Int32Array(n + 1);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        const p =
          v === null || v === undefined
            ? undefined
            : v instanceof Uint8Array
              ? v
              : new Uint8Array(v as ArrayBuffer);
        parts[i] = p;
        valueOffsets[i + 1] = valueOffsets[i]! + (p?.byteLength ?? 0);
      }
      const data = new Uint8Array(valueOffsets[n]!);
      for (let i = 0; i < n; i++) if (parts[i]) data.set(parts[i]!, valueOffsets[i]!);
      return makeData({ ...base, type: new Binary(), valueOffsets, data });
    }
    default: {
      // text, uuid and json (stored as JSON text) as UTF-8, encoded straight into one
      // buffer (one encode per value and a copy cost ~3x more on a million rows)
      const valueOffsets = new Int32Array(n + 1);
      let data = new Uint8Array(1024);
      let at = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v !== null && v !== undefined) {
          const text = String(v);
          // UTF-16 → UTF-8 takes at most 3 bytes per code unit
          if (data.length - at < text.length * 3) {
            const grown = new Uint8Array(Math.max(data.length * 2, at + text.length * 3));
            grown.set(data.subarray(0, at));
            data = grown;
          }
          at += enc.encodeInto(text, data.subarray(at)).written;
        }
        valueOffsets[i + 1] = at;
      }
      return makeData({ ...base, type: new Utf8(), valueOffsets, data: data.slice(0, at) });
    }
  }
}

/** Vectors (float32 bytes per row) → FixedSizeList<Float32>; a null row is zeros under the bitmap. */
function vectorData(
  values: unknown[],
  dimensions: number,
  base: { length: number; nullCount: number; nullBitmap: Uint8Array },
): Data {
  const n = values.length;
  const floats = new Float32Array(n * dimensions);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    const bytes = v instanceof Uint8Array ? v : new Uint8Array(v as ArrayBuffer);
    if (bytes.byteLength !== dimensions * 4)
      throw new Error(`stored vector of ${bytes.byteLength} bytes where ${dimensions} dimensions`);
    new Uint8Array(floats.buffer, i * dimensions * 4, dimensions * 4).set(bytes);
  }
  const type = new FixedSizeList(dimensions, new Field("item", new Float32(), false));
  const child = makeData({ type: new Float32(), length: n * dimensions, nullCount: 0, data: floats });
  return makeData({ ...base, type, child });
}

interface Sink {
  write(chunk: Uint8Array): void;
  close(): void;
  abort(): void;
}

/** One table as one Arrow IPC stream, written a record batch at a time. */
export class ArrowTableWriter {
  private readonly writer = new RecordBatchStreamWriter();
  private readonly schema: Schema;

  constructor(
    private readonly columns: ColumnSpec[],
    sink: (bytes: Uint8Array) => void,
    metadata: Record<string, string> = {},
  ) {
    this.schema = arrowSchema(columns, metadata);
    const out: Sink = { write: (chunk) => sink(chunk.slice()), close() {}, abort() {} };
    (this.writer as unknown as { _sink: Sink })._sink = out;
    // Writes the schema message now, so that a table without rows is still a valid stream.
    this.writer.reset(undefined, this.schema);
  }

  /** `data[j]` holds column j's storage values for every row of the batch. */
  writeBatch(data: unknown[][]): void {
    const rows = data[0]?.length ?? 0;
    if (rows === 0) return;
    const children = this.columns.map((c, j) => columnData(c.type, data[j]!, c.dimensions));
    const struct = makeData({ type: new Struct(this.schema.fields), length: rows, nullCount: 0, children });
    this.writer.write(new RecordBatch(this.schema, struct));
  }

  finish(): void {
    this.writer.finish();
  }
}

/** Column names and schema metadata of an Arrow IPC stream or file. */
export function arrowInfo(bytes: Uint8Array): { columns: string[]; metadata: Record<string, string> } {
  const reader = RecordBatchReader.from(bytes).open();
  if (reader.schema.fields.length === 0) throw new Error("no Arrow schema with at least one field");
  return {
    columns: reader.schema.fields.map((f) => f.name),
    metadata: Object.fromEntries(reader.schema.metadata),
  };
}

/** Decodes an Arrow IPC stream or file synchronously, one record batch at a time. */
export function readArrow(bytes: Uint8Array, onBatch: (batch: HeaderRows) => void): void {
  const reader = RecordBatchReader.from(bytes).open();
  for (const batch of reader) {
    if (batch.numRows === 0) continue;
    // One batch re-framed as a stream costs a copy, and reuses the tested converter.
    onBatch(fromArrow(tableToIPC(new Table([batch]), "stream")));
  }
}
