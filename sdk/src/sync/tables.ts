/**
 * The followed tables and their primary keys. A row's replica key is the JSON array of its
 * primary-key values in key order, the same for a row read from a snapshot, the `pk` of a
 * change and the `pk` of a local update. Snapshot rows carry no separate key, so the engine
 * must know each table's primary key: given, read from a schema JSON table, or `id`.
 */
import type { Row } from "../replica/types.ts";
import { SyncConfigError } from "./errors.ts";

// Defined with the other sync errors; still exported here for the modules that import it from here.
export { SyncConfigError };

/** A table to follow: its primary key, or a table of the project's schema JSON. */
export interface TableSpec {
  primaryKey?: string | string[];
  columns?: Record<string, { primaryKey?: boolean }>;
}

export type TablesOption = string[] | Record<string, TableSpec>;

export class TableKeys {
  constructor(
    readonly table: string,
    readonly primaryKey: string[],
  ) {}

  /** The key of `row`, or null when it lacks a key column (the server will generate it). */
  of(row: Row): string | null {
    const values: unknown[] = [];
    for (const c of this.primaryKey) {
      const v = row[c];
      if (v === undefined || v === null) return null;
      values.push(v);
    }
    return JSON.stringify(values);
  }

  /** The key of a row from the server, which always has its key. */
  ofServerRow(row: Row): string {
    const key = this.of(row);
    if (key === null) {
      throw new SyncConfigError(
        `A row of ${this.table} from the server has no (${this.primaryKey.join(", ")}): ` +
          `pass tables: { "${this.table}": { primaryKey: [...] } } with the table's primary key`,
      );
    }
    return key;
  }

  /** The key of a `pk` object that must name exactly the primary key. */
  ofPk(pk: Row): string {
    const names = Object.keys(pk);
    const key = names.length === this.primaryKey.length ? this.of(pk) : null;
    if (key === null) {
      throw new SyncConfigError(
        `The primary key of ${this.table} is (${names.join(", ")}) on the server, not (${this.primaryKey.join(", ")}): ` +
          `pass tables: { "${this.table}": { primaryKey: [...] } }`,
      );
    }
    return key;
  }

  /** `input` (the key columns of a row, or the value of a one-column key) as a `pk` object. */
  pkOf(input: unknown): Row {
    if (typeof input === "object" && input !== null) {
      const pk: Row = {};
      for (const c of this.primaryKey) {
        const v = (input as Row)[c];
        if (v === undefined || v === null) throw new TypeError(`${this.table}: the key needs column ${c}`);
        pk[c] = v;
      }
      return pk;
    }
    if (this.primaryKey.length !== 1 || input === undefined || input === null) {
      throw new TypeError(`${this.table}: give the key as { ${this.primaryKey.join(", ")} }`);
    }
    return { [this.primaryKey[0]!]: input };
  }
}

function primaryKeyOf(name: string, spec: TableSpec): string[] {
  if (spec.primaryKey !== undefined) {
    return typeof spec.primaryKey === "string" ? [spec.primaryKey] : [...spec.primaryKey];
  }
  if (spec.columns) {
    const cols = Object.entries(spec.columns)
      .filter(([, c]) => c.primaryKey)
      .map(([c]) => c);
    if (cols.length === 0) throw new SyncConfigError(`${name}: the schema declares no primary key`);
    return cols;
  }
  return ["id"];
}

/** The `tables` option as keys by table name (in the order given). */
export function tableKeys(tables: TablesOption): Map<string, TableKeys> {
  const entries: [string, TableSpec][] = Array.isArray(tables)
    ? tables.map((t) => [t, {}])
    : Object.entries(tables);
  if (entries.length === 0) throw new SyncConfigError("Follow at least one table");
  return new Map(entries.map(([name, spec]) => [name, new TableKeys(name, primaryKeyOf(name, spec))]));
}
