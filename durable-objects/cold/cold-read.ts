/**
 * Reading and writing over hot ∪ cold: which segments a request needs (statistics pruning,
 * bloom-filtered key lookups), which cold rows go into the SQL overlay (pre-filtered by the
 * JS evaluator when that is exact), and promotion before writes.
 */
import { compareValues } from "../../shared/collate.ts";
import { matches } from "../../shared/rest/evaluate.ts";
import type { Condition, Filter } from "../../shared/rest/plan.ts";
import { OWNER_COLUMN } from "../../shared/schema.ts";
import { castValue, fromStorage } from "../../shared/values.ts";
import type { Level } from "../read-plan.ts";
import type { SchemaIndex, TableInfo } from "../schema-index.ts";
import { type ColdStore, type ColdView, type LoadedSegment, sqlSafe } from "./cold-store.ts";
import { type Columns, compileConditions, compileNarrowing } from "./fast-filter.ts";
import { keyOf, type Manifest, type SegmentRef } from "./manifest.ts";
import { overlaySql, type SqlExec } from "./overlay.ts";

/** Every table a level tree reads, with how many times it appears. */
export function tablesOf(level: Level, out = new Map<string, number>()): Map<string, number> {
  out.set(level.table.name, (out.get(level.table.name) ?? 0) + 1);
  for (const e of level.embeds) tablesOf(e.level, out);
  return out;
}

/**
 * Top-level conditions that only name the level's own columns (the evaluator handles them).
 * A filter named like an embed (`parent_id=is.null` with `select=parent_id(*)`) filters the
 * embed in SQL, not the column, so it is not one of them.
 */
function ownConditions(level: Level): Condition[] {
  const table = level.table;
  const embeds = new Set(level.embeds.map((e) => e.key));
  const own = (c: Condition): boolean =>
    c.type === "filter"
      ? table.columns.has(c.field.column) && !(c.field.path.length === 0 && embeds.has(c.field.column))
      : c.children.every(own);
  return level.mods.where.filter(own);
}

function referenced(conditions: Condition[], out = new Set<string>()): Set<string> {
  for (const c of conditions) {
    if (c.type === "filter") out.add(c.field.column);
    else referenced(c.children, out);
  }
  return out;
}

const RANGE_OPS = new Set(["eq", "gt", "gte", "lt", "lte", "in"]);

/** Whether a segment's min/max can hold a row passing `f` (true when unsure). */
function mayMatch(table: TableInfo, ref: SegmentRef, f: Filter): boolean {
  if (f.negate || f.field.path.length > 0 || f.quantifier) return true;
  const stats = ref.stats[f.field.column];
  if (!stats) return true;
  if (f.op === "is") {
    if (f.value === "null") return stats.nulls > 0;
    if (f.value === "not_null") return stats.nulls < ref.rows;
    return true;
  }
  if (!RANGE_OPS.has(f.op) || stats.min === null || stats.max === null) return true;
  const col = table.columns.get(f.field.column);
  if (!col || col.type === "json" || col.type === "bytes" || col.type === "vector") return true;
  const cast = (v: string): number | string | null => {
    try {
      const c = castValue(col.type, v, col.name);
      return typeof c === "number" || typeof c === "string" ? c : null;
    } catch {
      return null;
    }
  };
  const min = stats.min;
  const max = stats.max;
  const inRange = (v: number | string | null) =>
    v === null || (compareValues(v, min) >= 0 && compareValues(v, max) <= 0);
  switch (f.op) {
    case "eq":
      return inRange(cast(f.value));
    case "in":
      return (f.values ?? []).some((v) => inRange(cast(v)));
    case "gt": {
      const v = cast(f.value);
      return v === null || compareValues(max, v) > 0;
    }
    case "gte": {
      const v = cast(f.value);
      return v === null || compareValues(max, v) >= 0;
    }
    case "lt": {
      const v = cast(f.value);
      return v === null || compareValues(min, v) < 0;
    }
    case "lte": {
      const v = cast(f.value);
      return v === null || compareValues(min, v) <= 0;
    }
    default:
      return true;
  }
}

/** Primary keys a level's filters pin down exactly (`id=eq.1`, `id=in.(1,2)`), if any. */
function pinnedKeys(table: TableInfo, where: Condition[]): unknown[][] | null {
  if (table.primaryKey.length !== 1) return null;
  const pk = table.columns.get(table.primaryKey[0]!)!;
  for (const c of where) {
    if (c.type !== "filter" || c.negate || c.quantifier || c.field.path.length > 0) continue;
    if (c.field.column !== pk.name) continue;
    try {
      if (c.op === "eq") return [[castValue(pk.type, c.value, pk.name)]];
      if (c.op === "in") return (c.values ?? []).map((v) => [castValue(pk.type, v, pk.name)]);
    } catch {
      return null;
    }
  }
  return null;
}

/** A segment's columns by name in the table's layout (a column it lacks reads as its default). */
export function segmentColumns(table: TableInfo, seg: LoadedSegment): Columns {
  const layout = seg.columnsFor(table);
  const names = [...table.columns.keys()];
  const filled = new Map<string, unknown[]>();
  return (name) => {
    const source = layout[names.indexOf(name)]!;
    if (Array.isArray(source)) return source;
    let arr = filled.get(name);
    if (!arr) {
      arr = new Array(seg.data.rows).fill(source.value);
      filled.set(name, arr);
    }
    return arr;
  };
}

/**
 * A predicate over cold rows equivalent to the level's own-column filters and policy:
 * compiled comparisons on the vectors when possible, else the general evaluator.
 */
export function rowFilter(level: Level): ((seg: LoadedSegment, i: number) => boolean) | undefined {
  const table = level.table;
  const conditions = ownConditions(level);
  const owner = level.access.kind === "own" ? level.access.ownerId : null;
  if (conditions.length === 0 && owner === null) return undefined;
  const fast = compileConditions(table, conditions);
  if (fast) {
    const bound = new WeakMap<LoadedSegment, (i: number) => boolean>();
    // Rows are asked for segment by segment: the last segment's test is kept at hand.
    let lastSeg: LoadedSegment | null = null;
    let lastTest: (i: number) => boolean = () => false;
    return (seg, i) => {
      if (seg === lastSeg) return lastTest(i);
      let test = bound.get(seg);
      if (!test) {
        const cols = segmentColumns(table, seg);
        const pass = fast(cols);
        const owners = owner !== null ? cols(OWNER_COLUMN) : null;
        test = owners ? (j) => owners[j] === owner && pass(j) : pass;
        bound.set(seg, test);
      }
      lastSeg = seg;
      lastTest = test;
      return test(i);
    };
  }
  const cols = [...referenced(conditions)].map((name) => table.columns.get(name)!);
  const lookup = (name: string) => table.columns.get(name);
  return (seg, i) => {
    if (owner !== null && seg.data.column(OWNER_COLUMN)[i] !== owner) return false;
    if (conditions.length === 0) return true;
    const row: Record<string, unknown> = {};
    const get = segmentColumns(table, seg);
    for (const c of cols) {
      const v = get(c.name)[i];
      row[c.name] = fromStorage(c.type, v instanceof Uint8Array ? v.slice().buffer : v);
    }
    try {
      return matches(conditions, row, lookup);
    } catch {
      return true; // an operator the evaluator lacks: keep the row, SQL decides
    }
  };
}

export interface ColdRead {
  view: ColdView;
  exec: SqlExec;
}

/**
 * Loads the segments a read of `level` needs and returns an `exec` over hot ∪ cold
 * (or over a snapshot when `snapshot` is given).
 */
export async function prepareRead(
  store: ColdStore,
  sql: SqlStorage,
  schema: SchemaIndex,
  level: Level,
  snapshot?: Manifest,
  without?: ReadonlySet<string>,
): Promise<ColdRead> {
  const tables = tablesOf(level);
  const root = level.table;
  const rootOnce = tables.get(root.name) === 1;
  const rootFilters = rootOnce ? ownConditions(level) : [];
  const keys = rootOnce ? pinnedKeys(root, level.mods.where) : null;
  const view = await store.prepare(schema, {
    tables: tables.keys(),
    prune: (name, ref) =>
      name !== root.name || rootFilters.every((c) => c.type !== "filter" || mayMatch(root, ref, c)),
    ...(keys ? { keys: new Map([[root.name, keys]]) } : {}),
    ...(snapshot ? { manifest: snapshot } : {}),
    // the root's columns left out (vector search reads its vectors beside the segments)
    ...(without && rootOnce ? { without: new Map([[root.name, without]]) } : {}),
  });
  return { view, exec: levelExec(sql, view, level) };
}

/**
 * An `exec` over hot ∪ cold for statements about `level`: the root table's cold rows are
 * narrowed by its own filters when it appears once. Make a new one after promoting rows:
 * the overlay computes its cold rows once, at first use.
 */
export function levelExec(sql: SqlStorage, view: ColdView, level: Level): SqlExec {
  const root = level.table;
  const filter = tablesOf(level).get(root.name) === 1 ? rowFilter(level) : undefined;
  return overlaySql(sql, view, (table) => view.rows(table, table.name === root.name ? filter : undefined));
}

/** Whether the level's rows are exactly those its own-column filters (compiled) let through. */
export function exactlyFiltered(level: Level): boolean {
  if (level.embeds.some((e) => e.inner)) return false;
  const own = ownConditions(level);
  if (own.length !== level.mods.where.length) return false;
  return compileConditions(level.table, own) !== null;
}

/** A cold row: its segment, row number, and the segment's columns of the order's terms. */
type Cand = { seg: LoadedSegment; i: number; cols: ArrayLike<unknown>[] };

interface ColdOrder {
  /** the segment's columns of each order term, in term order */
  termColumns(seg: LoadedSegment): ArrayLike<unknown>[];
  compare(a: Cand, b: Cand): number;
}

/** SQL's order of the level (its order terms, then the primary key) over cold rows, or null. */
function coldOrder(level: Level): ColdOrder | null {
  const table = level.table;
  if (
    level.mods.order.some((o) => o.relation || o.field.path.length > 0 || !table.columns.has(o.field.column))
  ) {
    return null;
  }
  const terms = [
    ...level.mods.order.map((o) => ({
      column: o.field.column,
      desc: o.direction === "desc",
      nullsFirst: (o.nulls ?? (o.direction === "asc" ? "last" : "first")) === "first",
    })),
    ...table.primaryKey.map((c) => ({ column: c, desc: false, nullsFirst: true })),
  ];
  return {
    termColumns: (seg) => {
      const cols = segmentColumns(table, seg);
      return terms.map((t) => cols(t.column));
    },
    compare: (a, b) => {
      for (let j = 0; j < terms.length; j++) {
        const x = a.cols[j]![a.i];
        const y = b.cols[j]![b.i];
        if (x === y) continue;
        const t = terms[j]!;
        const xn = x === null || x === undefined;
        const yn = y === null || y === undefined;
        if (xn || yn) {
          if (xn && yn) continue;
          return xn === t.nullsFirst ? -1 : 1;
        }
        const c = compareValues(x, y);
        if (c === 0) continue;
        return t.desc ? -c : c;
      }
      return 0;
    },
  };
}

/** The first `k` candidates offered, in the order's order (a bounded max-heap: O(n log k)). */
class TopK {
  private readonly heap: Cand[] = [];
  private readonly probe: Cand = { seg: null as unknown as LoadedSegment, i: 0, cols: [] };
  private readonly cmp: (a: Cand, b: Cand) => number;

  constructor(
    private readonly k: number,
    private readonly order: ColdOrder,
  ) {
    this.cmp = order.compare;
  }

  offer(seg: LoadedSegment, i: number): void {
    const { heap, cmp, probe } = this;
    if (seg !== probe.seg) {
      probe.seg = seg;
      probe.cols = this.order.termColumns(seg);
    }
    if (heap.length < this.k) {
      heap.push({ seg, i, cols: probe.cols });
      let j = heap.length - 1;
      while (j > 0) {
        const p = (j - 1) >> 1;
        if (cmp(heap[j]!, heap[p]!) <= 0) return;
        [heap[j], heap[p]] = [heap[p]!, heap[j]!];
        j = p;
      }
      return;
    }
    if (this.k === 0) return;
    probe.i = i;
    if (cmp(probe, heap[0]!) >= 0) return;
    heap[0] = { seg, i, cols: probe.cols };
    let j = 0;
    for (;;) {
      const l = 2 * j + 1;
      const r = l + 1;
      let m = j;
      if (l < heap.length && cmp(heap[l]!, heap[m]!) > 0) m = l;
      if (r < heap.length && cmp(heap[r]!, heap[m]!) > 0) m = r;
      if (m === j) return;
      [heap[j], heap[m]] = [heap[m]!, heap[j]!];
      j = m;
    }
  }

  sorted(): Cand[] {
    return this.heap.sort(this.cmp);
  }
}

/**
 * The live rows of a segment that pass the level's own filters and owner check, as row
 * numbers in ascending order, computed column at a time; null when a filter has no compiled
 * form (the caller tests row by row).
 */
function segmentSelector(view: ColdView, level: Level): ((seg: LoadedSegment) => Int32Array) | null {
  const table = level.table;
  const narrow = compileNarrowing(table, ownConditions(level));
  if (!narrow) return null;
  const owner = level.access.kind === "own" ? level.access.ownerId : null;
  const shadows = view.shadows.get(table.name);
  return (seg) => {
    const rows = seg.data.rows;
    const sel = new Int32Array(rows);
    let n = 0;
    if (seg.deleted.size === 0 && (shadows?.size ?? 0) === 0) {
      for (let i = 0; i < rows; i++) sel[i] = i;
      n = rows;
    } else for (let i = 0; i < rows; i++) if (seg.isLive(i, shadows)) sel[n++] = i;
    const cols = segmentColumns(table, seg);
    if (owner !== null) {
      const owners = cols(OWNER_COLUMN);
      let m = 0;
      for (let k = 0; k < n; k++) if (owners[sel[k]!] === owner) sel[m++] = sel[k]!;
      n = m;
    }
    return sel.subarray(0, narrow(cols, sel, n));
  };
}

/**
 * For each segment of the level's root, the row numbers that are live and pass its own
 * filters and owner check, ascending: column at a time when the filters compile, else row by
 * row through `rowFilter`.
 */
export function selectedRows(view: ColdView, level: Level): (seg: LoadedSegment) => Int32Array {
  const filter = rowFilter(level);
  const select = filter ? segmentSelector(view, level) : null;
  if (select) return select;
  const shadows = view.shadows.get(level.table.name);
  return (seg) => {
    const sel = new Int32Array(seg.data.rows);
    let n = 0;
    const allLive = seg.deleted.size === 0 && (shadows?.size ?? 0) === 0;
    for (let i = 0; i < seg.data.rows; i++) {
      if (!allLive && !seg.isLive(i, shadows)) continue;
      if (filter && !filter(seg, i)) continue;
      sel[n++] = i;
    }
    return sel.subarray(0, n);
  };
}

/**
 * Calls `visit` for each live cold row of the level's root that passes its own filters,
 * segment by segment in row order; `visit` returning false skips the rest of that segment.
 * A callback rather than a generator: a scan of 100k rows spent a third of its time resuming
 * one. `stopsEarly`: the visitor may stop a segment early, so rows are tested one by one
 * (narrowing a whole segment first would do the work the stop saves).
 */
function scanCandidates(
  view: ColdView,
  level: Level,
  visit: (seg: LoadedSegment, i: number) => boolean | undefined,
  stopsEarly = false,
): void {
  const name = level.table.name;
  const shadows = view.shadows.get(name);
  const filter = rowFilter(level);
  // id=eq.N / id=in.(…): look the keys up in each segment's key index instead of scanning.
  const keys = pinnedKeys(level.table, ownConditions(level));
  if (keys) {
    const wanted = new Set(keys.map((key) => keyOf(key)));
    for (const seg of view.segments.get(name) ?? []) {
      for (const k of wanted) {
        const i = seg.find(k);
        if (i < 0 || !seg.isLive(i, shadows)) continue;
        if (filter && !filter(seg, i)) continue;
        if (visit(seg, i) === false) break;
      }
    }
    return;
  }
  if (filter && !stopsEarly) {
    const select = selectedRows(view, level);
    for (const seg of view.segments.get(name) ?? []) {
      for (const i of select(seg)) if (visit(seg, i) === false) break;
    }
    return;
  }
  for (const seg of view.segments.get(name) ?? []) {
    const allLive = seg.deleted.size === 0 && (shadows?.size ?? 0) === 0;
    for (let i = 0; i < seg.data.rows; i++) {
      if (!allLive && !seg.isLive(i, shadows)) continue;
      if (filter && !filter(seg, i)) continue;
      if (visit(seg, i) === false) break;
    }
  }
}

/** Whether the level is read in primary-key order only (no order, or the key ascending). */
function keyOrdered(level: Level): boolean {
  const order = level.mods.order;
  const pk = level.table.primaryKey;
  if (order.length > pk.length) return false;
  return order.every(
    (o, j) => !o.relation && o.field.path.length === 0 && o.field.column === pk[j] && o.direction !== "desc",
  );
}

/**
 * The read's `exec`: when the root's cold rows are exactly filtered in JS and ordered by
 * plain columns, only the first `k` of them (offset + limit) can reach the answer, so only
 * those go into the overlay; `GET /t?limit=10` over a million flushed rows binds ten. Read in
 * key order, a segment whose rows are in key order gives at most its first `k` passing rows.
 */
export function readLevelExec(sql: SqlStorage, view: ColdView, level: Level, k: number): SqlExec {
  const root = level.table;
  const order = coldOrder(level);
  const aggregated = level.fields.some((f) => f.aggregate);
  if (!order || aggregated || tablesOf(level).get(root.name) !== 1 || !exactlyFiltered(level)) {
    return levelExec(sql, view, level);
  }
  return overlaySql(sql, view, (table) => {
    if (table.name !== root.name) return view.rows(table);
    const top = new TopK(k, order);
    const early = keyOrdered(level);
    let current: LoadedSegment | null = null;
    let taken = 0;
    scanCandidates(
      view,
      level,
      (seg, i) => {
        top.offer(seg, i);
        if (!early) return true;
        if (seg !== current) {
          current = seg;
          taken = 0;
        }
        return !(++taken >= k && seg.sortedByKey());
      },
      early,
    );
    return top.sorted().map((c) => view.rowValues(table, c.seg, c.i).map(sqlSafe));
  });
}

/** count=exact of the root's cold rows when JS filters them exactly, else null. */
export function coldCount(view: ColdView, level: Level): number | null {
  if (tablesOf(level).get(level.table.name) !== 1 || !exactlyFiltered(level)) return null;
  if (level.fields.some((f) => f.aggregate)) return null;
  const name = level.table.name;
  const shadows = view.shadows.get(name);
  if (!rowFilter(level) && !pinnedKeys(level.table, ownConditions(level))) {
    // No filter: whole segments count by their length, less their dead rows.
    let n = 0;
    for (const seg of view.segments.get(name) ?? []) {
      if (seg.deleted.size === 0 && (shadows?.size ?? 0) === 0) n += seg.data.rows;
      else for (let i = 0; i < seg.data.rows; i++) if (seg.isLive(i, shadows)) n++;
    }
    return n;
  }
  let n = 0;
  scanCandidates(view, level, () => {
    n++;
    return true;
  });
  return n;
}

/**
 * Before a write to `table`: loads the segments of every table it is connected to by
 * foreign keys (promotion follows parents; deletes follow children).
 */
export async function prepareWrite(
  store: ColdStore,
  schema: SchemaIndex,
  table: TableInfo,
): Promise<ColdView> {
  const seen = new Set<string>([table.name]);
  const queue = [table.name];
  while (queue.length > 0) {
    const name = queue.pop()!;
    for (const rel of schema.relationshipsOf(name)) {
      if (!seen.has(rel.foreignTable)) {
        seen.add(rel.foreignTable);
        queue.push(rel.foreignTable);
      }
    }
  }
  return store.prepare(schema, { tables: seen });
}

/** Whether an insert into `table` can collide with, or depend on, rows in the cold tier. */
export function insertNeedsCold(table: TableInfo, schema: SchemaIndex, columns: string[]): boolean {
  const given = new Set(columns);
  if (table.primaryKey.some((c) => given.has(c))) return true;
  for (const c of table.columns.values()) {
    if (c.def.unique) return true;
    if (c.def.primaryKey && c.def.default !== "increment") return true;
  }
  return schema.relationshipsOf(table.name).some((r) => r.kind === "many-to-one" && given.has(r.columns[0]!));
}
