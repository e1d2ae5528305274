/**
 * The project's validated schema, indexed for the query path: tables, columns, primary
 * keys, policies and the foreign-key relationships that embedded selects follow.
 */
import { HearthError } from "../shared/errors.ts";
import {
  type ColumnDef,
  type ColumnType,
  OWNER_COLUMN,
  type Policy,
  type ProjectSchema,
  splitReference,
  type TableDef,
  tablePolicy,
} from "../shared/schema.ts";

export interface ColumnInfo {
  name: string;
  type: ColumnType;
  def: ColumnDef;
  /** owner_id added by the server for `owner` policies */
  managed: boolean;
}

export interface TableInfo {
  name: string;
  def: TableDef;
  columns: Map<string, ColumnInfo>;
  primaryKey: string[];
  policy: { read: Policy; write: Policy };
  ownerScoped: boolean;
}

/** A foreign key seen from `table`: many-to-one when `table` holds the FK column. */
export interface Relationship {
  kind: "many-to-one" | "one-to-many";
  /** constraint-like name `<table>_<column>_fkey`, usable as a hint */
  constraint: string;
  table: string;
  columns: string[];
  foreignTable: string;
  foreignColumns: string[];
}

export class SchemaIndex {
  readonly tables = new Map<string, TableInfo>();
  private readonly relationships = new Map<string, Relationship[]>();

  constructor(readonly schema: ProjectSchema) {
    for (const [name, def] of Object.entries(schema.tables)) {
      const columns = new Map<string, ColumnInfo>();
      for (const [col, cdef] of Object.entries(def.columns)) {
        columns.set(col, { name: col, type: cdef.type, def: cdef, managed: false });
      }
      const policy = tablePolicy(def);
      const ownerScoped = policy.read === "owner" || policy.write === "owner";
      if (ownerScoped && !columns.has(OWNER_COLUMN)) {
        columns.set(OWNER_COLUMN, { name: OWNER_COLUMN, type: "text", def: { type: "text" }, managed: true });
      }
      const primaryKey = [...columns.values()].filter((c) => c.def.primaryKey).map((c) => c.name);
      this.tables.set(name, { name, def, columns, primaryKey, policy, ownerScoped });
      this.relationships.set(name, []);
    }
    for (const [name, def] of Object.entries(schema.tables)) {
      for (const [col, cdef] of Object.entries(def.columns)) {
        if (!cdef.references) continue;
        const ref = splitReference(cdef.references);
        const constraint = `${name}_${col}_fkey`;
        this.relationships.get(name)?.push({
          kind: "many-to-one",
          constraint,
          table: name,
          columns: [col],
          foreignTable: ref.table,
          foreignColumns: [ref.column],
        });
        this.relationships.get(ref.table)?.push({
          kind: "one-to-many",
          constraint,
          table: ref.table,
          columns: [ref.column],
          foreignTable: name,
          foreignColumns: [col],
        });
      }
    }
  }

  /** Every foreign key touching `table`, seen from it (both directions). */
  relationshipsOf(table: string): readonly Relationship[] {
    return this.relationships.get(table) ?? [];
  }

  table(name: string): TableInfo {
    const t = this.tables.get(name);
    if (!t) {
      const close = [...this.tables.keys()].find((k) => k.toLowerCase() === name.toLowerCase());
      throw new HearthError("PGRST205", `Could not find the table '${name}' in the schema cache`, {
        hint: close ? `Perhaps you meant the table '${close}'` : null,
      });
    }
    return t;
  }

  column(table: TableInfo, name: string): ColumnInfo {
    const c = table.columns.get(name);
    if (!c) {
      throw new HearthError("42703", `column ${table.name}.${name} does not exist`, {
        hint: `Columns of ${table.name}: ${[...table.columns.keys()].join(", ")}`,
      });
    }
    return c;
  }

  /**
   * Resolves `rel` in `select=...,rel!hint(...)` from `table`: rel is a table name, an FK
   * column of `table`, or a constraint name; hint disambiguates by FK column or constraint.
   */
  relationship(table: string, rel: string, hint?: string): Relationship {
    const all = this.relationships.get(table) ?? [];
    let found = all.filter(
      (r) =>
        r.foreignTable === rel ||
        r.constraint === rel ||
        (r.kind === "many-to-one" && r.columns.length === 1 && r.columns[0] === rel),
    );
    if (hint !== undefined) {
      found = found.filter(
        (r) => r.constraint === hint || r.columns.includes(hint) || r.foreignColumns.includes(hint),
      );
    }
    if (found.length === 0) {
      throw new HearthError(
        "PGRST200",
        `Could not find a relationship between '${table}' and '${rel}' in the schema cache`,
        {
          hint: 'Embedding follows foreign keys declared with "references" in the schema.',
          details: `Searched for a foreign key relationship between '${table}' and '${rel}'${hint ? ` using the hint '${hint}'` : ""}.`,
        },
      );
    }
    if (found.length > 1) {
      throw new HearthError(
        "PGRST201",
        `Could not embed because more than one relationship was found for '${table}' and '${rel}'`,
        {
          details: JSON.stringify(
            found.map((r) => ({
              cardinality: r.kind,
              embedding: `${table} with ${r.foreignTable}`,
              relationship: r.constraint,
            })),
          ),
          hint: `Try changing '${rel}' to one of the following: ${found.map((r) => `'${rel}!${r.constraint}'`).join(", ")}.`,
        },
      );
    }
    return found[0]!;
  }
}
