/**
 * Evaluates plan conditions (shared/rest/plan.ts) against one row in JavaScript, with the
 * same semantics as the SQL the hot tier compiles them to (durable-objects/sql-where.ts):
 * SQL's three-valued logic (a comparison with NULL is unknown, `not.` of unknown is unknown),
 * PostgreSQL's case-sensitive `like`, `->` comparing JSON and `->>` comparing text.
 * Realtime filters and merge-on-read over columnar segments use it; a differential test
 * (test/evaluate.test.ts) holds it to the SQL path.
 */
import { asciiLower, compareText } from "../collate.ts";
import { HearthError } from "../errors.ts";
import type { ColumnType } from "../schema.ts";
import { bytesToHex, castValue, type ExprKind, type StorageValue, toStorage } from "../values.ts";
import type { Condition, FieldRef, Filter } from "./plan.ts";

export type Truth = boolean | null;
export type WireRow = Record<string, unknown>;

export type ColumnLookup = (name: string) => { type: ColumnType; encrypted?: boolean } | undefined;

type Comparable = number | string;

/** SQLite orders values of different storage classes: numbers < text < blobs (hex here). */
function rank(v: Comparable): number {
  return typeof v === "number" ? 0 : 1;
}

function compare(a: Comparable, b: Comparable): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === "string") return Math.sign(compareText(a, b as string));
  const x = a as number;
  const y = b as number;
  if (x < y) return -1;
  return x > y ? 1 : 0;
}

function comparable(v: StorageValue): Comparable | null {
  if (v === null) return null;
  return v instanceof ArrayBuffer ? `\\x${bytesToHex(v)}` : v;
}

interface Resolved {
  value: Comparable | null;
  kind: ExprKind;
  /** the JSON value itself, for containment operators */
  json?: unknown;
}

function navigate(value: unknown, field: FieldRef): unknown {
  let v = value;
  for (const step of field.path) {
    if (v === null || v === undefined) return undefined;
    if (step.kind === "index") {
      if (!Array.isArray(v)) return undefined;
      v = v[step.index < 0 ? v.length + step.index : step.index];
    } else {
      if (typeof v !== "object" || Array.isArray(v)) return undefined;
      v = (v as Record<string, unknown>)[step.key];
    }
  }
  return v;
}

function resolve(row: WireRow, field: FieldRef, columns: ColumnLookup): Resolved {
  const col = columns(field.column);
  if (!col) throw new HearthError("42703", `column ${field.column} does not exist`);
  const raw = row[field.column];
  if (field.path.length === 0) {
    const kind = col.type;
    if (raw === null || raw === undefined) return { value: null, kind };
    return { value: comparable(toStorage(col.type, raw, field.column)), kind, json: raw };
  }
  if (col.type !== "json") {
    throw new HearthError("42883", `operator does not exist: ${col.type} ->`, {
      hint: `JSON paths (-> and ->>) apply to json columns; "${field.column}" is ${col.type}.`,
    });
  }
  const found = navigate(raw, field);
  if (field.asText) {
    if (found === undefined || found === null) return { value: null, kind: "json-text" };
    return { value: typeof found === "string" ? found : JSON.stringify(found), kind: "json-text" };
  }
  // A missing path is SQL NULL; a JSON null is the JSON value `null`.
  if (found === undefined) return { value: null, kind: "json-value" };
  return { value: JSON.stringify(found), kind: "json-value", json: found };
}

/** A LIKE pattern: `*` and `%` match any run, `_` one character, a backslash escapes the next. */
type LikeToken = string | typeof LIKE_ONE | typeof LIKE_ANY;
const LIKE_ONE = 1;
const LIKE_ANY = 2;

function likeTokens(pattern: string): LikeToken[] {
  const tokens: LikeToken[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "\\" && i + 1 < pattern.length) tokens.push(pattern[++i]!);
    else if (ch === "*" || ch === "%") {
      if (tokens[tokens.length - 1] !== LIKE_ANY) tokens.push(LIKE_ANY);
    } else if (ch === "_") tokens.push(LIKE_ONE);
    else tokens.push(ch);
  }
  return tokens;
}

/**
 * Wildcard matching without backtracking blow-up: on a mismatch only the last `*` is
 * retried one character further, so the cost is at most pattern × subject, never
 * exponential (a regex of `[\s\S]*` runs took seconds on `*a*a*a*a*b` against 120 `a`s).
 * It compares UTF-16 code units, as the regex it replaces did.
 */
function likeMatches(pattern: string, subject: string): boolean {
  const t = likeTokens(pattern);
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < subject.length) {
    const tok = t[p];
    if (p < t.length && (tok === LIKE_ONE || tok === subject[i])) {
      p++;
      i++;
    } else if (tok === LIKE_ANY) {
      starP = p++;
      starI = i;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else return false;
  }
  while (t[p] === LIKE_ANY) p++;
  return p === t.length;
}

/** SQLite's text of a REAL (`%!.15g`): whole numbers keep a ".0". */
function realText(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return `${v}.0`;
  const g = Number(v.toPrecision(15));
  return Number.isInteger(g) && Math.abs(g) < 1e15 ? `${g}.0` : String(g);
}

function textOf(v: Comparable): string {
  return typeof v === "string" ? v : String(v);
}

/** Whether a comparison result (-1/0/1) passes each comparison operator. */
export const CMP: Record<string, (c: number) => boolean> = {
  eq: (c) => c === 0,
  neq: (c) => c !== 0,
  gt: (c) => c > 0,
  gte: (c) => c >= 0,
  lt: (c) => c < 0,
  lte: (c) => c <= 0,
};

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function sameJson(a: unknown, b: unknown): boolean {
  return jsonType(a) === jsonType(b) && JSON.stringify(a) === JSON.stringify(b);
}

function needleOf(f: Filter): unknown {
  const t = f.value.trim();
  try {
    if (t.startsWith("[") || (t.startsWith("{") && t.includes(":"))) return JSON.parse(t);
    if (t.startsWith("{") && t.endsWith("}")) {
      const inner = t.slice(1, -1).trim();
      return inner === "" ? [] : inner.split(",").map((s) => s.trim().replace(/^"(.*)"$/, "$1"));
    }
  } catch {
    // fall through to the error below
  }
  throw new HearthError("22P02", `invalid input syntax for ${f.op}: "${f.value.slice(0, 80)}"`);
}

/** Every element (or key/value) of `needle` is in `hay`. */
function contains(hay: unknown, needle: unknown): boolean {
  if (Array.isArray(needle))
    return Array.isArray(hay) && needle.every((n) => hay.some((h) => sameJson(h, n)));
  if (needle !== null && typeof needle === "object") {
    if (hay === null || typeof hay !== "object" || Array.isArray(hay)) return false;
    return Object.entries(needle).every(
      ([k, v]) => k in (hay as Record<string, unknown>) && sameJson((hay as Record<string, unknown>)[k], v),
    );
  }
  return false;
}

function containment(f: Filter, r: Resolved): Truth {
  if (r.kind !== "json" && r.kind !== "json-value") {
    throw new HearthError(
      "42883",
      `operator ${f.op} applies to json columns; "${f.field.column}" is ${r.kind}`,
    );
  }
  const needle = needleOf(f);
  if (r.value === null) return null;
  const hay = r.json;
  if (f.op === "cs") return contains(hay, needle);
  if (f.op === "cd") return contains(needle, hay);
  return Array.isArray(hay) && Array.isArray(needle) && hay.some((h) => needle.some((n) => sameJson(h, n)));
}

function evaluateFilter(f: Filter, row: WireRow, columns: ColumnLookup): Truth {
  const col = columns(f.field.column);
  if (col?.encrypted && !(f.op === "is" && (f.value === "null" || f.value === "not_null"))) {
    throw new HearthError("HEARTH_UNSUPPORTED", `Cannot filter on encrypted column "${f.field.column}"`, {
      details: "Encrypted columns hold client-side ciphertext; the server never sees their values.",
      hint: "Filter on another column, or decrypt and filter on the client.",
    });
  }
  const r = resolve(row, f.field, columns);
  const v = r.value;
  const one = (text: string): Truth => {
    if (f.op === "like" || f.op === "ilike") {
      if (v === null) return null;
      // LIKE sees SQLite's text of the value: a float column's 2 is the REAL 2.0, "2.0".
      const subject = r.kind === "float" && typeof v === "number" ? realText(v) : textOf(v);
      // SQLite's LIKE folds case for ASCII letters only: ilike lower-cases both sides so.
      if (f.op === "like") return likeMatches(text, subject);
      return likeMatches(asciiLower(text), asciiLower(subject));
    }
    const target = comparable(castValue(r.kind, text, f.field.column));
    if (v === null || target === null) return null;
    return CMP[f.op]!(compare(v, target));
  };
  let result: Truth;
  switch (f.op) {
    case "eq":
    case "neq":
    case "gt":
    case "gte":
    case "lt":
    case "lte":
    case "like":
    case "ilike":
      result = f.quantifier ? quantified(f.values ?? [], f.quantifier, one) : one(f.value);
      break;
    case "in": {
      const values = f.values ?? [];
      if (values.length === 0) {
        result = false;
        break;
      }
      const targets = values.map((x) => comparable(castValue(r.kind, x, f.field.column)));
      result = v === null ? null : targets.some((t) => t !== null && compare(v, t) === 0);
      break;
    }
    case "is":
      if (f.value === "null" || f.value === "unknown") result = v === null;
      else if (f.value === "not_null") result = v !== null;
      else if (r.kind !== "boolean") {
        throw new HearthError(
          "42883",
          `is.${f.value} applies to boolean columns; "${f.field.column}" is ${r.kind}`,
        );
      } else result = v === (f.value === "true" ? 1 : 0);
      break;
    case "isdistinct": {
      const target = comparable(castValue(r.kind, f.value, f.field.column));
      result = v === null || target === null ? v !== target : compare(v, target) !== 0;
      break;
    }
    case "cs":
    case "cd":
    case "ov":
      result = containment(f, r);
      break;
    default:
      throw new HearthError("HEARTH_UNSUPPORTED", `The filter operator "${f.op}" is not supported by Hearth`);
  }
  return f.negate ? not(result) : result;
}

function quantified(values: string[], q: "any" | "all", one: (v: string) => Truth): Truth {
  if (values.length === 0) return q === "all";
  return values.map(one).reduce<Truth>((acc, t) => (q === "any" ? or(acc, t) : and(acc, t)), q === "all");
}

function not(t: Truth): Truth {
  return t === null ? null : !t;
}

function and(a: Truth, b: Truth): Truth {
  if (a === false || b === false) return false;
  return a === null || b === null ? null : true;
}

function or(a: Truth, b: Truth): Truth {
  if (a === true || b === true) return true;
  return a === null || b === null ? null : false;
}

export function evaluateCondition(c: Condition, row: WireRow, columns: ColumnLookup): Truth {
  if (c.type === "filter") return evaluateFilter(c, row, columns);
  if (c.children.length === 0)
    throw new HearthError("PGRST100", `failed to parse logic tree: ${c.type}=() is empty`);
  const parts = c.children.map((child) => evaluateCondition(child, row, columns));
  const combined = parts.reduce<Truth>(
    (acc, t) => (c.type === "and" ? and(acc, t) : or(acc, t)),
    c.type === "and",
  );
  return c.negate ? not(combined) : combined;
}

/** True when the row passes every condition (unknown counts as not passing, as in WHERE). */
export function matches(conditions: Condition[], row: WireRow, columns: ColumnLookup): boolean {
  let acc: Truth = true;
  for (const c of conditions) acc = and(acc, evaluateCondition(c, row, columns));
  return acc === true;
}
