/**
 * Request bodies of REST writes → one row batch, whatever the Content-Type (PostgREST
 * dialect §5, plus Hearth's bulk formats NDJSON and Arrow IPC). The body is streamed and
 * counted so that an oversize upload is refused before it is buffered. Values are not cast
 * here: JSON stays parsed JSON, CSV and form values stay strings, Arrow values become their
 * JS equivalents; the caller casts per column type and decides what `MISSING` means.
 */
import { type Data, makeVector, Type, tableFromIPC, type Vector } from "apache-arrow";
import { HearthError } from "../errors.ts";

/** Placeholder for a key listed in `opts.columns` but absent from a row: NULL or DEFAULT. */
export const MISSING: unique symbol = Symbol("hearth.missing");

export interface RowBatch {
  /** Column names, in first-seen order (exactly `opts.columns` when given). */
  columns: string[];
  /** Row-major: `rows[i][j]` is the value of `columns[j]`, `MISSING` when the row lacks it. */
  rows: unknown[][];
  /** The body was one JSON object (or a form: one row), not an array or a bulk format. */
  single: boolean;
  /**
   * Values are text to cast (CSV, forms), not typed JSON: a json column then parses the
   * string, where a JSON body's string is stored as a JSON string.
   */
  text?: boolean;
}

export interface ReadRowBatchOptions {
  maxBytes: number;
  columns?: string[];
}

const NDJSON_TYPES = new Set(["application/x-ndjson", "application/ndjson", "application/jsonl"]);
const ARROW_TYPES = new Set(["application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"]);

export async function readRowBatch(request: Request, opts: ReadRowBatchOptions): Promise<RowBatch> {
  const raw = request.headers.get("content-type");
  const mediaType = (raw?.split(";")[0] ?? "").trim().toLowerCase() || "application/json";
  // Refuse an unknown type before reading anything.
  if (
    mediaType !== "application/json" &&
    mediaType !== "text/csv" &&
    mediaType !== "application/x-www-form-urlencoded" &&
    !NDJSON_TYPES.has(mediaType) &&
    !ARROW_TYPES.has(mediaType)
  ) {
    throw bad(`Content-Type not acceptable: ${raw}`, {
      hint: "Send application/json, application/x-ndjson, text/csv, application/x-www-form-urlencoded or application/vnd.apache.arrow.stream.",
    });
  }
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > opts.maxBytes) throw tooLarge(opts.maxBytes, `Content-Length is ${declared} bytes.`);

  if (NDJSON_TYPES.has(mediaType)) return readNdjson(request, opts);
  const bytes = await readAll(request, opts.maxBytes);
  if (ARROW_TYPES.has(mediaType)) return project(fromArrow(bytes), opts.columns, false);
  const text = decodeUtf8(bytes);
  if (mediaType === "text/csv") return { ...project(parseCsv(text), opts.columns, false), text: true };
  if (mediaType === "application/x-www-form-urlencoded") {
    const form = new Map<string, string>(); // repeated keys: the last one wins
    for (const [k, v] of new URLSearchParams(text)) form.set(k, v);
    return {
      ...project({ columns: [...form.keys()], rows: [[...form.values()]] }, opts.columns, true),
      text: true,
    };
  }
  return readJson(text, opts.columns);
}

/**
 * A small JSON body (schema, project settings) read within `maxBytes` (413 past it);
 * `undefined` when it is not valid JSON, for the caller to refuse in its own words.
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes, `Content-Length is ${declared} bytes.`);
  const bytes = await readAll(request, maxBytes);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}

function bad(message: string, extra: { details?: string; hint?: string } = {}): HearthError {
  return new HearthError("PGRST102", message, extra);
}

function tooLarge(maxBytes: number, details: string): HearthError {
  return new HearthError(
    "HEARTH_PAYLOAD_TOO_LARGE",
    `Request body is larger than the limit of ${maxBytes} bytes`,
    {
      details,
      hint: "Split the rows into several requests.",
    },
  );
}

/** The body's chunks, counting bytes: throws 413 as soon as the total passes `maxBytes`. */
async function* chunksOf(request: Request, maxBytes: number): AsyncGenerator<Uint8Array> {
  if (!request.body) return;
  const reader = request.body.getReader();
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes, `The body went past ${maxBytes} bytes while being read.`);
      }
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function readAll(request: Request, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunksOf(request, maxBytes)) {
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw bad("Request body is not valid UTF-8");
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`;
}

/**
 * Applies PostgREST's key rules to a sequence of objects: without `columns`, every object
 * must have the first one's key set ("All object keys must match"); with `columns`, those
 * are the batch columns, other keys are ignored and absent ones become `MISSING`.
 */
class RowCollector {
  readonly columns: string[];
  readonly rows: unknown[][] = [];
  private index: Map<string, number> | null = null;
  private firstWhere = "";

  constructor(private readonly fixed: string[] | undefined) {
    this.columns = fixed ? [...fixed] : [];
  }

  /** `where` names the object for error messages: "element 3", "line 7". */
  add(obj: unknown, where: string): void {
    if (!isObject(obj)) throw bad(`Expected a JSON object at ${where}, got ${kindOf(obj)}`);
    if (this.fixed) {
      this.rows.push(this.fixed.map((c) => (Object.hasOwn(obj, c) ? obj[c] : MISSING)));
      return;
    }
    const keys = Object.keys(obj);
    if (!this.index) {
      this.index = new Map(keys.map((k, i) => [k, i]));
      this.columns.push(...keys);
      this.firstWhere = where;
      this.rows.push(keys.map((k) => obj[k]));
      return;
    }
    const row = new Array<unknown>(this.columns.length);
    let ok = keys.length === this.columns.length;
    for (let i = 0; ok && i < keys.length; i++) {
      const at = this.index.get(keys[i]!);
      if (at === undefined) ok = false;
      else row[at] = obj[keys[i]!];
    }
    if (!ok) {
      throw bad("All object keys must match", {
        details: `${cap(where)} has keys (${keys.join(", ")}) but ${this.firstWhere} has (${this.columns.join(", ")})`,
        hint: "Give every object the same keys, or list the columns with ?columns=a,b so missing keys become NULL or DEFAULT.",
      });
    }
    this.rows.push(row);
  }
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function readJson(text: string, columns: string[] | undefined): RowBatch {
  let body: unknown;
  try {
    if (text.trim() === "") throw new SyntaxError("The request body is empty");
    body = JSON.parse(text);
  } catch (err) {
    throw bad("Empty or invalid json", { details: (err as Error).message });
  }
  const collector = new RowCollector(columns);
  if (Array.isArray(body)) {
    for (let i = 0; i < body.length; i++) collector.add(body[i], `element ${i}`);
    return { columns: collector.columns, rows: collector.rows, single: false };
  }
  if (!isObject(body)) throw bad(`Expected a JSON object or an array of objects, got ${kindOf(body)}`);
  collector.add(body, "the body");
  return { columns: collector.columns, rows: collector.rows, single: true };
}

/** NDJSON, decoded and split while streaming so a 100k-line body is parsed in one pass. */
async function readNdjson(request: Request, opts: ReadRowBatchOptions): Promise<RowBatch> {
  const collector = new RowCollector(opts.columns);
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let pending: string[] = []; // pieces of a line split across chunks (joined once, not concatenated)
  let lineNo = 0;
  const take = (line: string) => {
    lineNo++;
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw bad(`Invalid JSON on line ${lineNo} of the NDJSON body`, { details: (err as Error).message });
    }
    collector.add(value, `line ${lineNo}`);
  };
  const feed = (text: string) => {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      const piece = text.slice(start, nl);
      if (pending.length > 0) {
        pending.push(piece);
        take(pending.join(""));
        pending = [];
      } else take(piece);
      start = nl + 1;
    }
    if (start < text.length) pending.push(text.slice(start));
  };
  const decode = (chunk?: Uint8Array): string => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw bad(`The NDJSON body is not valid UTF-8 (after line ${lineNo})`);
    }
  };
  for await (const chunk of chunksOf(request, opts.maxBytes)) feed(decode(chunk));
  feed(decode());
  if (pending.length > 0) take(pending.join(""));
  return { columns: collector.columns, rows: collector.rows, single: false };
}

/** Reorders a header-and-rows batch to `columns` (absent → MISSING); checks duplicate names. */
function project(
  batch: { columns: string[]; rows: unknown[][] },
  columns: string[] | undefined,
  single: boolean,
): RowBatch {
  const seen = new Set<string>();
  for (const c of batch.columns) {
    if (seen.has(c)) throw bad(`Column "${c}" appears twice in the body`);
    seen.add(c);
  }
  if (!columns) return { ...batch, single };
  const from = columns.map((c) => batch.columns.indexOf(c));
  const rows = batch.rows.map((r) => from.map((j) => (j < 0 ? MISSING : r[j])));
  return { columns: [...columns], rows, single };
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/**
 * RFC 4180 CSV with PostgREST's value rules. Hand-written rather than papaparse because
 * PostgREST semantics need to know whether a field was quoted (`NULL` → null, `"NULL"` →
 * the string) and errors must name the physical line, which papaparse reports as a record
 * index. Blank lines are skipped.
 */
function parseCsv(text: string): { columns: string[]; rows: unknown[][] } {
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let header: string[] | null = null;
  let headerLine = 1;
  const rows: unknown[][] = [];
  while (i < n) {
    const c0 = text.charCodeAt(i);
    if (c0 === LF || c0 === CR) {
      i += c0 === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      continue;
    }
    const recordLine = line;
    const fields: unknown[] = [];
    for (;;) {
      if (text.charCodeAt(i) === QUOTE) {
        let value = "";
        let from = i + 1;
        for (;;) {
          const q = text.indexOf('"', from);
          if (q < 0) throw bad(`Unterminated quoted field in the CSV body, starting on line ${line}`);
          value += text.slice(from, q);
          if (text.charCodeAt(q + 1) !== QUOTE) {
            from = q + 1;
            break;
          }
          value += '"';
          from = q + 2;
        }
        for (let k = value.indexOf("\n"); k >= 0; k = value.indexOf("\n", k + 1)) line++;
        i = from;
        fields.push(value);
        const after = text.charCodeAt(i);
        if (i < n && after !== COMMA && after !== LF && after !== CR) {
          throw bad(
            `Unexpected character after the closing quote of field ${fields.length} on line ${line}`,
            {
              hint: 'Inside a quoted field write a double quote as "".',
            },
          );
        }
      } else {
        let j = i;
        while (j < n) {
          const c = text.charCodeAt(j);
          if (c === COMMA || c === LF || c === CR) break;
          j++;
        }
        const raw = text.slice(i, j);
        fields.push(raw === "NULL" ? null : raw);
        i = j;
      }
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      if (c === CR || c === LF) {
        i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
        line++;
      }
      break;
    }
    if (!header) {
      header = fields.map((f) => (f === null ? "NULL" : (f as string)));
      headerLine = recordLine;
      const empty = header.indexOf("");
      if (empty >= 0) throw bad(`The CSV header names no column in field ${empty + 1}`);
    } else if (fields.length !== header.length) {
      throw bad("All lines must have same number of fields", {
        details: `Line ${recordLine} has ${fields.length} fields but the header (line ${headerLine}) has ${header.length}`,
      });
    } else rows.push(fields);
  }
  if (!header) throw bad("Empty CSV body", { hint: "The first line must name the columns: a,b,c" });
  return { columns: header, rows };
}

/** Arrow IPC (stream or file) → header and rows, converted column by column for speed. */
function fromArrow(bytes: Uint8Array): { columns: string[]; rows: unknown[][] } {
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
