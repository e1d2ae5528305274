/**
 * The "effective" tables of a project schema: the declared tables plus what the server adds
 * (`owner_id` and its index for owner policies), and the facts planning derives from them:
 * primary key, index names, uniqueness, foreign-key order, name clashes. No SQL text here
 * (that is migrate-ddl.ts, which re-exports all of this so imports from there keep working).
 */
import {
  type ColumnDef,
  OWNER_COLUMN,
  splitReference,
  type TableDef,
  tablePolicy,
} from "../shared/schema.ts";

/** A column as stored: declared, or added by the server (`owner_id` for owner policies). */
export interface EffColumn {
  name: string;
  def: ColumnDef;
  managed: boolean;
}

export interface EffIndex {
  columns: string[];
  name: string;
  /** The server's own index on owner_id, not declared in `indexes`. */
  managed: boolean;
}

export interface EffTable {
  name: string;
  def: TableDef;
  columns: Map<string, EffColumn>;
  pk: string[];
  /** Single-column integer primary key with `default: "increment"`: AUTOINCREMENT. */
  increment: boolean;
  indexes: EffIndex[];
}

export function hasOwnerPolicy(def: TableDef): boolean {
  const p = tablePolicy(def);
  return p.read === "owner" || p.write === "owner";
}

export function effectiveTable(name: string, def: TableDef): EffTable {
  const columns = new Map<string, EffColumn>();
  for (const [c, cdef] of Object.entries(def.columns)) columns.set(c, { name: c, def: cdef, managed: false });
  const owner = hasOwnerPolicy(def);
  if (owner && !columns.has(OWNER_COLUMN)) {
    columns.set(OWNER_COLUMN, { name: OWNER_COLUMN, def: { type: "text" }, managed: true });
  }
  const pk = [...columns.values()].filter((c) => c.def.primaryKey).map((c) => c.name);
  const increment = pk.length === 1 && columns.get(pk[0]!)?.def.default === "increment";
  const indexes: EffIndex[] = [];
  const seen = new Set<string>();
  const addIndex = (cols: string[], managed: boolean) => {
    const idxName = indexName(name, cols, "idx");
    if (seen.has(idxName)) return;
    seen.add(idxName);
    indexes.push({ columns: cols, name: idxName, managed });
  };
  for (const cols of def.indexes ?? []) addIndex(cols, false);
  if (owner) addIndex([OWNER_COLUMN], true);
  return { name, def, columns, pk, increment, indexes };
}

export function effectiveTables(tables: Record<string, TableDef>): Map<string, EffTable> {
  return new Map(Object.entries(tables).map(([n, d]) => [n, effectiveTable(n, d)]));
}

/** FNV-1a: a tiny deterministic hash (index names must be the same on every run, everywhere). */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/**
 * `<table>__<c1>__<c2>_idx`. Names must depend only on (table, columns), because a later
 * migration recomputes them to drop the index. When a part holds `__` two different
 * indexes could get the same plain name, and very long names are unwieldy: both get a
 * hash suffix instead. planMigration still refuses any name clash (nameCollisions).
 */
export function indexName(table: string, columns: readonly string[], suffix: "idx" | "key"): string {
  const plain = `${table}__${columns.join("__")}_${suffix}`;
  const ambiguous = table.includes("__") || columns.some((c) => c.includes("__"));
  if (!ambiguous && plain.length <= 128) return plain;
  return `${table.slice(0, 48)}___${fnv1a(`${table}\0${columns.join("\0")}`)}_${suffix}`;
}

/** How an index is shown in summaries and errors: `posts(author_id, created_at)`. */
export function showIndex(table: string, columns: readonly string[]): string {
  return `${table}(${columns.join(", ")})`;
}

/** Whether `unique` adds anything: a single-column primary key is unique already. */
export function isUnique(t: EffTable, c: EffColumn): boolean {
  return c.def.unique === true && !(t.pk.length === 1 && t.pk[0] === c.name);
}

export function isNotNull(t: EffTable, c: EffColumn): boolean {
  return c.def.notNull === true || t.pk.includes(c.name);
}

/** Tables a table's foreign keys point at (other than itself). */
export function referencedTables(t: EffTable): Set<string> {
  const out = new Set<string>();
  for (const c of t.columns.values()) {
    if (c.def.references === undefined) continue;
    const target = splitReference(c.def.references).table;
    if (target !== t.name) out.add(target);
  }
  return out;
}

/**
 * Kahn's algorithm over `deps` (restricted to `names`): dependencies first, ties in the
 * given order. Nodes left in a cycle are returned separately, in the given order.
 */
export function topoOrder(names: readonly string[], deps: (n: string) => Set<string>) {
  const pending = new Set(names);
  const order: string[] = [];
  let progress = true;
  while (progress) {
    progress = false;
    for (const n of pending) {
      if ([...deps(n)].some((d) => d !== n && pending.has(d))) continue;
      pending.delete(n);
      order.push(n);
      progress = true;
    }
  }
  return { order, cyclic: [...pending] };
}

/** SQLite names are case-insensitive and tables and indexes share one namespace. */
export function nameCollisions(nxt: Map<string, EffTable>): string[] {
  const out: string[] = [];
  const owners = new Map<string, string>();
  const claim = (name: string, what: string) => {
    const key = name.toLowerCase();
    const prev = owners.get(key);
    if (prev !== undefined && prev !== what) out.push(`${what} and ${prev} would both be named "${name}"`);
    owners.set(key, what);
  };
  for (const t of nxt.values()) claim(t.name, `table ${t.name}`);
  for (const t of nxt.values()) {
    for (const idx of t.indexes) claim(idx.name, `the index on ${showIndex(t.name, idx.columns)}`);
    for (const col of t.columns.values()) {
      if (isUnique(t, col))
        claim(indexName(t.name, [col.name], "key"), `the unique index on ${t.name}(${col.name})`);
    }
  }
  return out;
}
