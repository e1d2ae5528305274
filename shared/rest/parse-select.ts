/**
 * `select=` parser, plus the small scanner that every query-string parser of the PostgREST
 * dialect shares (names, quoted names, JSON paths, PostgREST-style PGRST100 errors).
 */
import { HearthError } from "../errors.ts";
import type { AggregateFn, FieldRef, JsonPathStep, SelectItem } from "./plan.ts";

/** Characters that end an unquoted name. `-` ends it only as part of `->`. */
const RESERVED = new Set([",", ".", ":", "(", ")", "!", '"', "*"]);
const MAX_DEPTH = 32;

export interface Name {
  text: string;
  quoted: boolean;
}

/** A cursor over one parameter value; `fail` throws PGRST100 naming the problem and where. */
export class Scanner {
  pos = 0;
  /**
   * @param src the text being parsed
   * @param what what it is, for the message: "failed to parse <what> (<shown>)"
   * @param shown the text quoted in the message (defaults to `src`)
   */
  constructor(
    readonly src: string,
    readonly what: string,
    readonly shown: string = src,
  ) {}

  get done(): boolean {
    return this.pos >= this.src.length;
  }
  peek(): string {
    return this.src[this.pos] ?? "";
  }
  at(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }
  eat(s: string): boolean {
    if (!this.at(s)) return false;
    this.pos += s.length;
    return true;
  }
  expect(s: string, expecting = JSON.stringify(s)): void {
    if (!this.eat(s)) this.fail(expecting);
  }
  spaces(): void {
    while (!this.done && /\s/.test(this.peek())) this.pos++;
  }

  /** The token at the cursor, for "unexpected ..." (a run of ordinary chars, or one delimiter). */
  describe(): string {
    if (this.done) return "end of input";
    let end = this.pos;
    while (end < this.src.length && end - this.pos < 24 && !/[\s,.:()!"*{}]/.test(this.src[end] ?? "")) end++;
    return JSON.stringify(this.src.slice(this.pos, Math.max(end, this.pos + 1)));
  }

  /**
   * Throws PGRST100: message `failed to parse <what> (<shown>)`, details
   * `unexpected <token> [at column N] expecting <expecting>` (PostgREST's wording).
   */
  fail(expecting: string, unexpected = this.describe(), at = this.pos): never {
    const where = at > 0 ? ` at column ${at + 1}` : "";
    throw new HearthError("PGRST100", `failed to parse ${this.what} (${this.shown})`, {
      details: `unexpected ${unexpected}${where} expecting ${expecting}`,
    });
  }

  /** `"quoted"` (with `\"` and `\\` escapes) or an unquoted run, trimmed; null if none. */
  name(): Name | null {
    this.spaces();
    if (this.at('"')) {
      const start = this.pos;
      const text = this.quoted();
      if (text === null) this.fail('a closing quote (")', "end of input", start);
      this.spaces();
      return { text, quoted: true };
    }
    const start = this.pos;
    while (!this.done && !RESERVED.has(this.peek()) && !this.at("->")) this.pos++;
    const text = this.src.slice(start, this.pos).trim();
    return text === "" ? null : { text, quoted: false };
  }

  /** A double-quoted string at the cursor, unescaped; null (cursor unchanged) if unterminated. */
  quoted(): string | null {
    const start = this.pos;
    let out = "";
    this.pos++;
    while (!this.done) {
      const c = this.peek();
      this.pos++;
      if (c === '"') return out;
      if (c === "\\" && !this.done) {
        out += this.peek();
        this.pos++;
      } else out += c;
    }
    this.pos = start;
    return null;
  }

  /** A name that must be present and non-empty. */
  requireName(expecting: string): Name {
    const start = this.pos;
    const n = this.name();
    if (n === null) this.fail(expecting);
    if (n.text === "") this.fail(expecting, "empty name", start);
    return n;
  }

  /** `col`, `col->a->>b`, `col->0`, `col->-1`. */
  field(expecting = "a column name"): FieldRef {
    return this.jsonPath(this.requireName(expecting).text);
  }

  /** The JSON path after an already-read column name. */
  jsonPath(column: string): FieldRef {
    const path: JsonPathStep[] = [];
    let asText = false;
    while (this.at("->")) {
      if (asText) this.fail('"." or the end of the field (->> must be the last arrow of a JSON path)');
      asText = this.at("->>");
      this.pos += asText ? 3 : 2;
      const key = this.requireName("a JSON key or array index");
      if (!key.quoted && /^-?\d+$/.test(key.text)) path.push({ kind: "index", index: Number(key.text) });
      else path.push({ kind: "key", key: key.text });
    }
    return { column, path, asText };
  }
}

const AGGREGATES = new Set<string>(["count", "sum", "avg", "min", "max"]);

/** `select=` → items. Empty (or blank) means `*`. */
export function parseSelect(input: string): SelectItem[] {
  if (input.trim() === "") return [{ type: "star" }];
  const s = new Scanner(input, "select parameter");
  const items = parseList(s, 0);
  if (!s.done) s.fail('"," or end of input');
  return items;
}

function parseList(s: Scanner, depth: number): SelectItem[] {
  if (depth > MAX_DEPTH) s.fail(`at most ${MAX_DEPTH} levels of embedding`, "nesting");
  const items: SelectItem[] = [];
  do {
    items.push(parseItem(s, depth));
    s.spaces();
  } while (s.eat(","));
  return items;
}

const ITEM = "a column, *, count() or an embedded resource";

function parseItem(s: Scanner, depth: number): SelectItem {
  s.spaces();
  if (s.eat("...")) {
    const rel = s.requireName("the name of the resource to spread");
    return parseEmbed(s, depth, rel, undefined, true);
  }
  if (s.eat("*")) return { type: "star" };
  let name = s.requireName(ITEM);
  let alias: string | undefined;
  if (s.at(":") && !s.at("::")) {
    s.pos++;
    alias = name.text;
    name = s.requireName("a column, count() or an embedded resource after the alias");
  }
  if (!name.quoted && name.text === "count" && /^\(\s*\)/.test(s.src.slice(s.pos))) {
    s.pos = s.src.indexOf(")", s.pos) + 1;
    const item: SelectItem = { type: "count" };
    if (alias !== undefined) item.alias = alias;
    const cast = parseCast(s);
    if (cast !== undefined) item.aggregateCast = cast;
    return item;
  }
  if (s.at("!") || s.at("(")) return parseEmbed(s, depth, name, alias, false);

  const field = s.jsonPath(name.text);
  const item: SelectItem = { type: "field", field };
  if (alias !== undefined) item.alias = alias;
  const cast = parseCast(s);
  if (cast !== undefined) item.cast = cast;
  if (s.at(".")) {
    s.pos++;
    const start = s.pos;
    const fn = s.name();
    if (fn === null || fn.quoted || !AGGREGATES.has(fn.text)) {
      const found = fn === null ? undefined : JSON.stringify(fn.text);
      s.fail("an aggregate: count(), sum(), avg(), min() or max()", found, start);
    }
    s.spaces();
    s.expect("()", `"()" after the aggregate ${fn.text}`);
    item.aggregate = fn.text as AggregateFn;
    const aggCast = parseCast(s);
    if (aggCast !== undefined) item.aggregateCast = aggCast;
  }
  return item;
}

/** `::type` (letters, digits, `_`, spaces, `[]`), or undefined if no `::` follows. */
function parseCast(s: Scanner): string | undefined {
  s.spaces();
  if (!s.eat("::")) return undefined;
  const m = /^\s*([A-Za-z_][\w ]*(?:\[\])*)/.exec(s.src.slice(s.pos));
  const type = m?.[1]?.trim();
  if (m === null || type === undefined || type === "") s.fail("a type name after ::");
  s.pos += m[0].length;
  s.spaces();
  return type;
}

function parseEmbed(
  s: Scanner,
  depth: number,
  rel: Name,
  alias: string | undefined,
  spread: boolean,
): SelectItem {
  let hint: string | undefined;
  let joinSeen = false;
  let inner = false;
  while (s.at("!")) {
    const bang = s.pos;
    s.pos++;
    const word = s.requireName("a hint, inner or left after !");
    const isJoin = !word.quoted && (word.text === "inner" || word.text === "left");
    if (joinSeen || (!isJoin && hint !== undefined)) {
      s.fail('"(" (at most rel!hint!inner: a hint, then inner or left)', JSON.stringify("!"), bang);
    }
    if (isJoin) {
      joinSeen = true;
      inner = word.text === "inner";
    } else hint = word.text;
  }
  s.spaces();
  if (!s.at("(")) s.fail(`"(" to open the columns of the embedded resource ${rel.text}`);
  s.pos++;
  s.spaces();
  const select = s.at(")") ? [] : parseList(s, depth + 1);
  s.expect(")", '"," or ")"');
  const item: SelectItem = { type: "embed", relation: rel.text, inner, spread, select };
  if (alias !== undefined) item.alias = alias;
  if (hint !== undefined) item.hint = hint;
  return item;
}
