/**
 * Arrow IPC request bodies (Hearth's bulk format) → header and rows of JS values: integers
 * and floats as numbers, timestamps and dates as ISO strings, binary as Uint8Array, lists
 * as arrays, structs as objects. The caller casts per column type.
 */
import { type Data, makeVector, Type, tableFromIPC, type Vector } from "apache-arrow";
import { HearthError } from "../errors.ts";
import { bad, type HeaderRows } from "./bodies-common.ts";

/** Arrow IPC (stream or file) → header and rows, converted column by column for speed. */
export function fromArrow(bytes: Uint8Array): HeaderRows {
  const invalid = (details: string) =>
    bad("Invalid Arrow IPC stream", {
      details,
      hint: "Send an uncompressed Arrow IPC stream (or file) with one schema, e.g. pyarrow's ipc.new_stream.",
    });
  if (bytes.byteLength === 0) throw invalid("The request body is empty");
  try {
    const table = tableFromIPC(bytes);
    // Bytes without a schema message (JSON sent with the wrong type, an EOS marker alone)
    // read as an empty table: refuse them rather than insert nothing.
    if (table.schema.fields.length === 0)
      throw invalid("The body holds no Arrow schema with at least one field");
    const columns = table.schema.fields.map((f) => f.name);
    const converted = columns.map((name, j) => convertVector(table.getChildAt(j)!, name, false));
    const rows = new Array<unknown[]>(table.numRows);
    for (let i = 0; i < rows.length; i++) {
      const row = new Array<unknown>(columns.length);
      for (let j = 0; j < columns.length; j++) row[j] = converted[j]![i];
      rows[i] = row;
    }
    return { columns, rows };
  } catch (err) {
    if (err instanceof HearthError) throw err;
    throw invalid((err as Error).message);
  }
}

function convertVector(vector: Vector, column: string, nested: boolean): unknown[] {
  const out = new Array<unknown>(vector.length);
  let base = 0;
  for (const data of vector.data) {
    convertData(data, column, nested, out, base);
    base += data.length;
  }
  return out;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextDecoder();
// Timestamp unit (TimeUnit SECOND..NANOSECOND) → epoch milliseconds, flooring sub-ms units.
const TO_MS: ReadonlyArray<(v: bigint) => bigint> = [
  (v) => v * 1000n,
  (v) => v,
  (v) => v / 1000n - (v % 1000n < 0n ? 1n : 0n),
  (v) => v / 1000000n - (v % 1000000n < 0n ? 1n : 0n),
];
const dictionaries = new WeakMap<Vector, unknown[]>();

/** Writes the JS value of each of `data`'s slots into `out[base + i]`. */
function convertData(data: Data, column: string, nested: boolean, out: unknown[], base: number): void {
  // biome-ignore lint/suspicious/noExplicitAny: the Arrow type's fields depend on its typeId
  const type = data.type as any;
  const { length, offset } = data;
  const at = (i: number) => `Column "${column}", ${nested ? "nested value" : "row"} ${base + i} (from 0)`;
  const nums = data.values as ArrayLike<number>;
  const bigs = data.values as ArrayLike<bigint>;
  const bytes = data.values as Uint8Array;
  const offs = data.valueOffsets as ArrayLike<number | bigint>;
  const iso = (ms: number | bigint, i: number, dateOnly: boolean) => {
    const d = new Date(Number(ms));
    if (Number.isNaN(d.getTime())) throw bad(`${at(i)}: date or timestamp out of range`);
    const s = d.toISOString();
    return dateOnly ? s.slice(0, s.indexOf("T")) : s;
  };
  let get: (i: number) => unknown;
  switch (type.typeId as Type) {
    case Type.Null:
      for (let i = 0; i < length; i++) out[base + i] = null;
      return;
    case Type.Int:
      get =
        type.bitWidth === 64
          ? (i) => {
              const v = bigs[i]!;
              if (v > MAX_SAFE || v < -MAX_SAFE) {
                throw bad(`${at(i)}: ${v} is beyond the safe integer range ±${MAX_SAFE}`, {
                  hint: "Send such values as strings (Utf8) or floats.",
                });
              }
              return Number(v);
            }
          : (i) => nums[i];
      break;
    case Type.Float:
      if (type.precision === 0) {
        viaGet(data, out, base); // Float16 is stored as raw Uint16 bits
        return;
      }
      get = (i) => nums[i];
      break;
    case Type.Bool:
      get = (i) => ((bytes[(offset + i) >> 3]! >> ((offset + i) & 7)) & 1) === 1;
      break;
    case Type.Utf8:
    case Type.LargeUtf8:
      get = (i) => utf8.decode(bytes.subarray(Number(offs[i]), Number(offs[i + 1])));
      break;
    case Type.Binary:
    case Type.LargeBinary: // copies, so a row does not pin the whole request body
      get = (i) => bytes.slice(Number(offs[i]), Number(offs[i + 1]));
      break;
    case Type.FixedSizeBinary: {
      const w: number = type.byteWidth;
      get = (i) => bytes.slice(i * w, (i + 1) * w);
      break;
    }
    case Type.Timestamp: {
      const toMs = TO_MS[type.unit as number]!;
      get = (i) => iso(toMs(bigs[i]!), i, false);
      break;
    }
    case Type.Date:
      get = type.unit === 0 ? (i) => iso(nums[i]! * 86400000, i, true) : (i) => iso(bigs[i]!, i, true);
      break;
    case Type.Dictionary: {
      const vector = data.dictionary!;
      const d = dictionaries.get(vector) ?? convertVector(vector, column, nested);
      dictionaries.set(vector, d);
      get = (i) => d[Number(nums[i])];
      break;
    }
    case Type.List:
    case Type.LargeList:
    case Type.FixedSizeList: {
      const child = data.children[0]!;
      const items = new Array<unknown>(child.length);
      convertData(child, `${column}[]`, true, items, 0);
      const size: number = type.listSize;
      get =
        type.typeId === Type.FixedSizeList
          ? (i) => items.slice(i * size, (i + 1) * size)
          : (i) => items.slice(Number(offs[i]), Number(offs[i + 1]));
      break;
    }
    case Type.Struct: {
      const names: string[] = type.children.map((f: { name: string }) => f.name);
      const kids = data.children.map((c, k) => {
        const arr = new Array<unknown>(c.length);
        convertData(c, `${column}.${names[k]}`, true, arr, 0);
        return arr;
      });
      get = (i) => Object.fromEntries(names.map((name, k) => [name, kids[k]![i]]));
      break;
    }
    case Type.Utf8View:
    case Type.BinaryView:
      viaGet(data, out, base);
      return;
    default:
      throw bad(`Column "${column}" has the Arrow type ${type}, which cannot be loaded`, {
        hint: "Supported: integers, floats, bool, utf8, binary, timestamp, date, dictionary, list, struct. Cast decimals, times and durations first.",
      });
  }
  const bitmap = data.nullCount > 0 ? data.nullBitmap : undefined;
  if (!bitmap) {
    for (let i = 0; i < length; i++) out[base + i] = get(i);
    return;
  }
  for (let i = 0; i < length; i++) {
    const k = offset + i;
    out[base + i] = ((bitmap[k >> 3]! >> (k & 7)) & 1) === 1 ? get(i) : null;
  }
}

/** Rare types Arrow's own accessor already decodes (Float16, view layouts). */
function viaGet(data: Data, out: unknown[], base: number): void {
  const vector = makeVector(data);
  for (let i = 0; i < data.length; i++) out[base + i] = vector.get(i) ?? null;
}
