/**
 * What `wrangler dev` keeps on disk and in memory, read from outside the server: the Durable
 * Objects' SQLite files, the local R2 bucket (miniflare: a SQLite index `_mf_objects` mapping
 * each key to a blob file), the D1 catalog, and the RSS of the workerd processes.
 *
 * SQLite files are never opened in place: a reader would create `-wal`/`-shm` files next to
 * workerd's and take its locks. Each one is copied (with its `-wal`) to a temp dir and opened
 * there, which replays the WAL and gives the logical size (pages × page size), the figure
 * `ctx.storage.sql.databaseSize` reports and Cloudflare bills.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { processGroupMembers } from "../../scripts/server-process.mjs";

const v3 = (stateDir, ...parts) => path.join(stateDir, "v3", ...parts);
const fileBytes = (file) => (existsSync(file) ? statSync(file).size : 0);

/** Opens a copy of a SQLite database (and its WAL); `fn(db)` runs on it, then the copy is removed. */
export function withSqliteCopy(file, fn) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hearth-bench-sqlite-"));
  try {
    const copy = path.join(dir, "db.sqlite");
    copyFileSync(file, copy);
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
    const db = new Database(copy, { fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const logicalBytes = (db) =>
  db.pragma("page_count", { simple: true }) * db.pragma("page_size", { simple: true });

/** The one `<hash>.sqlite` of a miniflare namespace dir (its `metadata.sqlite` aside). */
function namespaceFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")
    .map((f) => path.join(dir, f));
}

/**
 * Every Durable Object database of a class: count, logical bytes (sum), bytes on disk
 * (`.sqlite` + `-wal` + `-shm`, sum), the smallest and largest logical size, and how many are
 * open (a `-wal` file exists: workerd checkpoints and removes it when the object is evicted).
 */
export function durableObjectStorage(stateDir, className = "hearth-ProjectDO") {
  const files = namespaceFiles(v3(stateDir, "do", className));
  let logical = 0;
  let onDisk = 0;
  let open = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (const f of files) {
    const bytes = withSqliteCopy(f, logicalBytes);
    logical += bytes;
    min = Math.min(min, bytes);
    max = Math.max(max, bytes);
    onDisk += fileBytes(f) + fileBytes(`${f}-wal`) + fileBytes(`${f}-shm`);
    if (existsSync(`${f}-wal`)) open++;
  }
  return { objects: files.length, logical, onDisk, open, min, max };
}

/** Tables and row counts of the first `limit` Durable Object databases (what one holds). */
export function durableObjectContents(
  stateDir,
  { limit = Number.POSITIVE_INFINITY, className = "hearth-ProjectDO" } = {},
) {
  return namespaceFiles(v3(stateDir, "do", className))
    .slice(0, limit)
    .map((f) =>
      withSqliteCopy(f, (db) => ({
        bytes: logicalBytes(db),
        tables: db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
          .all()
          .map(({ name }) => {
            const q = `"${String(name).replaceAll('"', '""')}"`;
            return { name, rows: db.prepare(`SELECT count(*) AS n FROM ${q}`).get().n };
          }),
      })),
    );
}

/** Logical bytes of the D1 database(s) (the catalog). */
export function d1Bytes(stateDir) {
  return namespaceFiles(v3(stateDir, "d1", "miniflare-D1DatabaseObject")).reduce(
    (s, f) => s + withSqliteCopy(f, logicalBytes),
    0,
  );
}

/**
 * The objects of the local R2 bucket whose key starts with `prefix`:
 * `[{ key, size, file }]`, `file` being the blob that holds its bytes.
 */
export function r2Objects(stateDir, prefix, bucket = "hearth-data") {
  const index = namespaceFiles(v3(stateDir, "r2", "miniflare-R2BucketObject"));
  if (index.length === 0) throw new Error(`no R2 index under ${v3(stateDir, "r2")}: was anything written?`);
  const out = [];
  for (const f of index) {
    const rows = withSqliteCopy(f, (db) =>
      db
        .prepare("SELECT key, blob_id, size FROM _mf_objects WHERE substr(key, 1, ?) = ? ORDER BY key")
        .all(prefix.length, prefix),
    );
    for (const r of rows) {
      if (!r.blob_id)
        throw new Error(`R2 object ${r.key} is a multipart upload: its parts are not read here`);
      const file = v3(stateDir, "r2", bucket, "blobs", r.blob_id);
      if (!existsSync(file)) throw new Error(`R2 object ${r.key}: blob ${file} is missing`);
      out.push({ key: r.key, size: r.size, file });
    }
  }
  return out;
}

/** An R2 object's bytes (as JSON when `json`), read from its blob. */
export function r2Read(stateDir, key, { json = false } = {}) {
  const [obj] = r2Objects(stateDir, key).filter((o) => o.key === key);
  if (!obj) throw new Error(`R2 object ${key} not found in the local bucket`);
  const bytes = readFileSync(obj.file);
  return json ? JSON.parse(bytes.toString("utf8")) : bytes;
}

/** RSS (bytes) of every workerd process in the server's process group, and their sum. */
export async function workerdRss(pgid) {
  const procs = [];
  for (const pid of await processGroupMembers(pgid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "workerd") continue;
      const kb = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1]);
      if (Number.isFinite(kb)) procs.push({ pid, rss: kb * 1024 });
    } catch {
      // exited meanwhile
    }
  }
  if (procs.length === 0) throw new Error(`no workerd process in process group ${pgid}`);
  return { procs, total: procs.reduce((s, p) => s + p.rss, 0) };
}

/** How many Durable Objects of a class have their database open (a `-wal` file exists). */
export function openDurableObjects(stateDir, className = "hearth-ProjectDO") {
  return namespaceFiles(v3(stateDir, "do", className)).filter((f) => existsSync(`${f}-wal`)).length;
}
