/**
 * The diff half of planMigration (migrate.ts): compares each table present in both schemas
 * and sorts the outcome into `Work` (changes by kind, which migrate.ts puts in statement
 * order) or `Problems` (refusals, collected so that one error can report all of them). It
 * also checks the explicit `migrations` steps and hands each out once as the diff uses it.
 */
import { type ColumnType, type MigrationStep, type Policy, tablePolicy } from "../shared/schema.ts";
import { renderDefault, sameForeignKey, sqliteType } from "./migrate-ddl.ts";
import {
  type EffColumn,
  type EffTable,
  indexName,
  isNotNull,
  isUnique,
  showIndex,
} from "./migrate-tables.ts";

/**
 * One change of a plan, as migrate.ts reports it (and re-exports this type). It is declared
 * here because the diff records some actions itself, and migrate.ts imports this module.
 */
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

interface ActiveStep {
  step: MigrationStep;
  used: boolean;
}

/** Why a schema is refused: all collected first, then reported as one error. */
export interface Problems {
  invalid: string[];
  destructive: { message: string; hint: string }[];
}

/** What the diff decided, by kind; `assemble` (migrate.ts) turns it into ordered statements. */
export interface Work {
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

const TEXTISH = new Set<ColumnType>(["text", "uuid"]);

/** The server's owner_id is text; a declared one may be text or uuid, stored the same. */
function sameType(a: EffColumn, b: EffColumn): boolean {
  // a vector's dimensions are part of its type (stored rows keep theirs)
  if (a.def.type === b.def.type) return a.def.dimensions === b.def.dimensions;
  return (a.managed || b.managed) && TEXTISH.has(a.def.type) && TEXTISH.has(b.def.type);
}

function showPk(t: EffTable): string {
  return `(${t.pk.join(", ")})${t.increment ? " with increment" : ""}`;
}

export /** Compares one table present in both schemas; records work or problems. */
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
export function takeStep(work: Work, match: (s: MigrationStep) => boolean): MigrationStep | undefined {
  const found = work.steps.find((x) => !x.used && match(x.step));
  if (found) found.used = true;
  return found?.step;
}

export function exampleHint(step: MigrationStep): string {
  return `add an explicit step to "migrations", e.g. ${JSON.stringify(step)}`;
}

/**
 * Steps that contradict the new schema (dropping what it still declares, retyping to
 * another type than it declares) are errors. Steps that are already true of the current
 * schema are history and skipped: the stored schema does not keep `migrations`, so a
 * client re-sending the same file must not fail.
 */
export function activeSteps(
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
