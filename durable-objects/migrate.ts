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
import {
  type ColumnType,
  checkSchemaRules,
  type MigrationStep,
  type Policy,
  type ProjectSchema,
  tablePolicy,
} from "../shared/schema.ts";
import {
  addColumnSql,
  createIndexSql,
  createTableSql,
  dropIndexSql,
  type EffColumn,
  type EffTable,
  effectiveTables,
  indexName,
  isNotNull,
  isUnique,
  nameCollisions,
  quoteIdent,
  rebuildClosure,
  rebuildOrder,
  rebuildSql,
  referencedTables,
  renderDefault,
  sameForeignKey,
  showIndex,
  sqliteType,
  topoOrder,
} from "./migrate-ddl.ts";

export { quoteIdent, sqliteType };

export type MigrationAction =
  | { op: "createTable"; table: string }
  | { op: "addColumn"; table: string; column: string; type: ColumnType; managed: boolean }
  | { op: "createIndex"; table: string; columns: string[]; name: string; unique: boolean }
  | { op: "dropIndex"; table: string; columns: string[]; name: string }
  | { op: "rebuildTable"; table: string; reasons: string[] }
  | { op: "retypeColumn"; table: string; column: string; from: ColumnType; to: ColumnType }
  | { op: "dropColumn"; table: string; column: string }
  | { op: "dropTable"; table: string }
  | { op: "setPolicy"; table: string; read: Policy; write: Policy };

export interface MigrationPlan {
  /** What changes, in execution order (the DO uses it for its own bookkeeping). */
  steps: MigrationAction[];
  /** SQL to run in order inside one transaction; no values except documented DEFAULTs. */
  statements: string[];
  /** Human-readable lines for the PUT /schema response. */
  summary: string[];
}

interface ActiveStep {
  step: MigrationStep;
  used: boolean;
}

interface Problems {
  invalid: string[];
  destructive: { message: string; hint: string }[];
}

/** What the diff decided, by kind; `assemble` turns it into ordered statements. */
interface Work {
  steps: ActiveStep[];
  dropIndexes: { table: string; columns: string[]; name: string }[];
  addColumns: { table: string; column: string }[];
  /** Tables that must be rebuilt, with why. */
  rebuild: Map<string, string[]>;
  retypes: Extract<MigrationAction, { op: "retypeColumn" }>[];
  dropColumns: { table: string; column: string }[];
  createIndexes: { table: string; columns: string[]; unique: boolean }[];
  meta: { action?: MigrationAction; summary: string }[];
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

const TEXTISH = new Set<ColumnType>(["text", "uuid"]);

/** The server's owner_id is text; a declared one may be text or uuid, stored the same. */
function sameType(a: EffColumn, b: EffColumn): boolean {
  if (a.def.type === b.def.type) return true;
  return (a.managed || b.managed) && TEXTISH.has(a.def.type) && TEXTISH.has(b.def.type);
}

function showPk(t: EffTable): string {
  return `(${t.pk.join(", ")})${t.increment ? " with increment" : ""}`;
}

/** Compares one table present in both schemas; records work or problems. */
function diffTable(c: EffTable, n: EffTable, work: Work, problems: Problems): void {
  const name = n.name;
  const take = (op: "dropColumn" | "retypeColumn", column: string) =>
    takeStep(work, (s) => s.op === op && s.table === name && s.column === column);
  const rebuild = (reason: string) => work.rebuild.set(name, [...(work.rebuild.get(name) ?? []), reason]);
  const refuse = (message: string, step: MigrationStep) =>
    problems.destructive.push({ message, hint: exampleHint(step) });
  const pkHint =
    "a primary key cannot change in place: create a table under a new name, copy the rows, then drop this one " +
    `with {"op":"dropTable","table":"${name}"}`;
  if (showPk(c) !== showPk(n)) {
    problems.destructive.push({
      message: `the primary key of table ${name} would change from ${showPk(c)} to ${showPk(n)}`,
      hint: pkHint,
    });
  }
  for (const a of c.columns.values()) {
    const b = n.columns.get(a.name);
    const col = `${name}.${a.name}`;
    const isPk = c.pk.includes(a.name);
    if (!b) {
      const step = take("dropColumn", a.name);
      if (isPk) continue; // reported as a primary key change
      if (!step) {
        const owner = `; declare "${a.name}": {"type": "uuid"} in its columns to keep it`;
        refuse(
          a.managed
            ? `column ${col} (server-managed for the "owner" policy) would be dropped${owner}`
            : `column ${col} would be dropped (it is missing from the new schema)`,
          { op: "dropColumn", table: name, column: a.name },
        );
        continue;
      }
      work.dropColumns.push({ table: name, column: a.name });
      // SQLite's DROP COLUMN refuses UNIQUE columns; a foreign key column goes with a
      // rebuild so that it is gone before any parent table is dropped.
      if (isUnique(c, a) || a.def.references !== undefined) rebuild(`drop column ${a.name}`);
      continue;
    }
    const typeChanged = !sameType(a, b);
    if (typeChanged && isPk) {
      take("retypeColumn", a.name);
      problems.destructive.push({
        message: `primary-key column ${col} cannot be retyped (${a.def.type} → ${b.def.type})`,
        hint: pkHint,
      });
      continue;
    }
    const needStep: string[] = typeChanged ? [`type ${a.def.type} → ${b.def.type}`] : [];
    const loosen: string[] = [];
    if (!isNotNull(c, a) && isNotNull(n, b)) needStep.push("becomes notNull");
    if (isNotNull(c, a) && !isNotNull(n, b)) loosen.push(`${a.name} no longer notNull`);
    if (!sameForeignKey(a.def, b.def)) {
      if (b.def.references === undefined) loosen.push(`${a.name} no longer references ${a.def.references}`);
      else if (a.def.references === b.def.references)
        loosen.push(`${a.name} onDelete ${b.def.onDelete ?? "no action"}`);
      else
        needStep.push(
          `references ${b.def.references}${a.def.references ? ` instead of ${a.def.references}` : ""}`,
        );
    }
    if (isUnique(c, a) && !isUnique(n, b)) loosen.push(`${a.name} no longer unique`);
    if (!isUnique(c, a) && isUnique(n, b))
      work.createIndexes.push({ table: name, columns: [a.name], unique: true });
    if (needStep.length > 0) {
      if (!take("retypeColumn", a.name)) {
        refuse(`column ${col} would change: ${needStep.join(", ")}`, {
          op: "retypeColumn",
          table: name,
          column: a.name,
          type: b.def.type,
        });
        continue;
      }
      if (typeChanged)
        work.retypes.push({
          op: "retypeColumn",
          table: name,
          column: a.name,
          from: a.def.type,
          to: b.def.type,
        });
      const sameStorage = sqliteType(a.def.type) === sqliteType(b.def.type);
      if (!(sameStorage && needStep.length === 1 && typeChanged))
        rebuild(`${a.name}: ${needStep.join(", ")}`);
    } else if (loosen.length > 0) {
      take("retypeColumn", a.name);
    }
    for (const l of loosen) rebuild(l);
    const meta = (["default", "encrypted", "description"] as const).filter(
      (k) => JSON.stringify(a.def[k]) !== JSON.stringify(b.def[k]),
    );
    if (meta.length > 0 && !a.managed && !b.managed)
      work.meta.push({ summary: `update column ${col} (${meta.join(", ")})` });
  }
  for (const b of n.columns.values()) {
    if (c.columns.has(b.name) || n.pk.includes(b.name)) continue;
    const col = `${name}.${b.name}`;
    if (b.def.notNull) {
      const r = renderDefault(b);
      if ("problem" in r) {
        problems.invalid.push(
          `column ${col} is new and notNull, but ${r.problem}: the existing rows of ${name} would violate it; ` +
            "make it nullable or give it a literal default",
        );
        continue;
      }
      if (b.def.references !== undefined) {
        problems.invalid.push(
          `column ${col} is new, notNull and references ${b.def.references}: SQLite cannot add such a column ` +
            "to an existing table; add it nullable",
        );
        continue;
      }
    }
    work.addColumns.push({ table: name, column: b.name });
    if (isUnique(n, b)) work.createIndexes.push({ table: name, columns: [b.name], unique: true });
  }
  for (const idx of c.indexes) {
    if (n.indexes.some((i) => i.name === idx.name)) continue;
    const gone = idx.columns.filter((x) => !n.columns.has(x));
    const drop = { table: name, columns: idx.columns, name: idx.name };
    // The owner index outlives an "owner" policy (harmless) unless its column goes.
    if (idx.managed) {
      if (gone.length > 0) work.dropIndexes.push(drop);
      continue;
    }
    const same = (cols: string[]) => cols.join("\0") === idx.columns.join("\0");
    if (takeStep(work, (s) => s.op === "dropIndex" && s.table === name && same(s.columns))) {
      work.dropIndexes.push(drop);
      continue;
    }
    const where = showIndex(name, idx.columns);
    refuse(
      gone.length > 0
        ? `the index on ${where} would be removed; it must be dropped before column ${name}.${gone[0]}`
        : `the index on ${where} would be removed`,
      { op: "dropIndex", table: name, columns: idx.columns },
    );
  }
  for (const idx of n.indexes) {
    if (!c.indexes.some((i) => i.name === idx.name)) {
      work.createIndexes.push({ table: name, columns: idx.columns, unique: false });
    }
  }
  const pa = tablePolicy(c.def);
  const pb = tablePolicy(n.def);
  if (pa.read !== pb.read || pa.write !== pb.write) {
    work.meta.push({
      action: { op: "setPolicy", table: name, read: pb.read, write: pb.write },
      summary: `set policy of ${name}: read ${pb.read}, write ${pb.write}`,
    });
  }
  if (c.def.description !== n.def.description) work.meta.push({ summary: `update description of ${name}` });
}

/** Marks the first unused step that matches as used. */
function takeStep(work: Work, match: (s: MigrationStep) => boolean): MigrationStep | undefined {
  const found = work.steps.find((x) => !x.used && match(x.step));
  if (found) found.used = true;
  return found?.step;
}

function exampleHint(step: MigrationStep): string {
  return `add an explicit step to "migrations", e.g. ${JSON.stringify(step)}`;
}

/**
 * Steps that contradict the new schema (dropping what it still declares, retyping to
 * another type than it declares) are errors. Steps that are already true of the current
 * schema are history and skipped: the stored schema does not keep `migrations`, so a
 * client re-sending the same file must not fail.
 */
function activeSteps(
  steps: readonly MigrationStep[],
  cur: Map<string, EffTable>,
  nxt: Map<string, EffTable>,
  problems: Problems,
): ActiveStep[] {
  const out: ActiveStep[] = [];
  steps.forEach((step, index) => {
    const c = cur.get(step.table);
    const n = nxt.get(step.table);
    const bad = (why: string) => problems.invalid.push(`migrations.${index} (${step.op}): ${why}`);
    let active = false;
    switch (step.op) {
      case "dropTable":
        if (n) bad(`table ${step.table} is still in the new schema; remove it from "tables" to drop it`);
        active = c !== undefined;
        break;
      case "dropColumn":
        if (n?.columns.has(step.column)) {
          bad(
            `column ${step.table}.${step.column} is still in the new schema; remove it from "columns" to drop it`,
          );
        }
        active = c?.columns.has(step.column) === true && n !== undefined;
        break;
      case "dropIndex": {
        const name = indexName(step.table, step.columns, "idx");
        if (n?.indexes.some((i) => i.name === name)) {
          bad(`the index on ${showIndex(step.table, step.columns)} is still in the new schema`);
        }
        active = c?.indexes.some((i) => i.name === name) === true && n !== undefined;
        break;
      }
      case "retypeColumn": {
        const declared = n?.columns.get(step.column)?.def.type;
        const other = steps.some(
          (o) =>
            o.op === "retypeColumn" &&
            o.table === step.table &&
            o.column === step.column &&
            o.type === declared,
        );
        if (declared !== undefined && declared !== step.type && !other) {
          bad(
            `the step says ${step.type} but the new schema declares ${step.table}.${step.column} as ${declared}`,
          );
        }
        active = declared === step.type && c?.columns.has(step.column) === true;
        break;
      }
    }
    if (active) out.push({ step, used: false });
  });
  return out;
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
