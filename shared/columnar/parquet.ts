/**
 * Parquet for export and import, both directions of the per-type mapping:
 *
 * | Hearth    | Parquet                                           | storage form   |
 * | --------- | ------------------------------------------------- | -------------- |
 * | text      | BYTE_ARRAY, UTF8 / STRING                         | text           |
 * | uuid      | FIXED_LEN_BYTE_ARRAY(16), UUID                    | lower-case text|
 * | integer   | INT32                                             | integer        |
 * | bigint    | INT64                                             | integer        |
 * | float     | DOUBLE                                            | real           |
 * | boolean   | BOOLEAN                                           | 0 / 1          |
 * | timestamp | INT64, TIMESTAMP(MILLIS, adjusted to UTC)         | ISO-8601 text  |
 * | date      | INT32, DATE                                       | YYYY-MM-DD     |
 * | json      | BYTE_ARRAY, JSON (UTF-8 JSON text)                | JSON text      |
 * | bytes     | BYTE_ARRAY                                        | blob           |
 *
 * Every column is OPTIONAL, so nulls survive whatever the schema says. Storage keeps
 * timestamps at millisecond precision, so MILLIS loses nothing.
 *
 * Writing: hyparquet-writer's ParquetWriter appends one row group per `write` and calls
 * its writer's `flush` after each; the writer here hands the bytes to a sink and empties
 * itself, so a table never sits in memory whole. Reading: hyparquet's public readers are
 * all async, but an import must decode inside one synchronous SQLite transaction (an
 * `await` there would end it), so `readParquet` drives hyparquet's synchronous page
 * decoder (`readColumn`) itself, one row group at a time. Those deep imports are why the
 * hyparquet version is pinned exactly.
 */
import { gunzipSync } from "fflate";
import type { CompressionCodec, Compressors, ParquetParsers, SchemaElement } from "hyparquet";
import { parquetMetadata, parquetSchema } from "hyparquet";
import { readColumn } from "hyparquet/src/column.js";
import { DEFAULT_PARSERS } from "hyparquet/src/convert.js";
import { getSchemaPath } from "hyparquet/src/schema.js";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import type { ColumnType } from "../schema.ts";
import type { ColumnSpec } from "./wire.ts";

const DAY_MS = 86_400_000;

function element(col: ColumnSpec): SchemaElement {
  const base = { name: col.name, repetition_type: "OPTIONAL" as const };
  switch (col.type) {
    case "text":
      return { ...base, type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" } };
    case "uuid":
      return { ...base, type: "FIXED_LEN_BYTE_ARRAY", type_length: 16, logical_type: { type: "UUID" } };
    case "integer":
      return { ...base, type: "INT32" };
    case "bigint":
      return { ...base, type: "INT64" };
    case "float":
      return { ...base, type: "DOUBLE" };
    case "boolean":
      return { ...base, type: "BOOLEAN" };
    case "timestamp":
      return {
        ...base,
        type: "INT64",
        converted_type: "TIMESTAMP_MILLIS",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
      };
    case "date":
      return { ...base, type: "INT32", converted_type: "DATE", logical_type: { type: "DATE" } };
    case "json":
      return { ...base, type: "BYTE_ARRAY", converted_type: "JSON", logical_type: { type: "JSON" } };
    case "bytes":
    case "vector": // float32 little-endian bytes
      return { ...base, type: "BYTE_ARRAY" };
  }
}

function instant(s: string, what: "timestamp" | "date"): number {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) throw new Error(`stored ${what} ${JSON.stringify(s)} is not a valid ${what}`);
  return ms;
}

/** Storage values (as SQLite returns them) → the values hyparquet-writer expects, in place. */
function toParquetValues(type: ColumnType, values: unknown[]): unknown[] {
  const map = (f: (v: never) => unknown) => {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== null && v !== undefined) values[i] = f(v as never);
    }
  };
  switch (type) {
    case "bigint":
      map((v: number) => BigInt(v));
      break;
    case "boolean":
      map((v: number) => v === 1);
      break;
    case "timestamp":
      map((v: string) => instant(v, "timestamp"));
      break;
    case "date":
      map((v: string) => Math.floor(instant(v, "date") / DAY_MS));
      break;
    case "json":
      // The writer re-serializes JSON values; storage already holds canonical JSON text.
      map((v: string) => JSON.parse(v));
      break;
    case "bytes":
    case "vector":
      map((v: ArrayBuffer | Uint8Array) => (v instanceof Uint8Array ? v : new Uint8Array(v)));
      break;
  }
  return values;
}

/** A ByteWriter that hands its bytes to `sink` after every row group and empties itself. */
class SinkWriter extends ByteWriter {
  constructor(private readonly sink: (bytes: Uint8Array) => void) {
    super(1 << 16);
  }
  /** Called by ParquetWriter after each row group (optional in its Writer interface). */
  flush(): void {
    if (this.index === 0) return;
    this.sink(new Uint8Array(this.buffer, 0, this.index).slice());
    this.index = 0;
  }
  override finish(): void {
    this.flush();
  }
}

/** One table as one Parquet file, written a row group at a time. */
export class ParquetTableWriter {
  private readonly writer: ParquetWriter;

  constructor(
    private readonly columns: ColumnSpec[],
    sink: (bytes: Uint8Array) => void,
    metadata: Record<string, string> = {},
  ) {
    this.writer = new ParquetWriter({
      writer: new SinkWriter(sink),
      schema: [{ name: "root", num_children: columns.length }, ...columns.map(element)],
      kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      createdBy: "hearth",
    });
  }

  /** `data[j]` holds column j's storage values for every row of the group. */
  writeRowGroup(data: unknown[][]): void {
    const rows = data[0]?.length ?? 0;
    if (rows === 0) return;
    void this.writer.write({
      rowGroupSize: rows,
      columnData: this.columns.map((c, j) => ({
        name: c.name,
        data: toParquetValues(c.type, data[j]!),
      })),
    });
  }

  finish(): void {
    void this.writer.finish();
  }
}

/** Floor division, so instants before 1970 round down like every other reader does. */
function floorDiv(v: bigint, by: bigint): bigint {
  const q = v / by;
  return v % by < 0n ? q - 1n : q;
}

function isoOf(ms: bigint): string {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) throw new Error(`timestamp ${ms} ms is out of range`);
  return d.toISOString();
}

/** Timestamps and dates decode straight to the ISO text the write path stores. */
const PARSERS: ParquetParsers = {
  ...DEFAULT_PARSERS,
  timestampFromMilliseconds: (v) => isoOf(BigInt(v)),
  timestampFromMicroseconds: (v) => isoOf(floorDiv(BigInt(v), 1000n)),
  timestampFromNanoseconds: (v) => isoOf(floorDiv(BigInt(v), 1_000_000n)),
  dateFromDays: (days) => {
    const s = isoOf(BigInt(days) * BigInt(DAY_MS));
    return s.slice(0, s.indexOf("T"));
  },
  // JSON text stays text: json columns parse it (toWire), whatever the file called it.
  jsonFromBytes: (bytes) => new TextDecoder().decode(bytes),
};

/** Decompressors beyond hyparquet's built-in SNAPPY: GZIP through fflate (synchronous). */
const COMPRESSORS: Compressors = { GZIP: (input) => gunzipSync(input) };
const SUPPORTED_CODECS = new Set<CompressionCodec>(["UNCOMPRESSED", "SNAPPY", "GZIP"]);

export interface ColumnBatch {
  columns: string[];
  /** Column-major: `data[j][i]` is row i of column j. */
  data: unknown[][];
  rows: number;
}

/** Column names and key-value metadata of a Parquet file, from its footer. */
export function parquetInfo(bytes: Uint8Array): { columns: string[]; metadata: Record<string, string> } {
  const md = parquetMetadata(bytes);
  const tree = parquetSchema(md);
  for (const child of tree.children) {
    if (child.children.length > 0) {
      throw new Error(`column "${child.element.name}" is nested (list, map or struct)`);
    }
  }
  const metadata: Record<string, string> = {};
  for (const kv of md.key_value_metadata ?? []) if (kv.value !== undefined) metadata[kv.key] = kv.value;
  return { columns: tree.children.map((c) => c.element.name), metadata };
}

/** Decodes a whole Parquet file synchronously, calling `onRowGroup` once per row group. */
export function readParquet(bytes: Uint8Array, onRowGroup: (batch: ColumnBatch) => void): void {
  const md = parquetMetadata(bytes);
  const { columns } = parquetInfo(bytes);
  let groupStart = 0;
  for (const [g, rg] of md.row_groups.entries()) {
    const rows = Number(rg.num_rows);
    const data: unknown[][] = columns.map(() => []);
    for (const chunk of rg.columns) {
      const meta = chunk.meta_data;
      if (!meta || chunk.file_path) throw new Error(`row group ${g}: column data outside this file`);
      const name = meta.path_in_schema[0] ?? "";
      const j = columns.indexOf(name);
      if (j < 0 || meta.path_in_schema.length !== 1)
        throw new Error(`row group ${g}: unknown column ${name}`);
      if (!SUPPORTED_CODECS.has(meta.codec)) {
        throw new Error(`column "${name}" is compressed with ${meta.codec}; use SNAPPY, GZIP or none`);
      }
      const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
      const end = start + Number(meta.total_compressed_size);
      if (start < 4 || end > bytes.byteLength - 8)
        throw new Error(`column "${name}": byte range outside the file`);
      const schemaPath = getSchemaPath(md.schema, meta.path_in_schema);
      const decoded = readColumn(
        { view: new DataView(bytes.buffer, bytes.byteOffset + start, end - start), offset: 0 },
        { groupStart, selectStart: 0, selectEnd: rows, groupRows: rows },
        {
          pathInSchema: meta.path_in_schema,
          element: schemaPath[schemaPath.length - 1]!.element,
          schemaPath,
          type: meta.type,
          codec: meta.codec,
          parsers: PARSERS,
          compressors: COMPRESSORS,
          // untyped BYTE_ARRAY is bytes; text columns are annotated UTF8/STRING
          utf8: false,
        },
      );
      const out = data[j]!;
      for (const part of decoded.data) for (let i = 0; i < part.length; i++) out.push(part[i] ?? null);
    }
    for (const [j, out] of data.entries()) {
      if (out.length !== rows) {
        throw new Error(`row group ${g}, column "${columns[j]}": ${out.length} values for ${rows} rows`);
      }
    }
    onRowGroup({ columns, data, rows });
    groupStart += rows;
  }
}
