/**
 * Request bodies of REST writes → one row batch, whatever the Content-Type (PostgREST
 * dialect §5, plus Hearth's bulk formats NDJSON and Arrow IPC). The body is streamed and
 * counted so that an oversize upload is refused before it is buffered. Values are not cast
 * here: JSON stays parsed JSON, CSV and form values stay strings, Arrow values become their
 * JS equivalents; the caller casts per column type and decides what `MISSING` means.
 */
import { HearthError } from "../errors.ts";
import { fromArrow } from "./bodies-arrow.ts";
import { bad, type HeaderRows } from "./bodies-common.ts";
import { parseCsv } from "./bodies-csv.ts";

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

function tooLarge(maxBytes: number, details: string): HearthError {
  return new HearthError(
    "HEARTH_PAYLOAD_TOO_LARGE",
    `Request body is larger than the limit of ${maxBytes} bytes`,
    {
      details,
      hint: "Split the rows into several requests, or raise HEARTH_MAX_BODY_BYTES.",
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

/** The whole body within `maxBytes` (413 past it, or for a larger Content-Length). */
export async function readBodyBytes(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes, `Content-Length is ${declared} bytes.`);
  return readAll(request, maxBytes);
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
function project(batch: HeaderRows, columns: string[] | undefined, single: boolean): RowBatch {
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

/**
 * Reads a request body to its end, or up to `maxBytes`, and drops it: a request refused before
 * its body was read must still be read, or the client sees a reset connection instead of the
 * answer. A body already locked or a client that went away leaves nothing to drain.
 */
export async function drain(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<void> {
  try {
    const reader = body.getReader();
    let seen = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
      if (seen > maxBytes) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // locked by a reader that failed, or the client went away: nothing left to drain
  }
}
