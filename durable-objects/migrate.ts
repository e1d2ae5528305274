/**
 * planMigration: diffs the stored schema against a new one and returns the SQL to run, in
 * order, inside one transaction. Additive changes just happen; anything that loses data
 * or can fail on existing rows needs an explicit step in `migrations`.
 *
 * Statement order, and why:
 *  1. drop indexes (a column in an index cannot be dropped);
 *  2. create new tables (a rebuilt table may reference them, and SQLite refuses writes to
 *     a table whose foreign key names a missing table);
 *  3. add columns to tables that are not rebuilt;
 *  4. rebuild tables (retype, constraint changes): see rebuildSql in migrate-ddl.ts;
 *  5. drop tables, children first; 6. drop columns; 7. create indexes.
 */
import { HearthError } from "../shared/errors.ts";
import { checkSchemaRules, type ProjectSchema } from "../shared/schema.ts";
import {
  addColumnSql,
  createIndexSql,
  createTableSql,
  dropIndexSql,
  quoteIdent,
  rebuildClosure,
  rebuildOrder,
  rebuildSql,
  sqliteType,
} from "./migrate-ddl.ts";
import {
  activeSteps,
  diffTable,
  exampleHint,
  type MigrationAction,
  type Problems,
  takeStep,
  type Work,
} from "./migrate-diff.ts";
import {
  type EffTable,
  effectiveTables,
  indexName,
  nameCollisions,
  referencedTables,
  showIndex,
  topoOrder,
} from "./migrate-tables.ts";

export type { MigrationAction };
export { quoteIdent, sqliteType };

export interface MigrationPlan {
  /** What changes, in execution order (the DO uses it for its own bookkeeping). */
  steps: MigrationAction[];
  /** SQL to run in order inside one transaction; no values except documented DEFAULTs. */
  statements: string[];
  /** Human-readable lines for the PUT /schema response. */
  summary: string[];
}

export function planMigration(current: ProjectSchema | null, next: ProjectSchema): MigrationPlan {
  const rules = checkSchemaRules(next);
  if (rules.length > 0) throw invalidError(rules.map((i) => `${i.path}: ${i.message}`));
  const cur = effectiveTables(current?.tables ?? {});
  const nxt = effectiveTables(next.tables);
  const problems: Problems = { invalid: [], destructive: [] };
  const work: Work = {
    steps: activeSteps(next.migrations ?? [], cur, nxt, problems),
    dropIndexes: [],
    addColumns: [],
    rebuild: new Map(),
    retypes: [],
    dropColumns: [],
    createIndexes: [],
    meta: [],
  };
  problems.invalid.push(...nameCollisions(nxt));
  const dropTables: string[] = [];
  for (const [name, c] of cur) {
    const n = nxt.get(name);
    if (n) {
      diffTable(c, n, work, problems);
    } else if (takeStep(work, (s) => s.op === "dropTable" && s.table === name)) {
      dropTables.push(name);
    } else {
      problems.destructive.push({
        message: `table ${name} would be dropped (it is missing from the new schema)`,
        hint: exampleHint({ op: "dropTable", table: name }),
      });
    }
  }
  const newTables = [...nxt.keys()].filter((t) => !cur.has(t));
  const created = topoOrder(newTables, (t) => referencedTables(nxt.get(t)!));
  if (created.cyclic.length > 0) {
    problems.invalid.push(
      `tables ${created.cyclic.join(", ")}: their foreign keys form a cycle; create them without one of ` +
        "the references, then add it as a new nullable column in a later schema",
    );
  }
  if (problems.invalid.length > 0) throw invalidError(problems.invalid);
  if (problems.destructive.length > 0) {
    const first = problems.destructive[0]!;
    const n = problems.destructive.length;
    throw new HearthError(
      "HEARTH_SCHEMA_DESTRUCTIVE",
      n === 1
        ? `Destructive schema change refused: ${first.message}`
        : `Destructive schema change refused: ${n} changes, first: ${first.message}`,
      { details: problems.destructive.map((d) => d.message).join("; "), hint: first.hint },
    );
  }
  return assemble(cur, nxt, work, created.order, dropTables);
}

function assemble(
  cur: Map<string, EffTable>,
  nxt: Map<string, EffTable>,
  work: Work,
  newTables: string[],
  dropTables: string[],
): MigrationPlan {
  const plan: MigrationPlan = { steps: [], statements: [], summary: [] };
  const rebuilt = rebuildClosure(cur, nxt, work.rebuild.keys());
  // Dropping or rebuilding a parent table deletes its rows; with deferred checks the child
  // rows dropped or copied in the same transaction are not counted as violations. Only
  // SQLite's connection flag changes, and it resets at commit.
  if (rebuilt.size > 0 || dropTables.length > 0) plan.statements.push("PRAGMA defer_foreign_keys = ON");
  for (const d of work.dropIndexes) {
    plan.statements.push(dropIndexSql(d.name));
    plan.steps.push({ op: "dropIndex", table: d.table, columns: d.columns, name: d.name });
    plan.summary.push(`drop index on ${showIndex(d.table, d.columns)}`);
  }
  for (const name of newTables) {
    const t = nxt.get(name)!;
    plan.steps.push({ op: "createTable", table: name });
    plan.summary.push(`create table ${name}`);
    if (rebuilt.has(name)) continue; // created with the rebuild, after the renames
    plan.statements.push(createTableSql(t));
    for (const idx of t.indexes) plan.statements.push(createIndexSql(name, idx));
  }
  for (const a of work.addColumns) {
    const t = nxt.get(a.table)!;
    const col = t.columns.get(a.column)!;
    if (!rebuilt.has(a.table)) plan.statements.push(addColumnSql(t, col));
    plan.steps.push({
      op: "addColumn",
      table: a.table,
      column: a.column,
      type: col.def.type,
      managed: col.managed,
    });
    plan.summary.push(
      col.managed
        ? `add column ${a.table}.${a.column} (server-managed owner of each row)`
        : `add column ${a.table}.${a.column} ${col.def.type}`,
    );
  }
  for (const r of work.retypes) {
    plan.steps.push(r);
    plan.summary.push(`retype column ${r.table}.${r.column} ${r.from} → ${r.to}`);
  }
  plan.statements.push(...rebuildSql(cur, nxt, rebuilt));
  for (const name of rebuildOrder(nxt, rebuilt)) {
    if (!cur.has(name)) continue; // a new table is only created
    const reasons = work.rebuild.get(name) ?? ["it references a rebuilt table"];
    plan.steps.push({ op: "rebuildTable", table: name, reasons });
    plan.summary.push(`rebuild table ${name} (${reasons.join(", ")})`);
  }
  const dropOrder = topoOrder(dropTables, (t) => referencedTables(cur.get(t)!));
  for (const name of [...dropOrder.order, ...dropOrder.cyclic].reverse()) {
    plan.statements.push(`DROP TABLE ${quoteIdent(name)}`);
    plan.steps.push({ op: "dropTable", table: name });
    plan.summary.push(`drop table ${name}`);
  }
  for (const d of work.dropColumns) {
    if (!rebuilt.has(d.table))
      plan.statements.push(`ALTER TABLE ${quoteIdent(d.table)} DROP COLUMN ${quoteIdent(d.column)}`);
    plan.steps.push({ op: "dropColumn", table: d.table, column: d.column });
    plan.summary.push(`drop column ${d.table}.${d.column}`);
  }
  for (const i of work.createIndexes) {
    const name = indexName(i.table, i.columns, i.unique ? "key" : "idx");
    if (rebuilt.has(i.table)) {
      if (i.unique) continue; // the rebuilt table declares the column UNIQUE instead
    } else {
      plan.statements.push(createIndexSql(i.table, { name, columns: i.columns }, i.unique));
    }
    plan.steps.push({ op: "createIndex", table: i.table, columns: i.columns, name, unique: i.unique });
    plan.summary.push(`create ${i.unique ? "unique " : ""}index on ${showIndex(i.table, i.columns)}`);
  }
  for (const m of work.meta) {
    if (m.action) plan.steps.push(m.action);
    plan.summary.push(m.summary);
  }
  return plan;
}

function invalidError(issues: string[]): HearthError {
  const first = issues[0]!;
  return new HearthError(
    "HEARTH_SCHEMA_INVALID",
    issues.length === 1
      ? `Invalid schema: ${first}`
      : `Invalid schema: ${issues.length} problems, first: ${first}`,
    { details: issues.join("; "), hint: "See docs/api.md#schema for the schema JSON format." },
  );
}
