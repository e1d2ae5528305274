/**
 * File metadata across a freeze. A frozen project's DO storage is deleted; its buckets and
 * object rows are first written to `projects/<id>/storage/meta.json` and put back by the next
 * wake, then that file is deleted (so it can never bring back rows a later change removed).
 * Restored rows are not changes: the WAL triggers are muted while they go in.
 * The file is one JSON document: fine for tens of thousands of objects, not for millions.
 */
import { BUCKET_COLS, OBJECT_COLS, STORAGE_DDL } from "./tables.ts";

export interface FilesArchive {
  version: 1;
  buckets: Record<string, unknown>[];
  objects: Record<string, unknown>[];
  quotaBytes: number | null;
}

/** a bound value stays well under DO SQL's ~2 MB limit */
const BATCH_JSON_CHARS = 1024 * 1024;

export function filesArchiveKey(projectId: string): string {
  return `projects/${projectId}/storage/meta.json`;
}

function hasTables(sql: SqlStorage): boolean {
  const r = sql
    .exec("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_hearth_storage_objects'")
    .one();
  return Number(r.n) > 0;
}

/** The rows to keep, or null when there is nothing (no bucket, no object, no quota set). */
export function collectArchive(sql: SqlStorage): FilesArchive | null {
  if (!hasTables(sql)) return null;
  const buckets = sql.exec("SELECT * FROM _hearth_storage_buckets ORDER BY id").toArray();
  const objects = sql.exec("SELECT * FROM _hearth_storage_objects ORDER BY bucket, name").toArray();
  const q = sql.exec("SELECT quota_bytes AS q FROM _hearth_storage_settings WHERE id = 1").toArray()[0];
  const quotaBytes = q?.q === null || q?.q === undefined ? null : Number(q.q);
  if (buckets.length === 0 && objects.length === 0 && quotaBytes === null) return null;
  return { version: 1, buckets, objects, quotaBytes };
}

/** Writes the archive (or deletes a stale one when there is nothing to keep). */
export async function saveFilesArchive(r2: R2Bucket, projectId: string, sql: SqlStorage): Promise<void> {
  const archive = collectArchive(sql);
  if (archive) await r2.put(filesArchiveKey(projectId), JSON.stringify(archive));
  else await r2.delete(filesArchiveKey(projectId));
}

export async function loadFilesArchive(r2: R2Bucket, projectId: string): Promise<FilesArchive | null> {
  const obj = await r2.get(filesArchiveKey(projectId));
  if (!obj) return null;
  const parsed = (await obj.json()) as FilesArchive;
  if (parsed?.version !== 1 || !Array.isArray(parsed.buckets) || !Array.isArray(parsed.objects)) {
    throw new Error(`${filesArchiveKey(projectId)} is not a files archive this version reads`);
  }
  return parsed;
}

function insertRows(sql: SqlStorage, table: string, cols: string[], rows: Record<string, unknown>[]): void {
  const select = cols.map((c) => `value ->> '${c}'`).join(", ");
  const stmt = `INSERT OR REPLACE INTO ${table} (${cols.join(", ")}) SELECT ${select} FROM json_each(?)`;
  let batch: Record<string, unknown>[] = [];
  let chars = 0;
  const flush = () => {
    if (batch.length === 0) return;
    sql.exec(stmt, JSON.stringify(batch));
    batch = [];
    chars = 0;
  };
  for (const row of rows) {
    batch.push(row);
    chars += JSON.stringify(row).length;
    if (chars >= BATCH_JSON_CHARS) flush();
  }
  flush();
}

/** Puts the archived rows back (call inside a transaction, after the WAL tables exist). */
export function restoreArchive(sql: SqlStorage, archive: FilesArchive): void {
  for (const ddl of STORAGE_DDL) sql.exec(ddl);
  sql.exec("UPDATE _hearth_state SET muted = 1 WHERE id = 1");
  insertRows(sql, "_hearth_storage_buckets", BUCKET_COLS, archive.buckets);
  insertRows(sql, "_hearth_storage_objects", OBJECT_COLS, archive.objects);
  if (archive.quotaBytes !== null) {
    sql.exec(
      "INSERT OR REPLACE INTO _hearth_storage_settings (id, quota_bytes) VALUES (1, ?)",
      archive.quotaBytes,
    );
  }
  sql.exec("UPDATE _hearth_state SET muted = 0 WHERE id = 1");
}
