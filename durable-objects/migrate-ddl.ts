/**
 * SQL text for the project's tables: identifier quoting, the column type mapping, literal
 * defaults, CREATE/ALTER statements and table rebuilds, written from the effective tables of
 * migrate-tables.ts. planMigration (migrate.ts) decides what to run.
 */
import { HearthError } from "../shared/errors.ts";
import { type ColumnDef, type ColumnType, splitReference } from "../shared/schema.ts";
import {
  type EffColumn,
  type EffTable,
  isNotNull,
  isUnique,
  referencedTables,
  topoOrder,
} from "./migrate-tables.ts";

// The table model used to live here; its importers still find it under this path.
export {
  type EffColumn,
  type EffIndex,
  type EffTable,
  effectiveTable,
  effectiveTables,
  hasOwnerPolicy,
  indexName,
  isNotNull,
  isUnique,
  nameCollisions,
  referencedTables,
  showIndex,
  topoOrder,
} from "./migrate-tables.ts";

export type SqliteType = "TEXT" | "INTEGER" | "REAL" | "BLOB";

/** SQLite double-quoted identifier; every table and column name goes through here. */
export function quoteIdent(name: string): string {
  // SQLite ends the statement text at a NUL, so a quoted name could be cut short.
  if (name.includes("\0")) {
    throw new HearthError("HEARTH_BAD_REQUEST", "Identifier contains a NUL character", {
      details: JSON.stringify(name),
    });
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** A single-quoted SQL string; used for literal defaults and for names stored as data. */
export function quoteString(s: string): string {
  if (s.includes("\0")) throw new HearthError("HEARTH_SCHEMA_INVALID", "A string contains a NUL character");
  return `'${s.replaceAll("'", "''")}'`;
}

export function sqliteType(t: ColumnType): SqliteType {
  switch (t) {
    case "text":
    case "uuid":
    case "timestamp":
    case "date":
    case "json":
      return "TEXT";
    case "integer":
    case "bigint":
    case "boolean":
      return "INTEGER";
    case "float":
      return "REAL";
    case "bytes":
    case "vector":
      return "BLOB";
  }
}

/**
 * The one place a value is written into SQL text: `ALTER TABLE ADD COLUMN ... NOT NULL`
 * needs a `DEFAULT` for the rows that already exist, and DDL cannot take bound parameters.
 * Every other default is applied by the DO in JavaScript before insert. The value comes
 * from a validated schema and is rendered strictly by column type; anything that cannot be
 * rendered exactly is refused rather than approximated.
 */
export function renderDefault(col: EffColumn): { sql: string } | { problem: string } {
  const d = col.def.default;
  if (d === undefined || d === null) return { problem: "it has no default" };
  // schema.ts allows these keywords only as keywords, never as literal strings.
  if (d === "random" || d === "now" || d === "increment") {
    return { problem: `its default "${d}" is computed per insert and cannot fill the existing rows` };
  }
  if (col.def.type === "json") return { sql: quoteString(JSON.stringify(d)) };
  switch (col.def.type) {
    case "integer":
    case "bigint":
      return typeof d === "number" && Number.isSafeInteger(d)
        ? { sql: String(d) }
        : { problem: "its default is not a safe integer" };
    case "float":
      return typeof d === "number" && Number.isFinite(d)
        ? { sql: String(d) }
        : { problem: "its default is not a finite number" };
    case "boolean":
      return typeof d === "boolean"
        ? { sql: d ? "1" : "0" }
        : { problem: "its default is not true or false" };
    case "bytes":
    case "vector":
      return { problem: `a ${col.def.type} default cannot be written as SQL` };
    default:
      if (typeof d !== "string") return { problem: "its default is not a string" };
      if (d.includes("\0")) return { problem: "its default contains a NUL character" };
      return { sql: quoteString(d) };
  }
}

export function literalDefault(table: string, col: EffColumn): string {
  const r = renderDefault(col);
  if ("sql" in r) return r.sql;
  throw new HearthError(
    "HEARTH_SCHEMA_INVALID",
    `Invalid schema: column ${table}.${col.name} is notNull and new to an existing table, but ${r.problem}`,
    { hint: "Make the new column nullable, or give it a literal default the existing rows can take." },
  );
}

function normalizedOnDelete(def: ColumnDef): string {
  return (def.onDelete ?? "no action").toUpperCase();
}

function referencesSql(def: ColumnDef): string {
  if (def.references === undefined) return "";
  const ref = splitReference(def.references);
  const onDelete = def.onDelete ? ` ON DELETE ${normalizedOnDelete(def)}` : "";
  return ` REFERENCES ${quoteIdent(ref.table)}(${quoteIdent(ref.column)})${onDelete}`;
}

/**
 * One column of CREATE TABLE. `withDefault` is set only for a column that is new to an
 * existing table and rebuilt with it (see literalDefault).
 */
function columnSql(t: EffTable, c: EffColumn, withDefault: boolean): string {
  const type = sqliteType(c.def.type);
  if (t.increment && t.pk[0] === c.name) {
    // A rowid alias is never NULL; AUTOINCREMENT keeps ids from being reused after deletes.
    return `${quoteIdent(c.name)} INTEGER PRIMARY KEY AUTOINCREMENT${referencesSql(c.def)}`;
  }
  let sql = `${quoteIdent(c.name)} ${type}`;
  if (isNotNull(t, c)) sql += " NOT NULL";
  if (withDefault) sql += ` DEFAULT ${literalDefault(t.name, c)}`;
  if (isUnique(t, c)) sql += " UNIQUE";
  return sql + referencesSql(c.def);
}

/** `CREATE TABLE "<t>" (...) STRICT`; `newNotNull` lists columns that need a DEFAULT. */
export function createTableSql(t: EffTable, newNotNull: ReadonlySet<string> = new Set()): string {
  const parts = [...t.columns.values()].map((c) => columnSql(t, c, newNotNull.has(c.name)));
  if (!t.increment) parts.push(`PRIMARY KEY (${t.pk.map(quoteIdent).join(", ")})`);
  return `CREATE TABLE ${quoteIdent(t.name)} (${parts.join(", ")}) STRICT`;
}

/**
 * ALTER TABLE ADD COLUMN. SQLite refuses UNIQUE here (the caller adds a unique index) and
 * a REFERENCES column with a non-NULL default (planMigration refuses that combination).
 */
export function addColumnSql(t: EffTable, c: EffColumn): string {
  let sql = `ALTER TABLE ${quoteIdent(t.name)} ADD COLUMN ${quoteIdent(c.name)} ${sqliteType(c.def.type)}`;
  if (c.def.notNull) sql += ` NOT NULL DEFAULT ${literalDefault(t.name, c)}`;
  else if (!c.def.references) {
    // As in PostgreSQL, rows stored before the column read its literal default, not null
    // (flushed rows do the same in cold-store.ts missingValue). Keyword defaults stay null.
    const rendered = renderDefault(c);
    if ("sql" in rendered) sql += ` DEFAULT ${rendered.sql}`;
  }
  return sql + referencesSql(c.def);
}

export function createIndexSql(
  table: string,
  idx: { name: string; columns: readonly string[] },
  unique = false,
) {
  const cols = idx.columns.map(quoteIdent).join(", ");
  return `CREATE ${unique ? "UNIQUE " : ""}INDEX IF NOT EXISTS ${quoteIdent(idx.name)} ON ${quoteIdent(table)} (${cols})`;
}

export function dropIndexSql(name: string): string {
  return `DROP INDEX IF EXISTS ${quoteIdent(name)}`;
}

/** Whether two column definitions need a different foreign key clause. */
export function sameForeignKey(a: ColumnDef, b: ColumnDef): boolean {
  if (a.references !== b.references) return false;
  return a.references === undefined || normalizedOnDelete(a) === normalizedOnDelete(b);
}

const TMP_PREFIX = "_hearth_tmp_";

/**
 * Tables to rebuild: those whose columns need it, plus every table whose foreign keys
 * point at one of them (transitively). Renaming a parent rewrites its children's foreign
 * keys to the new name, and dropping it would cascade into them, so children are rebuilt
 * with their parents. SQLite in a Durable Object always enforces foreign keys and cannot
 * turn them off inside the transaction.
 */
export function rebuildClosure(
  cur: Map<string, EffTable>,
  nxt: Map<string, EffTable>,
  seeds: Iterable<string>,
): Set<string> {
  const out = new Set(seeds);
  const parents = (name: string) => {
    const refs = referencedTables(nxt.get(name)!);
    const old = cur.get(name);
    if (old) for (const r of referencedTables(old)) refs.add(r);
    return refs;
  };
  let grew = true;
  while (grew) {
    grew = false;
    for (const name of nxt.keys()) {
      if (out.has(name) || ![...parents(name)].some((p) => out.has(p))) continue;
      out.add(name);
      grew = true;
    }
  }
  return out;
}

/** Parents first where foreign keys allow; a cycle is fine, checks are deferred. */
export function rebuildOrder(nxt: Map<string, EffTable>, rebuilt: Set<string>): string[] {
  const topo = topoOrder([...rebuilt], (t) => referencedTables(nxt.get(t)!));
  return [...topo.order, ...topo.cyclic];
}

/**
 * SQLite cannot change a column's type or constraints in place. Each rebuilt table is
 * renamed to `_hearth_tmp_<n>`, created anew, refilled and the old one dropped. Values
 * move to TEXT or BLOB with CAST (always defined); to INTEGER or REAL they are copied
 * as they are, so that STRICT's lossless coercion turns '42' into 42 but makes 'abc' or 3.5
 * fail the migration instead of silently becoming 0 or 3.
 */
export function rebuildSql(cur: Map<string, EffTable>, nxt: Map<string, EffTable>, rebuilt: Set<string>) {
  const out: string[] = [];
  if (rebuilt.size === 0) return out;
  const order = rebuildOrder(nxt, rebuilt);
  const old = order.filter((t) => cur.has(t));
  const tmp = new Map(old.map((t, i) => [t, `${TMP_PREFIX}${i}`]));
  for (const t of old) out.push(`ALTER TABLE ${quoteIdent(t)} RENAME TO ${quoteIdent(tmp.get(t)!)}`);
  for (const name of order) {
    const n = nxt.get(name)!;
    const c = cur.get(name);
    const fresh = new Set<string>();
    if (c)
      for (const col of n.columns.values())
        if (!c.columns.has(col.name) && isNotNull(n, col)) fresh.add(col.name);
    out.push(createTableSql(n, fresh));
  }
  for (const name of old) {
    const n = nxt.get(name)!;
    const c = cur.get(name)!;
    const from = quoteIdent(tmp.get(name)!);
    // AUTOINCREMENT's high-water mark lives in sqlite_sequence under the table's name; carry
    // it over so ids of deleted (or already flushed) rows are never handed out again.
    // The names are written as strings here because sqlite_sequence stores them as data.
    if (n.increment) {
      out.push(
        `UPDATE sqlite_sequence SET name = ${quoteString(name)} WHERE name = ${quoteString(tmp.get(name)!)}`,
      );
    }
    const cols = [...n.columns.values()].filter((col) => c.columns.has(col.name));
    const exprs = cols.map((col) => {
      const to = sqliteType(col.def.type);
      const same = sqliteType(c.columns.get(col.name)!.def.type) === to;
      return same || to === "INTEGER" || to === "REAL"
        ? quoteIdent(col.name)
        : `CAST(${quoteIdent(col.name)} AS ${to})`;
    });
    out.push(
      `INSERT INTO ${quoteIdent(name)} (${cols.map((col) => quoteIdent(col.name)).join(", ")}) ` +
        `SELECT ${exprs.join(", ")} FROM ${from}`,
    );
  }
  for (const t of [...old].reverse()) out.push(`DROP TABLE ${quoteIdent(tmp.get(t)!)}`);
  for (const name of order) {
    const n = nxt.get(name)!;
    for (const idx of n.indexes) out.push(createIndexSql(name, idx));
  }
  return out;
}
