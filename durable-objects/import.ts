/**
 * `POST {url}/import`: loads a zip made by `{url}/export` (Parquet or Arrow table files)
 * into an empty project: no schema yet, or one whose tables hold no rows. The gateway has
 * staged the zip in R2 (import-staging.ts); it is read with ranged gets (import-zip.ts).
 *
 * All or nothing: the zip is checked first (members, schema.json, table names), then ONE
 * synchronous transaction applies schema.json through the same path as `PUT /schema`
 * (ProjectState.applySchema) and loads every table — parents before children, foreign keys
 * checked once all are loaded — through `insertBatch` after `beginWalTx`, so the WAL
 * records every row. Any failure rolls all of it back. The table files are decoded
 * synchronously inside that transaction (an await would end it), one row group at a time,
 * so they are read from R2 before it: memory holds the inflated table files together (at
 * most HEARTH_MAX_BODY_BYTES, else 413) and one batch of rows.
 * Stored files (`blobs/`, `storage.json`) are checked and their bytes streamed to R2 before
 * that transaction, which then writes their rows; a failure deletes the bytes
 * (import-files.ts). Files have no size limit but the project's storage quota.
 */
import { arrowInfo, readArrow } from "../shared/columnar/arrow.ts";
import { parquetInfo, readParquet } from "../shared/columnar/parquet.ts";
import { SEQUENCE_KEY, toWire } from "../shared/columnar/wire.ts";
import { HearthError } from "../shared/errors.ts";
import { parseProjectSchema, splitReference } from "../shared/schema.ts";
import { hasSequence } from "./export.ts";
import {
  assertNoFiles,
  commitFiles,
  discardFiles,
  type FilesHost,
  planFiles,
  STORAGE_MEMBER,
  stageFiles,
} from "./import-files.ts";
import { endStaging, touchStaging } from "./import-staging.ts";
import {
  extract,
  invalid,
  listMembers,
  openZip,
  problemOf,
  r2Reader,
  type TableMember,
  type ZipArchive,
} from "./import-zip.ts";
import { quoteIdent, topoOrder } from "./migrate-ddl.ts";
import type { ProjectState } from "./project-state.ts";
import { SchemaIndex, type TableInfo } from "./schema-index.ts";
import { beginWalTx } from "./wal.ts";
import { insertBatch } from "./write.ts";

export interface ImportContext {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  state: ProjectState;
  /** Rebuilds the in-memory ProjectState from SQLite after a rolled-back import. */
  reloadState(): void;
  /** the table files of a zip, inflated, take at most this together (they are held in memory) */
  maxBodyBytes: number;
  /** where stored files go (blobs/ and storage.json; import-files.ts) */
  files: Omit<FilesHost, "sql" | "storage">;
}

/** 409 unless every table of the current schema is empty. */
export function assertEmpty(sql: SqlStorage, schema: SchemaIndex | null): void {
  for (const name of schema?.tables.keys() ?? []) {
    if (sql.exec(`SELECT 1 FROM ${quoteIdent(name)} LIMIT 1`).toArray().length > 0) {
      throw new HearthError("HEARTH_IMPORT_NOT_EMPTY", "Import needs an empty project", {
        details: `Table "${name}" holds rows.`,
        hint: "Import into a new project, or delete every row first.",
      });
    }
  }
}

/** Parents first, so that rows referencing others find them; cycles are checked at the end. */
function loadOrder(schema: SchemaIndex): string[] {
  const parents = (name: string) => {
    const out = new Set<string>();
    for (const c of schema.tables.get(name)?.columns.values() ?? []) {
      if (c.def.references) out.add(splitReference(c.def.references).table);
    }
    return out;
  };
  const topo = topoOrder([...schema.tables.keys()], parents);
  return [...topo.order, ...topo.cyclic];
}

/** JSON bytes per statement of insertBatch: well under SQLite's ~2 MB limit on one value. */
const STATEMENT_BYTES = 1024 * 1024;

/** An upper bound of a row's size as JSON text (3 bytes per UTF-16 unit, bytes as hex). */
function rowBytes(row: unknown[]): number {
  let n = 2;
  for (const v of row) {
    if (typeof v === "string") n += v.length * 3 + 3;
    else if (v instanceof Uint8Array) n += v.byteLength * 2 + 3;
    else if (v !== null && typeof v === "object") n += JSON.stringify(v).length * 3;
    else n += 24;
  }
  return n;
}

/** Loads one table file; returns its row count. Throws HEARTH_IMPORT_INVALID naming the member. */
function loadTable(sql: SqlStorage, table: TableInfo, member: TableMember, bytes: Uint8Array): number {
  let loaded = 0;
  try {
    const info = member.format === "parquet" ? parquetInfo(bytes) : arrowInfo(bytes);
    const unknown = info.columns.filter((c) => !table.columns.has(c));
    if (unknown.length > 0) {
      throw invalid(
        `${member.name}: column "${unknown[0]}" is not in table "${table.name}" of schema.json`,
        null,
        `Columns of ${table.name}: ${[...table.columns.keys()].join(", ")}`,
      );
    }
    const types = info.columns.map((c) => table.columns.get(c)!.type);
    const insertSome = (rows: unknown[][]) => {
      try {
        insertBatch(
          sql,
          table,
          { columns: info.columns, rows, single: false },
          { access: { kind: "all" }, missingDefault: false, returnKeys: false },
        );
      } catch (err) {
        const p = problemOf(err);
        const where = `rows ${loaded + 1}-${loaded + rows.length}`;
        throw invalid(`${member.name}: ${p.message}`, p.details ? `${p.details} (${where})` : where);
      }
      loaded += rows.length;
    };
    // insertBatch binds up to 2,000 rows as one JSON parameter, and SQLite refuses a value
    // over ~2 MB (SQLITE_TOOBIG): wide rows go in smaller batches.
    const insert = (rows: unknown[][]) => {
      let from = 0;
      let bytes = 0;
      for (let i = 0; i < rows.length; i++) {
        const size = rowBytes(rows[i]!);
        if (i > from && bytes + size > STATEMENT_BYTES) {
          insertSome(rows.slice(from, i));
          from = i;
          bytes = 0;
        }
        bytes += size;
      }
      if (from < rows.length) insertSome(from === 0 ? rows : rows.slice(from));
    };
    if (member.format === "parquet") {
      readParquet(bytes, ({ data, rows: n }) => {
        const rows = new Array<unknown[]>(n);
        for (let i = 0; i < n; i++) rows[i] = data.map((col, j) => toWire(types[j]!, col[i]));
        insert(rows);
      });
    } else {
      readArrow(bytes, ({ columns, rows }) => {
        if (columns.join("\0") !== info.columns.join("\0"))
          throw new Error("record batches disagree on columns");
        for (const row of rows) for (let j = 0; j < row.length; j++) row[j] = toWire(types[j]!, row[j]);
        insert(rows);
      });
    }
    const seq = Number(info.metadata[SEQUENCE_KEY]);
    if (hasSequence(table) && Number.isSafeInteger(seq)) restoreSequence(sql, table.name, seq);
  } catch (err) {
    if (err instanceof HearthError && err.code === "HEARTH_IMPORT_INVALID") throw err;
    const p = problemOf(err);
    throw invalid(
      `${member.name}: not a readable ${member.format === "parquet" ? "Parquet" : "Arrow IPC"} file`,
      `${p.message}${p.details ? `; ${p.details}` : ""}`,
    );
  }
  return loaded;
}

/**
 * Deferred foreign keys are checked here, inside the transaction: a violation left for the
 * commit does not just fail it, workerd resets the whole Durable Object.
 */
function checkForeignKeys(sql: SqlStorage, schema: SchemaIndex, members: Map<string, TableMember>): void {
  for (const table of schema.tables.values()) {
    if (![...table.columns.values()].some((c) => c.def.references)) continue;
    const bad = sql.exec(`PRAGMA foreign_key_check(${quoteIdent(table.name)})`).toArray()[0];
    if (bad) {
      throw invalid(
        `${members.get(table.name)?.name ?? table.name}: a row references a row of "${String(bad.parent)}" that is not in the zip`,
        `Foreign keys are checked once every table is loaded (rowid ${String(bad.rowid)}).`,
      );
    }
  }
}

/** AUTOINCREMENT resumes after the exported high-water mark, not after the largest id loaded. */
function restoreSequence(sql: SqlStorage, table: string, seq: number): void {
  sql.exec("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", seq, table);
  sql.exec(
    "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
    table,
    seq,
    table,
  );
}

export interface ImportResult {
  schemaVersion: number;
  /** rows loaded per table */
  tables: Record<string, number>;
  rows: number;
  /** stored files restored (when the zip holds any) */
  files?: { buckets: number; objects: number; bytes: number };
}

/** The staged zip of this import (import-staging.ts), imported; the staging object goes, done or failed. */
export async function importStaged(ctx: ImportContext, version: string): Promise<ImportResult> {
  const { key } = touchStaging(ctx.sql, version);
  try {
    assertEmpty(ctx.sql, ctx.state.schema);
    const src = await r2Reader(ctx.files.r2, key);
    if (!src) throw invalid("The body is not a zip archive", "The staged upload is missing.");
    return await importProject(ctx, await openZip(src));
  } finally {
    await endStaging(ctx.sql, ctx.files.r2, version).catch((e) =>
      console.error("deleting a staged import failed (the alarm's sweep retries)", e),
    );
  }
}

/** 413 when the table files, inflated, would not fit the memory they are loaded from together. */
function checkTableBytes(zip: ZipArchive, tables: Map<string, TableMember>, maxBytes: number): void {
  let total = 0;
  for (const t of tables.values()) total += zip.entries.get(t.name)?.size ?? 0;
  if (total > maxBytes) {
    throw new HearthError(
      "HEARTH_PAYLOAD_TOO_LARGE",
      `The zip's table files take ${total} bytes, more than the limit of ${maxBytes}`,
      {
        details:
          "Table files are loaded in one transaction, from memory; stored files (blobs/) have no such limit.",
        hint: "Raise HEARTH_MAX_BODY_BYTES, or import the rows in parts through POST {url}/rest/v1/<table>.",
      },
    );
  }
}

/** Table files are decoded inside one synchronous transaction: all of them are read first. */
async function readTables(
  zip: ZipArchive,
  tables: Map<string, TableMember>,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const [name, t] of tables) out.set(name, await extract(zip, t.name));
  return out;
}

export async function importProject(ctx: ImportContext, zip: ZipArchive): Promise<ImportResult> {
  const { tables, blobs, storage } = listMembers(zip);
  checkTableBytes(zip, tables, ctx.maxBodyBytes);
  let schemaInput: unknown;
  try {
    schemaInput = JSON.parse(
      new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(await extract(zip, "schema.json")),
    );
  } catch (err) {
    throw err instanceof HearthError ? err : invalid("schema.json: not valid JSON", problemOf(err).message);
  }
  let incoming: SchemaIndex;
  try {
    const { migrations: _steps, ...stored } = parseProjectSchema(schemaInput);
    incoming = new SchemaIndex(stored);
  } catch (err) {
    const p = problemOf(err);
    throw invalid(`schema.json: ${p.message}`, p.details);
  }
  for (const [name, member] of tables) {
    if (!incoming.tables.has(name)) throw invalid(`${member.name}: table "${name}" is not in schema.json`);
  }
  const tableBytes = await readTables(zip, tables);
  // Files: checked, then their bytes stored under reserved keys before the transaction, which
  // makes them visible; a failure discards them.
  const host: FilesHost = { ...ctx.files, sql: ctx.sql, storage: ctx.storage };
  const files = planFiles(host, blobs, storage ? await extract(zip, STORAGE_MEMBER) : null);
  if (files) {
    assertNoFiles(ctx.sql);
    await stageFiles(host, zip, files);
  }

  const counts: Record<string, number> = {};
  try {
    ctx.storage.transactionSync(() => {
      // Checked once all is loaded (checkForeignKeys): self-references and cycles load in any row order.
      ctx.sql.exec("PRAGMA defer_foreign_keys = ON");
      // Again: a write may have landed while the body was being read.
      assertEmpty(ctx.sql, ctx.state.schema);
      const current = ctx.state.schema;
      try {
        // The current tables are empty: drop them, so the schema becomes exactly schema.json.
        if (current && JSON.stringify(current.schema) !== JSON.stringify(incoming.schema)) {
          ctx.state.applySchema({
            tables: {},
            migrations: [...current.tables.keys()].map((table) => ({ op: "dropTable", table })),
          });
        }
        ctx.state.applySchema(schemaInput);
      } catch (err) {
        const p = problemOf(err);
        throw invalid(`schema.json: ${p.message}`, p.details);
      }
      const schema = ctx.state.requireSchema();
      beginWalTx(ctx.sql);
      for (const name of loadOrder(schema)) {
        const member = tables.get(name);
        counts[name] = member ? loadTable(ctx.sql, schema.table(name), member, tableBytes.get(name)!) : 0;
      }
      checkForeignKeys(ctx.sql, schema, tables);
      if (files) commitFiles(ctx.sql, files);
    });
  } catch (err) {
    ctx.reloadState();
    if (files) {
      await discardFiles(host, files).catch((e) =>
        console.error("discarding a failed import's files failed (the alarm's sweep retries)", e),
      );
    }
    throw err;
  }
  const rows = Object.values(counts).reduce((a, b) => a + b, 0);
  const result: ImportResult = { schemaVersion: ctx.state.schemaVersion, tables: counts, rows };
  if (files)
    result.files = { buckets: files.buckets.length, objects: files.objects.length, bytes: files.bytes };
  return result;
}
