/**
 * A fork's files (POST /v1/projects/:id/fork): the parent's Durable Object copies the bytes
 * of every object it holds now to fresh keys under the fork's prefix, and hands the fork its
 * bucket and object rows (keys rewritten) to restore like a freeze archive.
 *
 * Copied, not shared: segments are shared by reference because they never change once
 * written, but an object's key is deleted by its own project as soon as the object is
 * replaced or removed. Sharing would need a reference count across projects on every such
 * delete, in both directions; with copies, deleting or changing either project can never
 * reach the other's files. R2 has no server-side copy in Workers: each object is read and
 * its body streamed into the put (known length, so nothing is buffered), a few at a time.
 *
 * Not a snapshot of one instant: each object is copied as it is when its turn comes (fork
 * tables are the state at the fork's flush, files a moment later). An object replaced while
 * the copy runs is read again; one removed meanwhile is left out.
 */
import { collectArchive, type FilesArchive } from "./storage/archive.ts";
import { blobKey } from "./storage/names.ts";
import { readObject } from "./storage/objects.ts";
import type { ObjectRow } from "./storage/types.ts";

/** objects copied at once */
const COPY_CONCURRENCY = 4;
/** reads of an object whose key went away under us (replaced again and again) before giving up */
const COPY_ATTEMPTS = 5;

function newVersion(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/**
 * Copies the bytes of every object to `forkId`'s prefix; returns the rows for the fork, or
 * null when the project has no bucket. On failure the keys copied so far are deleted.
 */
export async function copyFilesForFork(
  sql: SqlStorage,
  r2: R2Bucket,
  forkId: string,
): Promise<FilesArchive | null> {
  const archive = collectArchive(sql);
  if (!archive) return null;
  const pending = archive.objects as unknown as ObjectRow[];
  const copied: ObjectRow[] = [];
  const written: string[] = [];

  const copyOne = async (listed: ObjectRow): Promise<void> => {
    let row: ObjectRow | null = listed;
    for (let attempt = 0; attempt < COPY_ATTEMPTS && row; attempt++) {
      const source = await r2.get(row.key);
      if (source) {
        const version = newVersion();
        const key = blobKey(forkId, row.bucket, row.name, version);
        written.push(key);
        const put = await r2.put(key, source.body, { httpMetadata: source.httpMetadata ?? {} });
        copied.push({ ...row, version, key, checksum: put.etag });
        return;
      }
      // Replaced or removed since it was listed: its current row, if any.
      row = readObject(sql, listed.bucket, listed.name);
    }
    if (row) throw new Error(`${listed.bucket}/${listed.name} kept changing while the fork copied it`);
  };

  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (failure === null && next < pending.length) {
      try {
        await copyOne(pending[next++]!);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  // Every worker stops before the cleanup, so no copy lands after it.
  await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, pending.length) }, worker));
  if (failure !== null) {
    for (let i = 0; i < written.length; i += 1000) {
      await r2.delete(written.slice(i, i + 1000)).catch(() => {});
    }
    throw failure;
  }
  copied.sort((a, b) => (a.bucket === b.bucket ? cmp(a.name, b.name) : cmp(a.bucket, b.bucket)));
  return { ...archive, objects: copied as unknown as Record<string, unknown>[] };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
