/**
 * Differential test of the cold tier: three projects get the same random schema and the
 * same random writes, and must then answer random REST queries alike. H never flushes (the
 * reference), F flushes after every batch of writes (its reads are all cold), M flushes at
 * random points (its reads merge hot and cold rows, its writes promote flushed rows on both
 * sides of a flush). Every failure names the seed, the request and the writes before it, so
 * it replays. The last block pins the mismatches these runs found as small cases.
 */
import { describe, expect, it } from "vitest";
import { admin, type Init, projectWithSchema, rest, type TestProject } from "./helpers/api.ts";

const SEEDS = [101, 202, 303, 404, 505, 606, 808];
const PHASES = 3;
const BATCHES_PER_PHASE = 2;
const OPS_PER_BATCH = 3;
const QUERIES_PER_PHASE = 30;
/** Query mismatches recorded per seed before it stops (writes stop it at the first). */
const MAX_MISMATCHES = 4;

/** mulberry32: small, seeded, good enough to pick test cases. */
class Rng {
  constructor(private a: number) {}
  next(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = Math.imul(this.a ^ (this.a >>> 15), 1 | this.a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  some<T>(xs: readonly T[], n: number): T[] {
    const pool = [...xs];
    const out: T[] = [];
    while (out.length < n && pool.length > 0)
      out.push(pool.splice(Math.floor(this.next() * pool.length), 1)[0]!);
    return out;
  }
}

// ---- random schemas -------------------------------------------------------------------

type ColType = "integer" | "bigint" | "float" | "text" | "boolean" | "timestamp" | "date" | "json" | "uuid";
const TYPES: ColType[] = [
  "integer",
  "bigint",
  "float",
  "text",
  "boolean",
  "timestamp",
  "date",
  "json",
  "uuid",
];

interface Col {
  name: string;
  type: ColType;
  nullable: boolean;
  unique: boolean;
  hasDefault: boolean;
}

interface Table {
  name: string;
  /** `bigint` key with `default: "increment"`, or an `integer` key the client gives */
  increment: boolean;
  cols: Col[];
  parent?: { table: Table; fk: string; nullable: boolean };
  children: Table[];
}

// Text values include non-ASCII, U+FF21 and an astral character: JavaScript orders strings by
// UTF-16 code units, SQLite by UTF-8 bytes, and they disagree between U+E000–U+FFFF and U+10000+.
const WORDS = ["Alpha", "alpha", "ALPHA", "beta", "Beta gamma", "x_y", "50%", "", "zeta", "a*b", "é", "É"];
const ODD_WORDS = ["naïve", "Ａ", "😀", "z😀", "ｚ"];
const INTS = [-3, 0, 1, 2, 5, 10, 2147483647, -2147483648];
const BIGS = [-1099511627776, -1, 0, 3, 4294967296, 1099511627776];
const FLOATS = [-1.5, -1, 0, 0.1, 0.5, 1, 2, 2.25, 2.71, 1e15];
const TIMES = [
  "2024-01-01T00:00:00.000Z",
  "2024-06-15T12:30:00.000Z",
  "2024-06-15 12:30:00",
  "2026-11-22T23:59:59.999Z",
];
const DAYS = ["2024-01-01", "2024-02-29", "2025-12-31", "1999-12-31"];
const UUIDS = [
  "11111111-1111-4111-8111-111111111111",
  "22222222-2222-4222-8222-222222222222",
  "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA",
];
const DOCS: unknown[] = [
  { a: 1, s: "x", tags: ["x", "y"] },
  { a: 2, s: "y", tags: ["y"] },
  { a: 1.5, s: "é" },
  { s: "z", nested: { k: true } },
  [1, 2, 3],
  "plain",
  7,
  true,
];
const DEFAULTS: Record<ColType, unknown> = {
  integer: 7,
  bigint: 70,
  float: 0.25,
  text: "dflt",
  boolean: false,
  timestamp: "2020-02-02T02:02:02.000Z",
  date: "2020-02-02",
  json: { d: 1 },
  uuid: "33333333-3333-4333-8333-333333333333",
};
const PREFIX: Record<ColType, string> = {
  integer: "n",
  bigint: "big",
  float: "f",
  text: "s",
  boolean: "ok",
  timestamp: "at",
  date: "day",
  json: "doc",
  uuid: "ref",
};

function makeTables(r: Rng): Table[] {
  const names = r.pick([
    ["authors", "books", "reviews"],
    ["teams", "players", "goals"],
    ["shops", "items", "tags"],
  ]);
  const count = r.chance(0.7) ? 3 : 2;
  const tables: Table[] = [];
  for (let i = 0; i < count; i++) {
    const types: ColType[] = [r.pick(["integer", "bigint", "float"] as const), "text"];
    for (let k = r.int(1, 4); k > 0; k--) types.push(r.pick(TYPES));
    const cols: Col[] = types.map((type, j) => {
      const nullable = r.chance(0.7);
      return {
        name: `${PREFIX[type]}${j}`,
        type,
        nullable,
        unique: false,
        hasDefault: !nullable && r.chance(0.5),
      };
    });
    if (r.chance(0.5))
      cols.push({ name: "code", type: "text", nullable: true, unique: true, hasDefault: false });
    const table: Table = { name: names[i]!, increment: r.chance(0.5), cols, children: [] };
    if (i > 0) {
      // the third table hangs off the first (siblings) or the second (grandchildren)
      const parent = tables[i === 2 && r.chance(0.5) ? 1 : 0]!;
      table.parent = { table: parent, fk: `${parent.name.slice(0, -1)}_id`, nullable: r.chance(0.6) };
      parent.children.push(table);
    }
    tables.push(table);
  }
  return tables;
}

function schemaJson(r: Rng, tables: Table[]): unknown {
  const out: Record<string, unknown> = {};
  for (const t of tables) {
    const columns: Record<string, unknown> = {
      id: t.increment
        ? { type: "bigint", primaryKey: true, default: "increment" }
        : { type: "integer", primaryKey: true },
    };
    if (t.parent) {
      const onDelete = r.pick([
        undefined,
        "cascade",
        "cascade",
        "restrict",
        ...(t.parent.nullable ? ["set null"] : []),
      ]);
      columns[t.parent.fk] = {
        type: t.parent.table.increment ? "bigint" : "integer",
        references: `${t.parent.table.name}.id`,
        ...(onDelete ? { onDelete } : {}),
        ...(t.parent.nullable ? {} : { notNull: true }),
      };
    }
    for (const c of t.cols) {
      columns[c.name] = {
        type: c.type,
        ...(c.nullable ? {} : { notNull: true }),
        ...(c.unique ? { unique: true } : {}),
        ...(c.hasDefault ? { default: DEFAULTS[c.type] } : {}),
      };
    }
    out[t.name] = { columns, policy: { read: "public", write: "service" } };
  }
  return { tables: out };
}

// ---- random values and filters ---------------------------------------------------------

/** What H holds now: ids, and unique codes with their row, per table (writes are generated from it). */
type State = Map<string, { ids: number[]; codes: Map<string, number> }>;

function randomUuid(r: Rng): string {
  const hex = () => r.int(0, 0xffff).toString(16).padStart(4, "0");
  return `${hex()}${hex()}-${hex()}-4${hex().slice(1)}-8${hex().slice(1)}-${hex()}${hex()}${hex()}`;
}

function value(r: Rng, type: ColType): unknown {
  switch (type) {
    case "integer":
      return r.pick(INTS);
    case "bigint":
      return r.pick(BIGS);
    case "float":
      return r.pick(FLOATS);
    case "text":
      return r.chance(0.2) ? r.pick(ODD_WORDS) : r.pick(WORDS);
    case "boolean":
      return r.chance(0.5);
    case "timestamp":
      return r.pick(TIMES);
    case "date":
      return r.pick(DAYS);
    case "json":
      return r.pick(DOCS);
    case "uuid":
      return r.chance(0.7) ? r.pick(UUIDS) : randomUuid(r);
  }
}

/** A filter value as query text (no commas or parentheses, so it also fits in or=(...)). */
function literal(r: Rng, type: ColType): string {
  if (type === "text") return r.chance(0.3) ? r.pick(ODD_WORDS) : r.pick(WORDS.filter((w) => w !== ""));
  if (type === "boolean") return r.pick(["true", "false"]);
  return String(value(r, type));
}

const CMP = ["eq", "neq", "gt", "gte", "lt", "lte"];
const PATTERNS = ["*a*", "A*", "*_*", "alpha", "*%*", "b*", "*", "é*", "*É*", "*😀*", "Ａ*", "*.0", "1*"];

/** One filter on a table's own column, as [key, op.value]. */
function filterOn(r: Rng, t: Table, state: State): [string, string] {
  const not = r.chance(0.2) ? "not." : "";
  const ids = state.get(t.name)!.ids;
  const which = r.int(0, t.cols.length + 1);
  if (which === t.cols.length || which === t.cols.length + 1) {
    // the key or the foreign key: values near the ones that exist
    const parentIds = t.parent ? state.get(t.parent.table.name)!.ids : [];
    const useFk = which === t.cols.length + 1 && t.parent !== undefined;
    const pool = useFk ? parentIds : ids;
    const some = () => String(pool.length > 0 && r.chance(0.8) ? r.pick(pool) : r.int(-1, 60));
    const key = useFk ? t.parent!.fk : "id";
    if (r.chance(0.3)) return [key, `${not}in.(${Array.from({ length: r.int(1, 4) }, some).join(",")})`];
    if (useFk && r.chance(0.2)) return [key, `${not}is.null`];
    return [key, `${not}${r.pick(CMP)}.${some()}`];
  }
  const c = t.cols[which]!;
  if (r.chance(0.12)) return [c.name, `${not}is.${r.pick(["null", "not_null"])}`];
  switch (c.type) {
    case "boolean":
      return [c.name, `${not}${r.pick(["is.true", "is.false", "eq.true", "neq.false"])}`];
    case "json": {
      const [path, v] = r.pick([
        ["->>s", r.pick(["x", "y", "é", "z"])],
        ["->a", r.pick(["1", "2", "1.5"])],
        ["->>a", r.pick(["1", "1.5", "2"])],
        ["->nested->>k", "true"],
      ]);
      if (r.chance(0.2)) return [c.name, `${not}cs.${r.pick(['{"a":1}', '{"s":"x"}', "[1]"])}`];
      return [`${c.name}${path}`, `${not}${r.pick(["eq", "neq", "gt", "lt"])}.${v}`];
    }
    case "uuid":
      return [c.name, `${not}${r.pick(["eq", "neq", "isdistinct", "gt"])}.${literal(r, "uuid")}`];
    case "text":
      if (r.chance(0.35)) return [c.name, `${not}${r.pick(["like", "ilike"])}.${r.pick(PATTERNS)}`];
      break;
    case "float":
    case "integer":
      // like on a number compares its text form (CAST ... AS TEXT)
      if (r.chance(0.1)) return [c.name, `${not}like.${r.pick(PATTERNS)}`];
      break;
  }
  if (r.chance(0.15)) {
    const vals = Array.from({ length: r.int(1, 3) }, () => literal(r, c.type));
    return [c.name, `${not}in.(${vals.join(",")})`];
  }
  if (r.chance(0.1)) {
    const vals = Array.from({ length: r.int(1, 3) }, () => literal(r, c.type));
    return [c.name, `${not}${r.pick(["eq", "gt", "lt"])}(${r.pick(["any", "all"])}).{${vals.join(",")}}`];
  }
  return [c.name, `${not}${r.pick(CMP)}.${literal(r, c.type)}`];
}

/** An and/or tree of filters: `or=(a.eq.1,and(b.gt.2,c.is.null))`. */
function tree(r: Rng, t: Table, state: State, depth: number): string {
  const parts = Array.from({ length: r.int(2, 3) }, () => {
    if (depth > 0 && r.chance(0.3))
      return `${r.pick(["and", "or", "not.and"])}(${tree(r, t, state, depth - 1)})`;
    const [k, v] = filterOn(r, t, state);
    return `${k}.${v}`;
  });
  return parts.join(",");
}

function addFilters(r: Rng, params: URLSearchParams, t: Table, state: State, prefix = ""): void {
  for (let n = r.int(0, 2); n > 0; n--) {
    const [k, v] = filterOn(r, t, state);
    params.append(prefix + k, v);
  }
  if (r.chance(0.25))
    params.append(`${prefix}${r.pick(["or", "and", "not.or"])}`, `(${tree(r, t, state, 1)})`);
}

// ---- random queries --------------------------------------------------------------------

interface Call {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
  /** PATCH/DELETE representations: PostgREST gives no row order, compare as sets */
  unordered?: boolean;
}

function columnList(r: Rng, t: Table): string {
  if (r.chance(0.35)) return "*";
  const names = ["id", ...(t.parent ? [t.parent.fk] : []), ...t.cols.map((c) => c.name)];
  const items = r.some(names, r.int(1, 3));
  const json = t.cols.find((c) => c.type === "json");
  if (json && r.chance(0.3)) items.push(`${r.pick(["doc_s", "k"])}:${json.name}->>s`);
  const castable = t.cols.find((c) => c.type !== "json");
  if (castable && r.chance(0.2)) items.push(`${castable.name}_t:${castable.name}::text`);
  return items.join(",");
}

function orderTerm(r: Rng, t: Table): string {
  const c = r.pick(t.cols);
  const name = c.type === "json" && r.chance(0.5) ? `${c.name}->>s` : c.name;
  const dir = r.pick(["", ".asc", ".desc"]);
  return `${name}${dir}${r.pick(["", "", ".nullsfirst", ".nullslast"])}`;
}

function makeQuery(r: Rng, tables: Table[], state: State): Call {
  const t = r.pick(tables);
  const params = new URLSearchParams();
  const headers: Record<string, string> = {};
  const kind = r.pick(["plain", "plain", "parent", "children", "children", "aggregate"]);
  const order: string[] = [];
  if (kind === "aggregate") {
    const group = r.chance(0.7) ? r.pick(t.cols.filter((c) => c.type !== "json")) : undefined;
    const nums = t.cols.filter((c) => c.type === "integer" || c.type === "bigint" || c.type === "float");
    const aggs = ["count()"];
    for (const c of r.some(nums, 2))
      aggs.push(`${c.name}.${r.pick(["sum", "max", "min", "avg", "count"])}()`);
    const other = r.pick(t.cols);
    if (other.type !== "json") aggs.push(`${other.name}.${r.pick(["min", "max"])}()`);
    params.set("select", [...(group ? [group.name] : []), ...aggs].join(","));
    if (group && r.chance(0.6)) order.push(`${group.name}${r.pick(["", ".desc", ".desc.nullslast"])}`);
  } else {
    let select = columnList(r, t);
    if (kind === "parent" && t.parent) {
      const p = t.parent;
      // embed by table name, by alias, or by the foreign-key column (PostgREST allows all three)
      const name = r.pick([p.table.name, `up:${p.table.name}`, p.fk]);
      const key = name.includes(":") ? "up" : name;
      const inner = r.chance(0.35) ? "!inner" : "";
      // a spread pulls the parent's columns up into the row (to-one only)
      const spread = !name.includes(":") && r.chance(0.2) ? "..." : "";
      const cols = spread
        ? r.pick(p.table.cols.filter((c) => c.name !== "code")).name
        : columnList(r, p.table);
      select += `,${spread}${name}${inner}(${cols})`;
      if (r.chance(0.5)) addFilters(r, params, p.table, state, `${key}.`);
      if (!inner && r.chance(0.25)) params.append(key, r.pick(["is.null", "not.is.null"]));
      if (r.chance(0.3)) order.push(`${key}(${r.pick(p.table.cols).name})${r.pick(["", ".desc"])}`);
    } else if (kind === "children" && t.children.length > 0) {
      const c = r.pick(t.children);
      const inner = r.chance(0.3) ? "!inner" : "";
      let sub = r.chance(0.2) ? "count()" : columnList(r, c);
      if (sub !== "count()" && c.children.length > 0 && r.chance(0.5)) sub += `,${c.children[0]!.name}(*)`;
      select += `,${c.name}${inner}(${sub})`;
      if (r.chance(0.4)) addFilters(r, params, c, state, `${c.name}.`);
      if (sub !== "count()" && r.chance(0.3)) params.set(`${c.name}.order`, `${orderTerm(r, c)},id.desc`);
      if (sub !== "count()" && r.chance(0.3)) params.set(`${c.name}.limit`, String(r.int(0, 3)));
      if (!inner && r.chance(0.25)) params.append(c.name, r.pick(["is.null", "not.is.null"]));
    }
    params.set("select", select);
    for (let n = r.int(0, 2); n > 0; n--) order.unshift(orderTerm(r, t));
    order.push(r.pick(["id", "id.desc"])); // always total
  }
  addFilters(r, params, t, state);
  if (order.length > 0) params.set("order", order.join(","));
  if (r.chance(0.4)) params.set("limit", String(r.int(0, 8)));
  if (r.chance(0.25)) params.set("offset", String(r.int(0, 6)));
  if (r.chance(0.35)) headers.prefer = "count=exact";
  if (r.chance(0.1)) headers.range = `${r.int(0, 4)}-${r.int(4, 9)}`;
  else if (r.chance(0.05)) {
    headers.accept = "application/vnd.pgrst.object+json";
    const ids = state.get(t.name)!.ids;
    if (ids.length > 0) params.set("id", `eq.${r.pick(ids)}`);
  }
  const method = headers.prefer && r.chance(0.2) ? "HEAD" : "GET";
  return { method, path: `/${t.name}?${params}`, headers };
}

// ---- random writes ---------------------------------------------------------------------

interface Write extends Call {
  /** the generator made it fail on purpose (duplicate key, dangling reference, ...) */
  mustFail?: string;
}

class Writer {
  private maxId = new Map<string, number>();
  private codes = 0;
  constructor(
    private readonly r: Rng,
    private readonly tables: Table[],
  ) {}

  private freshId(t: Table, state: State): number {
    const seen = Math.max(0, this.maxId.get(t.name) ?? 0, ...state.get(t.name)!.ids);
    const id = seen + this.r.int(1, 3);
    this.maxId.set(t.name, id);
    return id;
  }

  private freshCode(): string {
    return `c${++this.codes}${this.r.pick(["", "é", "😀"])}`;
  }

  /** One row over `keys`; null when a required parent does not exist. */
  private row(t: Table, state: State, keys: string[], id?: number): Record<string, unknown> | null {
    const r = this.r;
    const row: Record<string, unknown> = {};
    for (const k of keys) {
      if (k === "id") row.id = id ?? this.freshId(t, state);
      else if (t.parent && k === t.parent.fk) {
        const parents = state.get(t.parent.table.name)!.ids;
        if (t.parent.nullable && (parents.length === 0 || r.chance(0.15))) row[k] = null;
        else if (parents.length === 0) return null;
        else row[k] = r.pick(parents);
      } else {
        const c = t.cols.find((x) => x.name === k)!;
        if (c.unique) row[k] = r.chance(0.2) ? null : this.freshCode();
        else row[k] = c.nullable && r.chance(0.2) ? null : value(r, c.type);
      }
    }
    return row;
  }

  private keysFor(t: Table, withId: boolean): string[] {
    const keys = withId ? ["id"] : [];
    if (t.parent) keys.push(t.parent.fk);
    for (const c of t.cols) if (!(c.nullable || c.hasDefault) || !this.r.chance(0.25)) keys.push(c.name);
    return keys;
  }

  private representation(): Record<string, string> {
    if (!this.r.chance(0.4)) return {};
    return { prefer: "return=representation" };
  }

  private selectFor(t: Table): string {
    if (t.parent && this.r.chance(0.5)) return `?select=*,${t.parent.table.name}(*)`;
    if (t.children.length > 0 && this.r.chance(0.3)) return `?select=id,${t.children[0]!.name}(id)`;
    return "";
  }

  insert(t: Table, state: State): Write | null {
    const r = this.r;
    const keys = this.keysFor(t, !t.increment);
    const rows: Record<string, unknown>[] = [];
    for (let n = r.int(1, 6); n > 0; n--) {
      const row = this.row(t, state, keys);
      if (!row) return null;
      rows.push(row);
    }
    let mustFail: string | undefined;
    const bad = { ...r.pick(rows) };
    const ids = state.get(t.name)!.ids;
    const codes = state.get(t.name)!.codes;
    const fault = r.chance(0.3) ? r.int(0, 2) : -1;
    if (fault === 0 && !t.increment && ids.length > 0) {
      bad.id = r.pick(ids);
      mustFail = "duplicate key";
    } else if (fault === 1 && t.parent) {
      bad[t.parent.fk] = 100_000 + r.int(0, 9);
      mustFail = "dangling reference";
    } else if (fault === 2 && keys.includes("code") && codes.size > 0) {
      bad.code = r.pick([...codes.keys()]);
      mustFail = "duplicate unique value";
    }
    if (mustFail) {
      if (!t.increment) bad.id = mustFail === "duplicate key" ? bad.id : this.freshId(t, state);
      rows.splice(r.int(0, rows.length), 0, bad);
    }
    const headers = this.representation();
    let query = headers.prefer ? this.selectFor(t) : "";
    const optional = t.cols.filter((c) => c.nullable || c.hasDefault).map((c) => c.name);
    if (!query && !mustFail && optional.length > 0 && r.chance(0.2)) {
      // ?columns= names the batch columns: keys a row lacks get their default (or null)
      query = `?columns=${keys.join(",")}`;
      headers.prefer = "missing=default";
      for (const row of rows) delete row[r.pick(optional)];
    }
    return {
      method: "POST",
      path: `/${t.name}${query}`,
      headers,
      body: rows,
      ...(mustFail ? { mustFail } : {}),
    };
  }

  /** Explicit keys, old (maybe flushed) and new; merge or ignore duplicates. */
  upsert(t: Table, state: State): Write | null {
    const r = this.r;
    const ids = state.get(t.name)!.ids;
    const partial = r.chance(0.4);
    let keys = this.keysFor(t, true);
    if (partial) keys = ["id", ...r.some(keys.slice(1), r.int(1, 2))];
    const chosen = new Set<number>();
    for (let n = r.int(1, 5); n > 0; n--) {
      chosen.add(ids.length > 0 && r.chance(0.6) ? r.pick(ids) : this.freshId(t, state));
    }
    const rows: Record<string, unknown>[] = [];
    for (const id of chosen) {
      const row = this.row(t, state, keys, id);
      if (!row) return null;
      rows.push(row);
    }
    // a partial row that is new still needs its not-null columns: such an upsert fails alike
    const resolution = r.chance(0.75) ? "merge-duplicates" : "ignore-duplicates";
    const rep = this.representation();
    const prefer = [`resolution=${resolution}`, ...(rep.prefer ? [rep.prefer] : [])].join(",");
    return { method: "POST", path: `/${t.name}`, headers: { prefer }, body: rows };
  }

  /** Upsert on the unique text column: rows without keys, matched by `code`. */
  upsertOnCode(t: Table, state: State): Write | null {
    const codes = state.get(t.name)!.codes;
    if (!t.cols.some((c) => c.unique) || codes.size === 0) return null;
    // Sometimes the row that matches on code gets another key: the upsert moves its key, which
    // its children's foreign keys refuse.
    const moveKeys = !t.increment && this.r.chance(0.2);
    const keys = this.keysFor(t, !t.increment).filter((k) => k !== "code");
    const rows: Record<string, unknown>[] = [];
    const used = new Set<string>();
    for (let n = this.r.int(1, 4); n > 0; n--) {
      const row = this.row(t, state, keys);
      if (!row) return null;
      const code = this.r.chance(0.6) ? this.r.pick([...codes.keys()]) : this.freshCode();
      if (used.has(code)) continue;
      used.add(code);
      const id = codes.get(code);
      if (!t.increment && id !== undefined && !moveKeys) row.id = id;
      rows.push({ ...row, code });
    }
    return {
      method: "POST",
      path: `/${t.name}?on_conflict=code`,
      headers: { prefer: "resolution=merge-duplicates" },
      body: rows,
    };
  }

  private targetFilter(t: Table, state: State): URLSearchParams {
    const r = this.r;
    const params = new URLSearchParams();
    const ids = state.get(t.name)!.ids;
    if (ids.length > 0 && r.chance(0.5)) {
      const some = r.some(ids, r.int(1, 3));
      params.set("id", some.length === 1 ? `eq.${some[0]}` : `in.(${some.join(",")})`);
    } else {
      const [k, v] = filterOn(r, t, state);
      params.append(k, v);
      if (r.chance(0.3)) params.append(...filterOn(r, t, state));
      // PostgREST's limited update/delete: the first n rows in the given order
      if (r.chance(0.15)) {
        params.set("order", r.pick(["id", "id.desc"]));
        params.set("limit", String(r.int(1, 3)));
      }
    }
    return params;
  }

  patch(t: Table, state: State): Write | null {
    const r = this.r;
    const params = this.targetFilter(t, state);
    const body: Record<string, unknown> = {};
    if (!t.increment && r.chance(0.08)) {
      // moving a key: refused while children point at it (no ON UPDATE action)
      const ids = state.get(t.name)!.ids;
      if (ids.length === 0) return null;
      params.delete("id");
      params.set("id", `eq.${r.pick(ids)}`);
      body.id = this.freshId(t, state);
    } else {
      for (const c of r.some(t.cols, r.int(1, 2))) {
        body[c.name] = c.unique ? (r.chance(0.7) ? this.freshCode() : null) : value(r, c.type);
        if (body[c.name] === null && !c.nullable) delete body[c.name];
      }
      if (t.parent && r.chance(0.3)) {
        const parents = state.get(t.parent.table.name)!.ids;
        body[t.parent.fk] =
          r.chance(0.15) || parents.length === 0 ? (t.parent.nullable ? null : 99_999) : r.pick(parents);
      }
      if (Object.keys(body).length === 0) body[t.cols[0]!.name] = value(r, t.cols[0]!.type);
    }
    const headers = this.representation();
    return { method: "PATCH", path: `/${t.name}?${params}`, headers, body, unordered: true };
  }

  remove(t: Table, state: State): Write | null {
    const params = this.targetFilter(t, state);
    const headers = this.representation();
    return { method: "DELETE", path: `/${t.name}?${params}`, headers, unordered: true };
  }

  next(state: State): Write {
    for (;;) {
      const t = this.r.pick(this.tables);
      const kind = this.r.pick([
        "insert",
        "insert",
        "insert",
        "upsert",
        "upsert",
        "code",
        "patch",
        "patch",
        "remove",
      ]);
      const w =
        kind === "insert"
          ? this.insert(t, state)
          : kind === "upsert"
            ? this.upsert(t, state)
            : kind === "code"
              ? this.upsertOnCode(t, state)
              : kind === "patch"
                ? this.patch(t, state)
                : this.remove(t, state);
      if (w) return w;
    }
  }

  /** The first rows: every table, parents first, with no faults. */
  seedRows(t: Table, state: State): Write {
    const keys = this.keysFor(t, !t.increment);
    const rows: Record<string, unknown>[] = [];
    for (let n = this.r.int(8, 20); n > 0; n--) {
      const row = this.row(t, state, keys);
      if (row) rows.push(row);
    }
    return { method: "POST", path: `/${t.name}`, headers: {}, body: rows };
  }
}

// ---- running the three projects --------------------------------------------------------

interface Answer {
  status: number;
  body: unknown;
  range: string | null;
}

/** Float aggregates add in a different row order hot and cold: compare to 12 digits. */
function normalize(v: unknown): unknown {
  if (typeof v === "number" && !Number.isInteger(v)) return Number(v.toPrecision(12));
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

async function answer(p: TestProject, req: Call): Promise<Answer> {
  const init: Init = { method: req.method, headers: req.headers };
  if (req.body !== undefined) init.body = req.body;
  const res = await rest(p, req.path, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === "" ? null : JSON.parse(text);
  } catch {
    // compared as text
  }
  body = normalize(body);
  if (req.unordered && Array.isArray(body)) {
    body = [...body].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  }
  return { status: res.status, body, range: res.headers.get("content-range") };
}

interface Stats {
  hotRows: number;
  coldRows: number;
}

function show(req: Call): string {
  const body = req.body !== undefined ? ` ${JSON.stringify(req.body)}` : "";
  const headers = Object.keys(req.headers).length > 0 ? ` ${JSON.stringify(req.headers)}` : "";
  return `${req.method} ${decodeURIComponent(req.path)}${headers}${body}`;
}

class Trio {
  readonly log: string[] = [];
  mismatches = 0;
  mixedReads = 0;
  okReads = 0;
  nonEmptyReads = 0;
  reads = 0;

  constructor(
    readonly seed: number,
    readonly h: TestProject,
    readonly f: TestProject,
    readonly m: TestProject,
  ) {}

  private message(who: string, req: Call): string {
    return `seed ${this.seed}: ${who} differs from H (all hot) on ${show(req)}\nwrites so far:\n  ${this.log.join("\n  ")}`;
  }

  /** A write on all three: same status, body and Content-Range, or the seed stops. */
  async write(req: Write): Promise<Answer> {
    const [h, f, m] = await Promise.all([answer(this.h, req), answer(this.f, req), answer(this.m, req)]);
    this.log.push(`${show(req)} → ${h.status}`);
    expect(f, this.message("F (flushed)", req)).toEqual(h);
    expect(m, this.message("M (mixed)", req)).toEqual(h);
    if (req.mustFail)
      expect(h.status, `seed ${this.seed}: ${req.mustFail} was accepted: ${show(req)}`).toBe(409);
    return h;
  }

  /** A read on all three; mismatches are recorded (up to MAX_MISMATCHES) and reading goes on. */
  async read(req: Call): Promise<void> {
    const [h, f, m] = await Promise.all([answer(this.h, req), answer(this.f, req), answer(this.m, req)]);
    this.reads++;
    if (h.status === 200 || h.status === 206) {
      this.okReads++;
      if (Array.isArray(h.body) ? h.body.length > 0 : req.method === "HEAD") this.nonEmptyReads++;
    }
    for (const [who, got] of [
      ["F (flushed)", f],
      ["M (mixed)", m],
    ] as const) {
      if (JSON.stringify(got) === JSON.stringify(h)) continue;
      this.mismatches++;
      expect.soft(got, this.message(who, req)).toEqual(h);
      if (this.mismatches >= MAX_MISMATCHES)
        throw new Error(`seed ${this.seed}: stopping after ${this.mismatches} mismatches`);
    }
  }

  /** Ids and unique codes H holds now. */
  async state(tables: Table[]): Promise<State> {
    const out: State = new Map();
    for (const t of tables) {
      const hasCode = t.cols.some((c) => c.unique);
      const res = await rest(this.h, `/${t.name}?select=id${hasCode ? ",code" : ""}&order=id`);
      expect(res.status).toBe(200);
      const rows = (await res.json()) as { id: number; code?: string | null }[];
      out.set(t.name, {
        ids: rows.map((x) => x.id),
        codes: new Map(rows.flatMap((x) => (typeof x.code === "string" ? [[x.code, x.id] as const] : []))),
      });
    }
    return out;
  }

  /** Flushes one project and checks every row went cold. */
  async flush(p: TestProject, who: string): Promise<void> {
    await admin<Stats>(p, "flush");
    const [stats, hot] = await Promise.all([admin<Stats>(p, "stats"), admin<Stats>(this.h, "stats")]);
    this.log.push(`flush ${who}`);
    expect(stats.hotRows, `seed ${this.seed}: ${who} kept hot rows after a flush`).toBe(0);
    expect(stats.coldRows, `seed ${this.seed}: ${who} has other rows than H after a flush`).toBe(hot.hotRows);
  }
}

async function runSeed(seed: number): Promise<Trio> {
  const r = new Rng(seed);
  const tables = makeTables(r);
  const schema = schemaJson(r, tables);
  const [h, f, m] = await Promise.all([
    projectWithSchema(schema),
    projectWithSchema(schema),
    projectWithSchema(schema),
  ]);
  const trio = new Trio(seed, h, f, m);
  trio.log.push(`schema ${JSON.stringify(schema)}`);
  const writer = new Writer(r, tables);

  const queries = async () => {
    const mStats = await admin<Stats>(m, "stats");
    if (mStats.hotRows > 0 && mStats.coldRows > 0) trio.mixedReads++;
    const fStats = await admin<Stats>(f, "stats");
    expect(fStats.coldRows, `seed ${seed}: F has no cold rows`).toBeGreaterThan(0);
    for (const t of tables) await trio.read({ method: "GET", path: `/${t.name}?order=id`, headers: {} });
    const state = await trio.state(tables);
    for (let i = 0; i < QUERIES_PER_PHASE; i++) await trio.read(makeQuery(r, tables, state));
  };

  // Phase 0: the first rows, parents first; M flushes part way.
  const mFlushAt = r.int(1, tables.length - 1);
  for (const [i, t] of tables.entries()) {
    if (i === mFlushAt) await trio.flush(m, "M");
    await trio.write(writer.seedRows(t, await trio.state(tables)));
  }
  await trio.flush(f, "F");
  await queries();

  for (let phase = 1; phase <= PHASES; phase++) {
    for (let b = 0; b < BATCHES_PER_PHASE; b++) {
      for (let i = 0; i < OPS_PER_BATCH; i++) {
        await trio.write(writer.next(await trio.state(tables)));
        if (r.chance(0.3)) await trio.flush(m, "M");
      }
      await trio.flush(f, "F");
    }
    await queries();
  }
  return trio;
}

describe("hot, flushed and mixed projects answer alike", () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: random schema, writes and queries`, async () => {
      const trio = await runSeed(seed);
      // guards against a vacuous pass: reads mostly succeed, find rows, and M was mixed
      expect(trio.okReads / trio.reads).toBeGreaterThan(0.6);
      expect(trio.nonEmptyReads / trio.reads).toBeGreaterThan(0.3);
      expect(trio.mixedReads, `seed ${seed}: M never read a mix of hot and cold rows`).toBeGreaterThan(0);
      expect(trio.mismatches).toBe(0);
    }, 60_000);
  }
});

// ---- mismatches the random runs found, pinned as small cases ----------------------------

type Step = Call | "flush";

const get = (path: string, headers: Record<string, string> = {}): Call => ({ method: "GET", path, headers });
const post = (path: string, body: unknown, prefer?: string): Call => ({
  method: "POST",
  path,
  headers: prefer ? { prefer } : {},
  body,
});
const int = (extra: Record<string, unknown> = {}) => ({ type: "integer", ...extra });
const key = { type: "integer", primaryKey: true };
const one = (columns: Record<string, unknown>) => ({ columns, policy: { read: "public", write: "service" } });

/**
 * Runs the steps on a project that never flushes and on one that flushes at each "flush":
 * every request must get the same answer from both, and never a 5xx (each step is reported).
 */
async function hotVsFlushed(tables: Record<string, unknown>, steps: Step[]): Promise<void> {
  const schema = { tables };
  const [h, f] = await Promise.all([projectWithSchema(schema), projectWithSchema(schema)]);
  for (const step of steps) {
    if (step === "flush") {
      await admin<Stats>(f, "flush");
      expect((await admin<Stats>(f, "stats")).coldRows).toBeGreaterThan(0);
      continue;
    }
    const [hot, flushed] = await Promise.all([answer(h, step), answer(f, step)]);
    expect.soft(hot.status, `hot: ${show(step)}`).toBeLessThan(500);
    expect.soft(flushed.status, `flushed: ${show(step)}`).toBeLessThan(500);
    expect.soft(flushed, `flushed differs from hot on ${show(step)}`).toEqual(hot);
  }
}

describe("mismatches found by the random runs", () => {
  it("a float's text form is the same hot and flushed (::text, like)", async () => {
    // hot: REAL 2.0 → '2.0'; flushed: the overlay reads the JSON number 2 as INTEGER → '2'
    await hotVsFlushed({ t: one({ id: key, f: { type: "float" } }) }, [
      post("/t", [
        { id: 1, f: 2 },
        { id: 2, f: 0.5 },
      ]),
      "flush",
      get("/t?select=id,f::text&order=id"),
      get("/t?select=id&f=like.*.0"),
    ]);
  });

  it("text compares by UTF-8 bytes on flushed rows too (U+FF21 against an astral character)", async () => {
    // SQLite: 'Ａ' (EF BC A1) < '😀' (F0 9F 98 80); JavaScript's UTF-16 order says the opposite,
    // and the segment statistics, the JS pre-filter and the JS aggregates use it
    await hotVsFlushed({ t: one({ id: key, s: { type: "text" } }) }, [
      post("/t", [
        { id: 1, s: "Ａ" },
        { id: 2, s: "😀" },
      ]),
      "flush",
      get("/t?select=id&s=gt.Ａ"),
      get("/t?select=id&s=lt.😀"),
      get("/t?select=s.max()"),
      get("/t?select=s,count()&order=s"),
    ]);
  });

  it("not.ilike treats non-ASCII letters the same hot and flushed", async () => {
    // SQLite's LIKE folds ASCII only; the JS evaluator's /i folds É to é, so not.ilike drops the row
    await hotVsFlushed({ t: one({ id: key, s: { type: "text" } }) }, [
      post("/t", [{ id: 1, s: "É" }]),
      "flush",
      get("/t?select=id&s=not.ilike.é*"),
    ]);
  });

  it("rel=is.null on an embed named by its foreign-key column filters the embed, flushed too", async () => {
    // the pre-filter of flushed rows takes `parent_id=is.null` for the column, not the embed
    await hotVsFlushed(
      {
        parents: one({ id: key }),
        kids: one({ id: key, parent_id: int({ references: "parents.id" }) }),
      },
      [
        post("/parents", [{ id: 1 }]),
        post("/kids", [
          { id: 1, parent_id: 1 },
          { id: 2, parent_id: null },
        ]),
        "flush",
        get("/kids?select=id,parent_id(id)&parent_id.id=eq.2&parent_id=is.null&order=id"),
      ],
    );
  });

  it("a limited PATCH takes the first rows in the requested order, hot or flushed", async () => {
    // targets are chosen with LIMIT but without the ORDER BY: row 3, promoted by the first
    // PATCH, comes first in the merged scan
    await hotVsFlushed({ t: one({ id: key, n: int() }) }, [
      post("/t", [
        { id: 1, n: 0 },
        { id: 2, n: 0 },
        { id: 3, n: 0 },
      ]),
      "flush",
      { method: "PATCH", path: "/t?id=eq.3", headers: {}, body: { n: 1 } },
      { method: "PATCH", path: "/t?id=gt.0&order=id&limit=1", headers: {}, body: { n: 9 } },
      get("/t?order=id"),
    ]);
  });

  it("ON DELETE cascades two levels down, whichever children were already hot", async () => {
    // b2 is hot (promoted as the parent of c3); deleting a1 promotes only the cold b1 and
    // then only b1's children, so c2 stays cold and keeps b_id = 2
    await hotVsFlushed(
      {
        a: one({ id: key }),
        b: one({ id: key, a_id: int({ references: "a.id", onDelete: "cascade" }) }),
        c: one({ id: key, b_id: int({ references: "b.id", onDelete: "set null" }) }),
      },
      [
        post("/a", [{ id: 1 }]),
        post("/b", [
          { id: 1, a_id: 1 },
          { id: 2, a_id: 1 },
        ]),
        post("/c", [
          { id: 1, b_id: 1 },
          { id: 2, b_id: 2 },
        ]),
        "flush",
        post("/c", [{ id: 3, b_id: 2 }]),
        { method: "DELETE", path: "/a?id=eq.1", headers: {} },
        get("/c?order=id"),
      ],
    );
  });

  it("an upsert on a unique column may not move a key that flushed children refer to", async () => {
    // hot: 23503; flushed: the children stay cold, the key moves and kid 1 is orphaned
    await hotVsFlushed(
      {
        p: one({ id: key, code: { type: "text", unique: true } }),
        k: one({ id: key, p_id: int({ references: "p.id" }) }),
      },
      [
        post("/p", [{ id: 1, code: "a" }]),
        post("/k", [{ id: 1, p_id: 1 }]),
        "flush",
        post("/p?on_conflict=code", [{ id: 2, code: "a" }], "resolution=merge-duplicates"),
        get("/k?select=id,p(id)&order=id"),
      ],
    );
  });

  it("count=exact works with a JSON path in select", async () => {
    // countLevel builds the select list (which binds the JSON path) into its parameters but
    // not into its statement: "Wrong number of parameter bindings", a 500, hot or flushed
    await hotVsFlushed({ t: one({ id: key, doc: { type: "json" } }) }, [
      post("/t", [{ id: 1, doc: { s: "x" } }]),
      "flush",
      get("/t?select=id,s:doc->>s", { prefer: "count=exact" }),
    ]);
  });
});
