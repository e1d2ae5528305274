/**
 * The WAL tail across a freeze. A freeze empties the object's storage; before it does,
 * `saveArchive` writes what sync needs to go on as if nothing happened to one R2 object,
 * `projects/<id>/wal/tail.json.gz`: the retained WAL entries (raw, as stored), the
 * exactly-once ledger, the LSN high-water mark and the last transaction id. A wake reads
 * it back (`loadArchive`) and `restoreArchive` puts it in place, so a client whose cursor
 * was within the retention before the freeze catches up after it, a mutation pushed again
 * is still answered "duplicate", and LSNs never repeat.
 * The object is overwritten by each freeze (one per project); a freeze whose put fails
 * does not happen. It is read back through zod, like every R2 object.
 */
import { z } from "zod";
import { withRetry } from "../cold/manifest.ts";
import { insertLedgerRows, ledgerRows } from "./ledger.ts";

export function archiveKey(projectId: string): string {
  return `projects/${projectId}/wal/tail.json.gz`;
}

const ArchiveSchema = z.object({
  format: z.literal(1),
  projectId: z.string(),
  /** the WAL's LSN high-water mark at the freeze */
  lastLsn: z.number().int().min(0),
  /** the highest transaction id (`_hearth_state.tx`) */
  tx: z.number().int().min(0),
  /** [lsn, tx, ts, tbl, op, pk, new, old], in LSN order */
  wal: z.array(z.array(z.union([z.string(), z.number(), z.null()])).length(8)),
  /** ledger rows (ledger.ts ledgerRows) */
  mutations: z.array(z.array(z.union([z.string(), z.number(), z.null()])).length(7)),
});

export type WalArchive = z.infer<typeof ArchiveSchema>;

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** Writes the tail (freeze, before `deleteAll`); throws HEARTH_STORAGE_UNAVAILABLE on failure. */
export async function saveArchive(bucket: R2Bucket, sql: SqlStorage, projectId: string): Promise<void> {
  const seq = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = '_hearth_wal'").toArray()[0];
  const state = sql.exec("SELECT tx FROM _hearth_state WHERE id = 1").toArray()[0];
  const archive: WalArchive = {
    format: 1,
    projectId,
    lastLsn: seq ? Number(seq.seq) : 0,
    tx: state ? Number(state.tx) : 0,
    wal: [
      ...sql.exec("SELECT lsn, tx, ts, tbl, op, pk, new, old FROM _hearth_wal ORDER BY lsn").raw(),
    ] as WalArchive["wal"],
    mutations: ledgerRows(sql) as WalArchive["mutations"],
  };
  const body = await gzip(JSON.stringify(archive));
  const key = archiveKey(projectId);
  await withRetry(`writing ${key}`, () =>
    bucket.put(key, body, { httpMetadata: { contentType: "application/json", contentEncoding: "gzip" } }),
  );
}

/** The tail saved by the last freeze, or null (never frozen, or a fork). */
export async function loadArchive(bucket: R2Bucket, projectId: string): Promise<WalArchive | null> {
  const key = archiveKey(projectId);
  const obj = await withRetry(`reading ${key}`, () => bucket.get(key));
  if (!obj) return null;
  const text = await new Response(obj.body.pipeThrough(new DecompressionStream("gzip"))).text();
  const parsed = ArchiveSchema.safeParse(JSON.parse(text));
  if (!parsed.success || parsed.data.projectId !== projectId) {
    console.error(`ignoring a malformed WAL tail at ${key}`);
    return null;
  }
  return parsed.data;
}

/** JSON arrays of rows, each under ~1 MiB (a DO SQL bound value must stay under ~2 MB). */
function* chunks(rows: unknown[][]): Generator<string> {
  let parts: string[] = [];
  let size = 0;
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (parts.length > 0 && size + json.length > 1024 * 1024) {
      yield `[${parts.join(",")}]`;
      parts = [];
      size = 0;
    }
    parts.push(json);
    size += json.length + 1;
  }
  if (parts.length > 0) yield `[${parts.join(",")}]`;
}

/**
 * Puts an archive back into a freshly adopted object (inside the caller's transaction,
 * after `_hearth_wal` and `_hearth_state` exist). Explicit LSNs keep their values.
 */
export function restoreArchive(sql: SqlStorage, archive: WalArchive): void {
  for (const json of chunks(archive.wal)) {
    sql.exec(
      `INSERT OR IGNORE INTO _hearth_wal (lsn, tx, ts, tbl, op, pk, new, old)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
       FROM json_each(?)`,
      json,
    );
  }
  for (const json of chunks(archive.mutations)) insertLedgerRows(sql, json);
  // New transactions must not reuse an archived entry's id (sync tells its own writes by it).
  sql.exec("UPDATE _hearth_state SET tx = max(tx, ?) WHERE id = 1", archive.tx);
}
