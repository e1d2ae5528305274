/**
 * What a write must bring from the cold tier into the hot tier before SQLite runs it, so
 * that constraints, conflicts, cascades and the WAL behave exactly as if every row were hot.
 * All of it runs inside the write's transaction, after `prepareWrite` loaded the segments.
 */
import { MISSING, type RowBatch } from "../../shared/rest/bodies.ts";
import { toStorage } from "../../shared/values.ts";
import { quoteIdent } from "../migrate.ts";
import { pkFilter } from "../read.ts";
import type { TableInfo } from "../schema-index.ts";
import { SqlParams } from "../sql-where.ts";
import type { ColdStore, ColdView } from "./cold-store.ts";
import { type KeyOf, keyOf } from "./manifest.ts";

/** A key as the values of the primary-key columns (see `keyOf`). */
function keyValues(table: TableInfo, k: KeyOf): unknown[] {
  return table.primaryKey.length === 1 ? [k] : (JSON.parse(String(k)) as unknown[]);
}

/** Storage values of one column across a batch (values that do not cast are skipped). */
function batchValues(table: TableInfo, batch: RowBatch, column: string): Set<unknown> {
  const j = batch.columns.indexOf(column);
  const out = new Set<unknown>();
  if (j < 0) return out;
  const col = table.columns.get(column);
  if (!col) return out;
  for (const row of batch.rows) {
    const raw = row[j];
    if (raw === MISSING || raw === undefined || raw === null) continue;
    try {
      const v = toStorage(col.type, raw, col.name, batch.text === true);
      if (v !== null && !(v instanceof ArrayBuffer)) out.add(v);
    } catch {
      // the insert itself reports the bad value
    }
  }
  return out;
}

/** Before an insert/upsert: cold rows it could conflict with, and cold parents it references. */
export function promoteForInsert(
  store: ColdStore,
  sql: SqlStorage,
  view: ColdView,
  table: TableInfo,
  batch: RowBatch,
): void {
  if (view.hasCold(table.name)) {
    const promoted: KeyOf[] = [];
    if (table.primaryKey.every((c) => batch.columns.includes(c))) {
      const cols = table.primaryKey.map((c) => batch.columns.indexOf(c));
      const keys: KeyOf[] = [];
      for (const row of batch.rows) {
        try {
          keys.push(
            keyOf(
              cols.map((j, i) => {
                const col = table.columns.get(table.primaryKey[i]!)!;
                return toStorage(col.type, row[j], col.name, batch.text === true);
              }),
            ),
          );
        } catch {
          // reported by the insert
        }
      }
      promoted.push(...store.promote(view, table, keys));
    }
    for (const c of table.columns.values()) {
      if (c.def.unique || (c.def.primaryKey && table.primaryKey.length === 1)) {
        promoted.push(...store.promoteWhere(view, table, c.name, batchValues(table, batch, c.name)));
      }
    }
    // An upsert may update a conflicting row, even its key: its cold children come along so
    // SQLite's foreign-key checks see them.
    promoteChildren(
      store,
      sql,
      view,
      table,
      promoted.map((k) => keyValues(table, k)),
      new Set(),
    );
  }
  promoteParents(store, view, table, (column) => batchValues(table, batch, column));
}

/** Cold parents that values about to be written into FK columns refer to. */
export function promoteParents(
  store: ColdStore,
  view: ColdView,
  table: TableInfo,
  valuesOf: (column: string) => Set<unknown>,
): void {
  for (const rel of view.schema.relationshipsOf(table.name)) {
    if (rel.kind !== "many-to-one") continue;
    const parent = view.schema.tables.get(rel.foreignTable);
    if (!parent || !view.hasCold(parent.name)) continue;
    store.promoteWhere(view, parent, rel.foreignColumns[0]!, valuesOf(rel.columns[0]!));
  }
}

/** Makes the target rows of an update/delete hot, with every cold row that refers to them. */
export function promoteTargets(
  store: ColdStore,
  sql: SqlStorage,
  view: ColdView,
  table: TableInfo,
  targets: unknown[][],
): void {
  store.promote(
    view,
    table,
    targets.map((k) => keyOf(k)),
  );
  promoteChildren(store, sql, view, table, targets, new Set());
}

/**
 * Brings into the hot tier every cold row that refers to `keys` of `table`, and so on down
 * (a delete may cascade, an update may change a referenced key). Children that were hot
 * already are followed too: their own children may be cold. `seen` stops cycles.
 */
export function promoteChildren(
  store: ColdStore,
  sql: SqlStorage,
  view: ColdView,
  table: TableInfo,
  keys: unknown[][],
  seen: Set<string>,
): void {
  if (keys.length === 0) return;
  for (const rel of view.schema.relationshipsOf(table.name)) {
    if (rel.kind !== "one-to-many") continue;
    const child = view.schema.tables.get(rel.foreignTable);
    if (!child) continue;
    const values = new Set<unknown>();
    for (let i = 0; i < keys.length; i += 1000) {
      const params = new SqlParams();
      const where = pkFilter(table, keys.slice(i, i + 1000), quoteIdent(table.name), params);
      for (const r of sql
        .exec(
          `SELECT ${quoteIdent(rel.columns[0]!)} AS v FROM ${quoteIdent(table.name)} WHERE ${where}`,
          ...params.values,
        )
        .toArray()) {
        if (r.v !== null) values.add(r.v);
      }
    }
    if (values.size === 0) continue;
    if (view.hasCold(child.name)) store.promoteWhere(view, child, rel.foreignColumns[0]!, values);
    const next = hotKeysWhere(sql, child, rel.foreignColumns[0]!, values).filter((k) => {
      const id = `${child.name}\u0000${JSON.stringify(k)}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
    promoteChildren(store, sql, view, child, next, seen);
  }
}

function hotKeysWhere(sql: SqlStorage, table: TableInfo, column: string, values: Set<unknown>): unknown[][] {
  const pk = table.primaryKey.map((c) => quoteIdent(c)).join(", ");
  return Array.from(
    sql
      .exec(
        `SELECT ${pk} FROM ${quoteIdent(table.name)} WHERE ${quoteIdent(column)} IN (SELECT value FROM json_each(?1))`,
        JSON.stringify([...values]),
      )
      .raw(),
    (r) => [...r],
  );
}
