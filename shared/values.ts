/**
 * Values between the wire (JSON / query-string text) and SQLite storage, per column type.
 * Storage forms: boolean → 0/1, json → canonical JSON text, timestamp → ISO-8601 UTC text,
 * date → YYYY-MM-DD, uuid → lower-case text, bytes → BLOB (wire: "\x" + hex, as PostgreSQL).
 */
import { HearthError } from "./errors.ts";
import type { ColumnType } from "./schema.ts";
import { vectorFromStorage, vectorToStorage } from "./vector.ts";

export type StorageValue = string | number | ArrayBuffer | null;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT = /^[+-]?\d+$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TRUE = new Set(["true", "t", "yes", "y", "on", "1"]);
const FALSE = new Set(["false", "f", "no", "n", "off", "0"]);

function bad(type: ColumnType, value: unknown, column: string): HearthError {
  const shown = typeof value === "string" ? `"${value.slice(0, 80)}"` : JSON.stringify(value)?.slice(0, 80);
  return new HearthError("22P02", `invalid input syntax for type ${type}: ${shown}`, {
    details: `column "${column}" expects a ${type}`,
  });
}

function toInteger(v: unknown, type: ColumnType, column: string): number {
  if (typeof v === "number" && Number.isInteger(v)) {
    if (!Number.isSafeInteger(v)) throw bad(type, v, column);
    if (type === "integer" && (v > 2147483647 || v < -2147483648)) {
      throw new HearthError("22003", `value ${v} is out of range for type integer`, {
        details: `column "${column}"`,
      });
    }
    return v;
  }
  if (typeof v === "string" && INT.test(v.trim())) return toInteger(Number(v.trim()), type, column);
  throw bad(type, v, column);
}

function toTimestamp(v: unknown, column: string): string {
  if (typeof v !== "string" || v.trim() === "") throw bad("timestamp", v, column);
  let text = v.trim();
  // "2024-01-02 03:04:05" (PostgreSQL style) and values without a zone are UTC.
  if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}/.test(text)) {
    text = text.replace(" ", "T");
    if (!/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(text)) text += "Z";
    text = text.replace(/([+-]\d{2})$/, "$1:00");
  } else if (DATE.test(text)) {
    text += "T00:00:00Z";
  }
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw bad("timestamp", v, column);
  return new Date(ms).toISOString();
}

function toDate(v: unknown, column: string): string {
  if (typeof v !== "string") throw bad("date", v, column);
  const m = DATE.exec(v.trim());
  if (m) {
    const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    if (d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3])) return v.trim();
    throw bad("date", v, column);
  }
  return toTimestamp(v, column).slice(0, 10);
}

export function hexToBytes(hex: string): ArrayBuffer | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out.buffer;
}

const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const latin1 = new TextDecoder("latin1");

/** Lower-case hex of bytes: ASCII digits written into one buffer and decoded once (vectors are KBs each). */
export function bytesToHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const out = new Uint8Array(view.length * 2);
  for (let i = 0; i < view.length; i++) {
    const b = view[i]!;
    out[2 * i] = HEX_DIGITS[b >> 4]!;
    out[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  return latin1.decode(out);
}

function toBytes(v: unknown, column: string): ArrayBuffer {
  if (v instanceof Uint8Array) return v.slice().buffer;
  if (typeof v === "string" && v.startsWith("\\x")) {
    const buf = hexToBytes(v.slice(2));
    if (buf) return buf;
  }
  throw bad("bytes", v, column);
}

const CANONICAL_TS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{3}Z$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Already in storage form (`2024-01-02T03:04:05.000Z`) and a real instant: no Date round trip. */
function isCanonicalTimestamp(s: string): boolean {
  const m = CANONICAL_TS.exec(s);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= DAYS[month - 1]! + leap &&
    Number(m[4]) < 24 &&
    Number(m[5]) < 60 &&
    Number(m[6]) < 60
  );
}

/**
 * A wire value (parsed JSON from a body, or a string from CSV/query text when `fromText`)
 * to its storage form. null stays null; notNull is checked by the caller.
 */
export function toStorage(type: ColumnType, v: unknown, column: string, fromText = false): StorageValue {
  if (v === null || v === undefined) return null;
  // Fast paths for values already in their storage form: bulk inserts spend most of their
  // JavaScript time here.
  if (typeof v === "string") {
    if (type === "text") return v;
    if (type === "timestamp" && isCanonicalTimestamp(v)) return v;
  } else if (typeof v === "number") {
    if (type === "float" && Number.isFinite(v)) return v;
    if (type === "bigint" && Number.isSafeInteger(v)) return v;
  } else if (typeof v === "boolean" && type === "boolean") {
    return v ? 1 : 0;
  }
  switch (type) {
    case "text":
      if (typeof v === "string") return v;
      if (!fromText && (typeof v === "number" || typeof v === "boolean")) return String(v);
      throw bad(type, v, column);
    case "integer":
    case "bigint":
      return toInteger(v, type, column);
    case "float": {
      const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
      if (!Number.isFinite(n)) throw bad(type, v, column);
      return n;
    }
    case "boolean":
      if (typeof v === "boolean") return v ? 1 : 0;
      if (typeof v === "string") {
        const s = v.trim().toLowerCase();
        if (TRUE.has(s)) return 1;
        if (FALSE.has(s)) return 0;
      }
      throw bad(type, v, column);
    case "timestamp":
      return toTimestamp(v, column);
    case "date":
      return toDate(v, column);
    case "uuid":
      if (typeof v === "string" && UUID.test(v.trim())) return v.trim().toLowerCase();
      throw bad(type, v, column);
    case "json":
      if (fromText) {
        if (typeof v !== "string") throw bad(type, v, column);
        try {
          return JSON.stringify(JSON.parse(v));
        } catch {
          throw bad(type, v, column);
        }
      }
      return JSON.stringify(v);
    case "bytes":
      return toBytes(v, column);
    case "vector":
      return vectorToStorage(v, column, fromText);
  }
}

/** A SQLite value read back to its wire (JSON) form. */
export function fromStorage(type: ColumnType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type) {
    case "boolean":
      return v === 1 || v === 1n || v === true;
    case "json":
      return typeof v === "string" ? JSON.parse(v) : v;
    case "bytes":
      return v instanceof ArrayBuffer || v instanceof Uint8Array ? `\\x${bytesToHex(v)}` : v;
    case "vector":
      return v instanceof ArrayBuffer || v instanceof Uint8Array ? vectorFromStorage(v) : v;
    case "integer":
    case "bigint":
      return typeof v === "bigint" ? Number(v) : v;
    default:
      return v;
  }
}

/** How an expression compares: as a column type, as text (`->>`) or as JSON (`->`). */
export type ExprKind = ColumnType | "json-text" | "json-value";

/** Casts a filter value (text) for comparison with an expression. */
export function castValue(kind: ExprKind, value: string, column: string): StorageValue {
  if (kind === "json-text") return value;
  if (kind === "json-value" || kind === "json") {
    try {
      return JSON.stringify(JSON.parse(value));
    } catch {
      throw new HearthError("22P02", `invalid input syntax for type json: "${value.slice(0, 80)}"`, {
        details: `column "${column}"`,
      });
    }
  }
  return toStorage(kind, value, column, true);
}
