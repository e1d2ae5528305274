/**
 * FileStore: the file metadata of one project, inside its Durable Object.
 * Invariants:
 * - Who writes: only this object; each change is one `transactionSync` that bumps the WAL
 *   transaction, so object and bucket changes have LSNs like row changes.
 * - What is visible: an object row. Bytes in R2 without a row (an upload that never
 *   committed, a replaced or removed version) are invisible and listed in
 *   `_hearth_storage_uploads` / `_hearth_storage_garbage` until `sweep` deletes them.
 * - Where a change becomes durable: its transaction's commit (the output gate holds the
 *   RPC answer until then). R2 deletions happen after the commit, never before.
 */

import { bucketAccess, ownerOf } from "./access.ts";
import {
  type BucketRow,
  bucketWire,
  createBucket,
  deleteBucket,
  emptyBucketRows,
  listBuckets,
  updateBucket,
  visibleBucket,
} from "./buckets.ts";
import { failure, fault, StorageFault } from "./errors.ts";
import { listFolder } from "./list.ts";
import { checkPrefix } from "./names.ts";
import {
  authorize,
  beginCopy,
  beginUpload,
  commitUpload,
  type Limits,
  move,
  objectInfo,
  readableObject,
  readUpload,
  removedWire,
  removeObjects,
  requireBucket,
  usedBytes,
} from "./objects.ts";
import { STORAGE_DDL } from "./tables.ts";
import type { ObjectRow, StorageCaller, StorageOp, StorageResult } from "./types.ts";

const WRITES = new Set<StorageOp["op"]>([
  "createBucket",
  "updateBucket",
  "emptyBucket",
  "deleteBucket",
  "commitUpload",
  "move",
  "remove",
]);

export interface FileStoreHost {
  sql: SqlStorage;
  storage: DurableObjectStorage;
  projectId(): string;
  bucket(): R2Bucket;
  defaultQuotaBytes: number;
}

export class FileStore {
  private ready = false;

  constructor(private readonly host: FileStoreHost) {}

  /** Uploads in flight or R2 keys not yet deleted: the project does not freeze until they are done. */
  holdsPending(): boolean {
    if (!this.exists()) return false;
    const r = this.host.sql
      .exec(
        "SELECT (SELECT count(*) FROM _hearth_storage_uploads) + (SELECT count(*) FROM _hearth_storage_garbage) AS n",
      )
      .one();
    return Number(r.n) > 0;
  }

  private exists(): boolean {
    if (this.ready) return true;
    const r = this.host.sql
      .exec(
        "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_hearth_storage_objects'",
      )
      .one();
    this.ready = Number(r.n) > 0;
    return this.ready;
  }

  private ensure(): void {
    if (this.exists()) return;
    for (const ddl of STORAGE_DDL) this.host.sql.exec(ddl);
    this.ready = true;
  }

  /** After a restore or `deleteAll` the tables may be gone: look again on next use. */
  reset(): void {
    this.ready = false;
  }

  private limits(): Limits {
    const r = this.host.sql
      .exec("SELECT quota_bytes AS q FROM _hearth_storage_settings WHERE id = 1")
      .toArray()[0];
    const q = r?.q;
    return { quotaBytes: q === null || q === undefined ? this.host.defaultQuotaBytes : Number(q) };
  }

  /** One storage operation; failures come back as values. `wrote`: a WAL-logged change committed. */
  async run(caller: StorageCaller, op: StorageOp): Promise<{ result: StorageResult; wrote: boolean }> {
    try {
      this.ensure();
      const value = await this.dispatch(caller, op);
      return { result: { ok: true, value }, wrote: WRITES.has(op.op) };
    } catch (err) {
      if (err instanceof StorageFault) return { result: failure(err.code, err.message), wrote: false };
      throw err;
    }
  }

  private async dispatch(caller: StorageCaller, op: StorageOp): Promise<unknown> {
    const { sql, storage } = this.host;
    switch (op.op) {
      case "listBuckets":
        return listBuckets(sql, caller, op);
      case "getBucket":
        return bucketWire(visibleBucket(sql, caller, op.id));
      case "createBucket":
        return createBucket(sql, storage, caller, op.input, ownerOf(caller));
      case "updateBucket":
        return updateBucket(sql, storage, caller, op.id, op.input);
      case "emptyBucket": {
        emptyBucketRows(sql, storage, caller, op.id);
        await this.collect();
        return { message: "Successfully emptied" };
      }
      case "deleteBucket":
        return deleteBucket(sql, storage, caller, op.id);
      case "beginUpload":
        return beginUpload(sql, caller, this.host.projectId(), this.limits(), op);
      case "markMultipart":
        sql.exec(
          "UPDATE _hearth_storage_uploads SET multipart_id = ? WHERE version = ?",
          op.multipartId,
          op.version,
        );
        return null;
      case "commitUpload": {
        const up = readUpload(sql, op.version);
        if (!up)
          throw fault(
            "HEARTH_STORAGE_UPLOAD_INCOMPLETE",
            "The upload expired before it completed; upload again",
          );
        try {
          const { row, replaced } = commitUpload(sql, storage, this.limits(), up, op.size, op.checksum);
          if (replaced) await this.collect();
          return { Id: row.id, Key: `${row.bucket}/${row.name}`, object: objectInfo(row) };
        } catch (err) {
          await this.abort(op.version);
          throw err;
        }
      }
      case "abortUpload":
        await this.abort(op.version);
        return null;
      case "read":
        return readableObject(sql, caller, op.bucket, op.name);
      case "authorize":
        return authorize(sql, caller, op.bucket, op.name, op.write);
      case "list": {
        const bucket = requireBucket(sql, op.bucket);
        const access = bucketAccess(caller, bucket, false);
        return listFolder(sql, bucket.id, access, { ...op, prefix: checkPrefix(op.prefix) });
      }
      case "move":
        return move(sql, storage, caller, op);
      case "beginCopy":
        return beginCopy(sql, caller, this.host.projectId(), this.limits(), op);
      case "remove": {
        const removed = removeObjects(sql, storage, caller, op.bucket, op.names);
        if (removed.length > 0) await this.collect();
        return removed.map(removedWire);
      }
      case "usage":
        return this.usage(caller);
      case "setQuota":
        this.requireService(caller);
        if (op.bytes !== null && (!Number.isSafeInteger(op.bytes) || op.bytes < 0)) {
          throw fault(
            "HEARTH_BAD_REQUEST",
            "quotaBytes must be a non-negative integer, or null for the default",
          );
        }
        sql.exec(
          "INSERT INTO _hearth_storage_settings (id, quota_bytes) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET quota_bytes = excluded.quota_bytes",
          op.bytes,
        );
        return this.usage(caller);
      case "sweep":
        this.requireService(caller);
        return this.sweep(op.olderThanMs);
    }
  }

  private requireService(caller: StorageCaller): void {
    if (caller.kind !== "principal" || caller.principal.role !== "service") {
      throw fault("HEARTH_FORBIDDEN", "This endpoint needs the project's service key");
    }
  }

  private usage(caller: StorageCaller): Record<string, unknown> {
    this.requireService(caller);
    const { sql } = this.host;
    const o = sql
      .exec("SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM _hearth_storage_objects")
      .one();
    const u = sql
      .exec("SELECT count(*) AS n, coalesce(sum(reserved), 0) AS b FROM _hearth_storage_uploads")
      .one();
    const g = sql.exec("SELECT count(*) AS n FROM _hearth_storage_garbage").one();
    return {
      objects: Number(o.n),
      storedBytes: Number(o.b),
      usedBytes: usedBytes(sql),
      quotaBytes: this.limits().quotaBytes,
      pendingUploads: Number(u.n),
      pendingBytes: Number(u.b),
      garbageKeys: Number(g.n),
    };
  }

  /** Drops an upload that will not commit: its bytes (or multipart parts) and its row. */
  private async abort(version: string): Promise<void> {
    const up = readUpload(this.host.sql, version);
    if (!up) return;
    const r2 = this.host.bucket();
    if (up.multipart_id) {
      try {
        await r2.resumeMultipartUpload(up.key, up.multipart_id).abort();
      } catch {
        // already completed or aborted: the key delete below covers a completed one
      }
    }
    await r2.delete(up.key);
    this.host.sql.exec("DELETE FROM _hearth_storage_uploads WHERE version = ?", version);
  }

  /** Deletes the R2 keys of replaced and removed versions, 1000 per call. */
  async collect(): Promise<number> {
    const { sql } = this.host;
    let n = 0;
    for (;;) {
      const keys = sql
        .exec("SELECT key FROM _hearth_storage_garbage ORDER BY key LIMIT 1000")
        .toArray()
        .map((r) => String(r.key));
      if (keys.length === 0) return n;
      await this.host.bucket().delete(keys);
      sql.exec(
        "DELETE FROM _hearth_storage_garbage WHERE key IN (SELECT value FROM json_each(?))",
        JSON.stringify(keys),
      );
      n += keys.length;
    }
  }

  /**
   * The alarm's cleanup: uploads older than `olderThanMs` that never committed (the gateway
   * died mid-stream) lose their bytes and rows; queued garbage is deleted.
   */
  async sweep(olderThanMs: number): Promise<{ abortedUploads: number; deletedKeys: number }> {
    if (!this.exists()) return { abortedUploads: 0, deletedKeys: 0 };
    const stale = this.host.sql
      .exec("SELECT version FROM _hearth_storage_uploads WHERE created_at <= ?", Date.now() - olderThanMs)
      .toArray()
      .map((r) => String(r.version));
    for (const v of stale) await this.abort(v);
    return { abortedUploads: stale.length, deletedKeys: await this.collect() };
  }

  /** Export: every bucket row. */
  buckets(): BucketRow[] {
    if (!this.exists()) return [];
    return this.host.sql
      .exec("SELECT * FROM _hearth_storage_buckets ORDER BY id")
      .toArray() as unknown as BucketRow[];
  }

  /** Export: every object row, a page at a time in (bucket, name) order. */
  *objects(pageSize = 500): Generator<ObjectRow[]> {
    if (!this.exists()) return;
    let after: [string, string] = ["", ""];
    for (;;) {
      const page = this.host.sql
        .exec(
          "SELECT * FROM _hearth_storage_objects WHERE (bucket, name) > (?, ?) ORDER BY bucket, name LIMIT ?",
          after[0],
          after[1],
          pageSize,
        )
        .toArray() as unknown as ObjectRow[];
      if (page.length === 0) return;
      yield page;
      const last = page[page.length - 1]!;
      after = [last.bucket, last.name];
    }
  }
}
