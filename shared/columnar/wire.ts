/**
 * What export and import share about a table's columns, whatever the file format:
 * the column list, the key-value metadata Hearth adds to each table file, and the
 * conversion of a decoded Parquet/Arrow value to the wire form that the write path
 * (`toStorage` in durable-objects/values.ts) casts per column type.
 */
import type { ColumnType } from "../schema.ts";

/** One column of a table file, in the table's column order. */
export interface ColumnSpec {
  name: string;
  type: ColumnType;
  /** vector columns: elements per value (without it a vector travels as float32 bytes) */
  dimensions?: number;
}

/**
 * Key-value metadata of a table file (Parquet footer, Arrow schema metadata): the
 * AUTOINCREMENT high-water mark, so that ids of rows deleted before the export are not
 * handed out again after an import (SQLite would otherwise restart from the largest id).
 */
export const SEQUENCE_KEY = "hearth.sequence";

const utf8 = new TextDecoder();

/**
 * A value decoded from a table file → the JSON-like value a request body would carry for
 * a column of `type`. Readers decode timestamps and dates to ISO text already; here json
 * columns parse their JSON text (both formats carry JSON as text), 64-bit integers become
 * numbers (or a string that the cast refuses by name when beyond 2^53), and untyped byte
 * arrays in a text column are decoded as UTF-8.
 */
export function toWire(type: ColumnType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(v)
      : String(v);
  }
  if (v instanceof Date) return v.toISOString();
  switch (type) {
    case "json":
      if (typeof v !== "string") return v;
      try {
        return JSON.parse(v);
      } catch {
        throw new Error(`invalid JSON text ${JSON.stringify(v.slice(0, 80))}`);
      }
    case "text":
    case "uuid":
      return v instanceof Uint8Array ? utf8.decode(v) : v;
    default:
      return v;
  }
}
