/**
 * Filters (`col=[not.]op[(any|all)|(config)].value`) and logic trees (`or=(a.eq.1,and(...))`).
 *
 * Top-level values are literal after `op.`; only `in.(...)` lists and the terms of logic trees
 * treat `,` `)` as delimiters and unquote `"..."` (`\"` → `"`, `\\` → `\`, `\c` → `c`).
 */
import { HearthError } from "../errors.ts";
import { Scanner } from "./parse-select.ts";
import type { Condition, FieldRef, Filter, FilterOp, Logic } from "./plan.ts";

const OPS = new Set<string>(
  "eq neq gt gte lt lte like ilike match imatch in is isdistinct cs cd ov fts plfts phfts wfts sl sr nxr nxl adj".split(
    " ",
  ),
);
const QUANTIFIABLE = new Set<string>(["eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"]);
const FTS = new Set<string>(["fts", "plfts", "phfts", "wfts"]);
const IS_VALUES = new Set(["null", "not_null", "true", "false", "unknown"]);
const EXPECT_OP = '"not" or operator (eq, gt, ...)';
const MAX_DEPTH = 32;

type Mode = "top" | "tree";

/**
 * Splits a filter key into its embed path and column: `posts.comments.data->>k` →
 * `{path: ["posts", "comments"], field: data->>k}`. Quoted segments may hold dots.
 */
export function parseFilterKey(key: string, value = ""): { path: string[]; field: FieldRef } {
  const s = new Scanner(key, "filter", `${key}=${value}`);
  const path: string[] = [];
  for (;;) {
    const name = s.requireName("a column name");
    if (s.eat(".")) {
      path.push(name.text);
      continue;
    }
    const field = s.jsonPath(name.text);
    if (!s.done) {
      const hint = field.path.length > 0 ? ' (quote JSON keys that contain ".": data->"a.b")' : "";
      s.fail(`"=" after the column${hint}`);
    }
    return { path, field };
  }
}

/** A filter param: key (optionally with an embed path, see `parseFilterKey`) and value. */
export function parseFilterParam(key: string, value: string): { path: string[]; filter: Filter } {
  const { path, field } = parseFilterKey(key, value);
  const s = new Scanner(value, "filter", `${key}=${value}`);
  const filter = parseOpExpr(s, field, "top");
  return { path, filter };
}

/**
 * A top-level filter param: `parseFilter("id", "not.in.(1,2)")`. An embed path in a dotted
 * key (`posts.id`) is not part of `Filter`; `parseFilterParam` returns it.
 */
export function parseFilter(key: string, value: string): Filter {
  return parseFilterParam(key, value).filter;
}

/** `or=(...)`, `and=(...)`, `not.or=(...)`, `not.and=(...)`. */
export function parseLogic(key: "and" | "or" | "not.and" | "not.or", value: string): Logic {
  const negate = key.startsWith("not.");
  const type = negate ? key.slice(4) : key;
  const s = new Scanner(value, "logic tree", `${key}=${value}`);
  s.spaces();
  const children = parseChildren(s, 0);
  s.spaces();
  if (!s.done) s.fail("end of input");
  return { type: type === "and" ? "and" : "or", negate, children };
}

function parseChildren(s: Scanner, depth: number): Condition[] {
  if (depth > MAX_DEPTH) s.fail(`at most ${MAX_DEPTH} levels of nested and/or`, "nesting");
  s.expect("(", '"(" (a logic tree looks like (a.eq.1,b.gt.2))');
  const children: Condition[] = [];
  do {
    s.spaces();
    children.push(parseTerm(s, depth));
    s.spaces();
  } while (s.eat(","));
  s.expect(")", '"," or ")"');
  return children;
}

function parseTerm(s: Scanner, depth: number): Condition {
  const start = s.pos;
  const negate = s.eat("not.");
  for (const type of ["and", "or"] as const) {
    if (s.at(type) && /^\s*\(/.test(s.src.slice(s.pos + type.length))) {
      s.pos += type.length;
      s.spaces();
      return { type, negate, children: parseChildren(s, depth + 1) };
    }
  }
  s.pos = start;
  if (s.name() === null) s.fail("a filter (col.op.value) or a nested and(...) / or(...)");
  s.pos = start;
  const field = s.field();
  s.expect(".", '"." and an operator after the column');
  return parseOpExpr(s, field, "tree");
}

/** `[not.]op[(arg)].value` at the cursor. */
function parseOpExpr(s: Scanner, field: FieldRef, mode: Mode): Filter {
  const negate = s.eat("not.");
  const opStart = s.pos;
  const word = /^[^.,()]*/.exec(s.src.slice(s.pos))?.[0] ?? "";
  if (!OPS.has(word)) {
    s.fail(negate ? "operator (eq, gt, ...)" : EXPECT_OP, word === "" ? undefined : JSON.stringify(word));
  }
  s.pos += word.length;
  const op = word as FilterOp;
  const filter: Filter = { type: "filter", field, op, negate, value: "" };
  if (s.at("(")) {
    const close = s.src.indexOf(")", s.pos);
    if (close < 0) s.fail('")"', "end of input", s.src.length);
    const arg = s.src.slice(s.pos + 1, close).trim();
    if (FTS.has(op) && /^[^\s(),]+$/.test(arg)) filter.language = arg;
    else if (QUANTIFIABLE.has(op) && (arg === "any" || arg === "all")) filter.quantifier = arg;
    else {
      const expecting = FTS.has(op)
        ? "a text search configuration: fts(english)"
        : QUANTIFIABLE.has(op)
          ? "(any) or (all)"
          : `"." after ${op} (only eq, gt, gte, lt, lte, like, ilike, match, imatch take (any)/(all))`;
      s.fail(expecting, JSON.stringify(s.src.slice(s.pos, close + 1)));
    }
    s.pos = close + 1;
  }
  if (!s.eat(".")) s.fail(`"." and a value after ${s.src.slice(opStart, s.pos)}`);

  const valueStart = s.pos;
  if (op === "in") {
    filter.values = parseList(s, mode);
    filter.value = s.src.slice(valueStart, s.pos).trim();
    return filter;
  }
  if (op === "is") {
    const raw = mode === "top" ? s.src.slice(s.pos) : rawUntilDelimiter(s);
    if (!IS_VALUES.has(raw.toLowerCase())) {
      s.fail("null, not_null or trilean value (unknown, true, false)", JSON.stringify(raw), valueStart);
    }
    s.pos = valueStart + raw.length;
    filter.value = raw.toLowerCase();
    return filter;
  }
  if (mode === "top") {
    filter.value = s.src.slice(s.pos);
    s.pos = s.src.length;
  } else filter.value = treeValue(s);
  if (filter.quantifier !== undefined) filter.values = parsePgArray(filter.value);
  return filter;
}

/** `(a,"b,c", d)` → `["a", "b,c", " d"]`; `()` → `[]`. Spaces after `(` and after `)` are skipped. */
function parseList(s: Scanner, mode: Mode): string[] {
  s.spaces();
  s.expect("(", '"(" (in takes a list: in.(a,b))');
  s.spaces();
  const values: string[] = [];
  if (!s.eat(")")) {
    do values.push(listElement(s));
    while (s.eat(","));
    s.expect(")", '"," or ")" to close the list');
  }
  s.spaces();
  if (mode === "top" && !s.done) s.fail("end of input after the list");
  return values;
}

/** A quoted value (when the quote is followed by a delimiter) or a raw run up to `,` / `)`. */
function listElement(s: Scanner): string {
  if (s.at('"')) {
    const start = s.pos;
    const q = s.quoted();
    if (q !== null && (s.done || s.at(",") || s.at(")"))) return q;
    s.pos = start;
  }
  return rawUntilDelimiter(s);
}

function rawUntilDelimiter(s: Scanner): string {
  const raw = /^[^,)]*/.exec(s.src.slice(s.pos))?.[0] ?? "";
  s.pos += raw.length;
  return raw;
}

/** A value inside a logic tree: quoted, a `{...}` array literal kept whole, or raw up to `,` / `)`. */
function treeValue(s: Scanner): string {
  if (s.at("{")) {
    const m = /^\{[^{}]*\}/.exec(s.src.slice(s.pos));
    if (m !== null) {
      s.pos += m[0].length;
      return m[0];
    }
  }
  return listElement(s);
}

/** Elements of a PostgreSQL array literal `{a,"b,c"}` (quantified operators' values). */
export function parsePgArray(text: string): string[] {
  const bad = (details: string): never => {
    throw new HearthError("22P02", `malformed array literal: "${text}"`, { details });
  };
  const t = text.trim();
  if (!t.startsWith("{")) bad('Array value must start with "{" or dimension information.');
  if (!t.endsWith("}")) bad("Junk after closing right brace.");
  const s = new Scanner(t.slice(1, -1), "array");
  const out: string[] = [];
  s.spaces();
  if (s.done) return out;
  for (;;) {
    s.spaces();
    let item: string | null = null;
    if (s.at('"')) item = s.quoted();
    if (item === null) {
      const raw = /^[^,]*/.exec(s.src.slice(s.pos))?.[0] ?? "";
      s.pos += raw.length;
      item = raw.trim();
      if (item === "" || /[{}"]/.test(item)) bad("Unexpected array element.");
    }
    out.push(item);
    s.spaces();
    if (s.done) return out;
    if (!s.eat(",")) bad("Unexpected array element.");
  }
}
