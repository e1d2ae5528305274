/**
 * The zip of a `POST {url}/import`, staged in R2 by the gateway under
 * `projects/<id>/imports/<uuid>.zip` before the import reads it (workers/project/import.ts).
 *
 * The staging object is booked as an upload row of the file store (`_hearth_storage_uploads`,
 * mode `import`, reserving no quota) from before its first byte: an import that dies half-way
 * (the gateway mid-stream, the object mid-import) leaves a row that the alarm's sweep
 * (FileStore.sweep, after HEARTH_STORAGE_UPLOAD_TTL_SECONDS) deletes with its bytes and
 * multipart parts; while it exists the project does not freeze. Done or failed, an import
 * deletes it at once (`endStaging`).
 */
import { HearthError } from "../shared/errors.ts";
import { STORAGE_DDL } from "./storage/tables.ts";

/** The gateway's calls of one import (ProjectDO.importStep). */
export type ImportStep =
  | { step: "begin" }
  | { step: "multipart"; version: string; uploadId: string }
  | { step: "abort"; version: string }
  | { step: "run"; version: string };

export interface Staging {
  version: string;
  key: string;
}

export function stagingKey(projectId: string, id: string): string {
  return `projects/${projectId}/imports/${id}.zip`;
}

/** Books a fresh staging key (committed before the gateway stores any byte). */
export function beginStaging(sql: SqlStorage, projectId: string): Staging {
  for (const ddl of STORAGE_DDL) sql.exec(ddl);
  const version = crypto.randomUUID().replaceAll("-", "");
  const key = stagingKey(projectId, version);
  sql.exec(
    `INSERT INTO _hearth_storage_uploads (version, bucket, name, key, mode, reserved, max_bytes, multipart_id, content_type, cache_control, metadata, owner, created_at)
     VALUES (?, '', ?, ?, 'import', 0, 0, NULL, 'application/zip', 'no-store', NULL, NULL, ?)`,
    version,
    key.slice(key.indexOf("/imports/") + 1),
    key,
    Date.now(),
  );
  return { version, key };
}

/** The staging of this import; 400 when there is none (never begun, or already ended). */
export function readStaging(sql: SqlStorage, version: string): Staging {
  const row = sql
    .exec("SELECT key FROM _hearth_storage_uploads WHERE version = ? AND mode = 'import'", version)
    .toArray()[0];
  if (!row) throw new HearthError("HEARTH_BAD_REQUEST", "No staged import with this id");
  return { version, key: String(row.key) };
}

/**
 * The import starts reading its staged zip: its age starts again, so that the sweep (which
 * drops uploads older than the TTL) does not take it from under an import that follows a
 * long upload.
 */
export function touchStaging(sql: SqlStorage, version: string): Staging {
  const staged = readStaging(sql, version);
  sql.exec("UPDATE _hearth_storage_uploads SET created_at = ? WHERE version = ?", Date.now(), version);
  return staged;
}

/** The gateway's multipart upload of the staged zip, so that a sweep can abort its parts. */
export function markStagingMultipart(sql: SqlStorage, version: string, uploadId: string): void {
  readStaging(sql, version);
  sql.exec("UPDATE _hearth_storage_uploads SET multipart_id = ? WHERE version = ?", uploadId, version);
}

/** Deletes the staged zip (and any multipart parts) and its row. */
export async function endStaging(sql: SqlStorage, r2: R2Bucket, version: string): Promise<void> {
  const row = sql
    .exec(
      "SELECT key, multipart_id FROM _hearth_storage_uploads WHERE version = ? AND mode = 'import'",
      version,
    )
    .toArray()[0];
  if (!row) return;
  if (row.multipart_id) {
    try {
      await r2.resumeMultipartUpload(String(row.key), String(row.multipart_id)).abort();
    } catch {
      // already completed (the key delete covers it) or aborted
    }
  }
  await r2.delete(String(row.key));
  sql.exec("DELETE FROM _hearth_storage_uploads WHERE version = ?", version);
}
