/**
 * What a ProjectDO knows about itself, kept in its own SQLite: the project id, the ids of
 * its live API keys (checked on every request), and the current schema. Loaded once at
 * start-up (inside blockConcurrencyWhile); every change is written through.
 */
import { HearthError } from "../shared/errors.ts";
import { type ProjectSchema, parseProjectSchema } from "../shared/schema.ts";
import { COLD_DDL } from "./cold/cold-store.ts";
import { planMigration } from "./migrate.ts";
import { SchemaIndex } from "./schema-index.ts";
import {
  dropWalTriggerStatements,
  upgradeWalState,
  WAL_DDL,
  WAL_TRIGGER_VERSION,
  walTriggerStatements,
} from "./wal.ts";

const META_DDL = [
  "CREATE TABLE IF NOT EXISTS _hearth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS _hearth_keys (id TEXT PRIMARY KEY, role TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
];

export interface KeyRecord {
  id: string;
  role: "anon" | "service";
}

export class ProjectState {
  projectId: string | null = null;
  schemaVersion = 0;
  schema: SchemaIndex | null = null;
  private keys = new Map<string, KeyRecord>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
  ) {
    // An empty object (new, or frozen) stays empty until init: a frozen project's storage
    // holds no tables at all.
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE name = '_hearth_meta'").toArray().length === 0) return;
    this.createTables();
    for (const r of sql.exec("SELECT key, value FROM _hearth_meta")) {
      if (r.key === "project_id") this.projectId = String(r.value);
      if (r.key === "schema_version") this.schemaVersion = Number(r.value);
      if (r.key === "schema") this.schema = new SchemaIndex(JSON.parse(String(r.value)) as ProjectSchema);
    }
    for (const r of sql.exec("SELECT id, role FROM _hearth_keys WHERE revoked = 0")) {
      this.keys.set(String(r.id), { id: String(r.id), role: r.role as KeyRecord["role"] });
    }
    upgradeWalState(sql);
    const tv = sql.exec("SELECT value FROM _hearth_meta WHERE key = 'wal_trigger_version'").toArray()[0];
    if (Number(tv?.value ?? 0) < WAL_TRIGGER_VERSION) {
      storage.transactionSync(() => {
        for (const table of this.schema?.tables.values() ?? []) {
          for (const statement of walTriggerStatements(table)) sql.exec(statement);
        }
        sql.exec(
          "INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('wal_trigger_version', ?)",
          String(WAL_TRIGGER_VERSION),
        );
      });
    }
  }

  private createTables(): void {
    for (const ddl of [...META_DDL, ...WAL_DDL, ...COLD_DDL]) this.sql.exec(ddl);
  }

  init(projectId: string, keys: KeyRecord[]): void {
    if (this.projectId !== null && this.projectId !== projectId) {
      throw new Error(`DO already belongs to project ${this.projectId}`);
    }
    this.createTables();
    this.sql.exec(
      "INSERT OR IGNORE INTO _hearth_meta (key, value) VALUES ('wal_trigger_version', ?)",
      String(WAL_TRIGGER_VERSION),
    );
    this.storage.transactionSync(() => {
      this.sql.exec("INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('project_id', ?)", projectId);
      for (const k of keys) {
        this.sql.exec(
          "INSERT OR REPLACE INTO _hearth_keys (id, role, revoked) VALUES (?, ?, 0)",
          k.id,
          k.role,
        );
      }
    });
    this.projectId = projectId;
    for (const k of keys) this.keys.set(k.id, k);
  }

  hasKey(id: string): boolean {
    return this.keys.has(id);
  }

  revokeKey(id: string): void {
    this.sql.exec("UPDATE _hearth_keys SET revoked = 1 WHERE id = ?", id);
    this.keys.delete(id);
  }

  requireSchema(): SchemaIndex {
    if (!this.schema) {
      throw new HearthError("HEARTH_SCHEMA_MISSING", "This project has no schema yet", {
        hint: "PUT the schema JSON to {url}/schema with the service key first.",
      });
    }
    return this.schema;
  }

  /** Runs a migration; SQLite refusing it because of existing rows is the client's 409. */
  private applyInTransaction(fn: () => void): void {
    try {
      this.storage.transactionSync(fn);
    } catch (err) {
      if (err instanceof HearthError || !(err instanceof Error)) throw err;
      const reason = err.message.replace(/: SQLITE_[A-Z_]+$/, "");
      if (/constraint failed|datatype mismatch|cannot store/i.test(reason)) {
        throw new HearthError(
          "HEARTH_SCHEMA_CONFLICT",
          "The migration cannot be applied to the rows already stored",
          {
            details: reason,
            hint: "Fix or delete the rows that conflict (duplicates for unique, nulls for notNull, values of another type), then retry.",
          },
        );
      }
      throw err;
    }
  }

  /** Validates, plans and applies a schema in one transaction; returns what changed. */
  applySchema(
    input: unknown,
    version?: number,
  ): { schema: ProjectSchema; version: number; applied: string[] } {
    const next = parseProjectSchema(input);
    const current = this.schema?.schema ?? null;
    const plan = planMigration(current, next);
    const { migrations: _steps, ...stored } = next;
    const index = new SchemaIndex(stored);
    const changed = plan.statements.length > 0 || JSON.stringify(current) !== JSON.stringify(stored);
    if (changed) {
      this.applyInTransaction(() => {
        // Triggers name every column: drop them first so DROP COLUMN and table rebuilds can run.
        if (this.schema) {
          for (const table of this.schema.tables.values()) {
            for (const statement of dropWalTriggerStatements(table.name)) this.sql.exec(statement);
          }
        }
        for (const statement of plan.statements) this.sql.exec(statement);
        for (const table of index.tables.values()) {
          for (const statement of walTriggerStatements(table)) this.sql.exec(statement);
        }
        this.sql.exec(
          "INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('schema', ?)",
          JSON.stringify(stored),
        );
        this.sql.exec(
          "INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('schema_version', ?)",
          String(version ?? this.schemaVersion + 1),
        );
      });
      // A wake restores the frozen project's version instead of counting from 1.
      this.schemaVersion = version ?? this.schemaVersion + 1;
      this.schema = index;
    }
    return { schema: stored, version: this.schemaVersion, applied: plan.summary };
  }
}
