/**
 * ProjectDO: one per project (`idFromName(projectId)`), the single writer of its data.
 * Invariants:
 * - Who writes: only this object, one request at a time per transaction (`transactionSync`).
 * - What survives eviction: everything in its SQLite (tables, WAL, schema, key ids); the
 *   in-memory ProjectState is rebuilt from it at start-up.
 * - Where a write becomes durable: when its transaction commits; the output gate holds the
 *   response until then, so an acknowledged write is never lost.
 */
import { DurableObject } from "cloudflare:workers";
import { errorResponse, HearthError, REQUEST_ID_HEADER } from "../shared/errors.ts";
import { PRINCIPAL_HEADER, type Principal, TOKEN_HEADER } from "../shared/principal.ts";
import { drain, readJsonBody } from "../shared/rest/bodies.ts";
import type { TableDef } from "../shared/schema.ts";
import { forgetMemberships } from "../workers/auth/principal.ts";
import { guardCatalog } from "../workers/catalog/guard.ts";
import type { Env } from "../workers/env.ts";
import { forgetGrant } from "../workers/oauth/grant-check.ts";
import {
  ClientLimiter,
  ClientRateLimitedError,
  clientOf,
  readClientRateLimit,
  storageClientOf,
} from "./client-limit.ts";
import { prepareWrite } from "./cold/cold-read.ts";
import { ColdStore } from "./cold/cold-store.ts";
import { collectGarbage, compact } from "./cold/compact.ts";
import { devPauseHooks } from "./cold/dev-pause.ts";
import {
  type FlushHooks,
  type FlushResult,
  flush,
  flushPending,
  hotRowCount,
  lastLsn,
  needsFlush,
  recoverFlush,
} from "./cold/flush.ts";
import { type Manifest, readManifest } from "./cold/manifest.ts";
import { exportFormat, exportProject, requireExportAccess } from "./export.ts";
import { type ForkStep, forkFailure, putForkManifest } from "./fork.ts";
import { copyFilesForFork } from "./fork-files.ts";
import { assertEmpty, type ImportContext, importStaged } from "./import.ts";
import { beginStaging, endStaging, type ImportStep, markStagingMultipart } from "./import-staging.ts";
import { type MergeResult, mergeTables } from "./merge-tables.ts";
import { type KeyRecord, ProjectState } from "./project-state.ts";
import { Authenticator } from "./realtime/auth.ts";
import { broadcastHttp } from "./realtime/broadcast-http.ts";
import { ChangeFeed } from "./realtime/feed.ts";
import { DEFAULT_REALTIME_LIMITS, RealtimeHub } from "./realtime/hub.ts";
import type { SocketHub } from "./realtime/socket-hub.ts";
import {
  type Attachment,
  attachmentOf,
  closeSafe,
  type SocketKind,
  SocketStore,
} from "./realtime/sockets.ts";
import { RateLimitedError, RequestMeter, readRateLimit } from "./request-meter.ts";
import { handleRest } from "./rest-handler.ts";
import { JSON_TYPE, respond } from "./rest-response.ts";
import {
  type FilesArchive,
  filesArchiveKey,
  loadFilesArchive,
  restoreArchive as restoreFilesArchive,
  saveFilesArchive,
} from "./storage/archive.ts";
import { failure as storageFailure } from "./storage/errors.ts";
import { FileStore } from "./storage/store.ts";
import type { StorageCaller, StorageOp, StorageResult } from "./storage/types.ts";
import { loadArchive, restoreArchive, saveArchive, type WalArchive } from "./sync/archive.ts";
import { SyncHub } from "./sync/hub.ts";
import { DEFAULT_WAL_RETENTION, trimIdleWal, type WalRetention } from "./sync/retention.ts";
import { walRange } from "./wal.ts";

const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_SCHEMA_BYTES = 1024 * 1024;

function numberVar(v: string | undefined, fallback: number): number {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) && n >= 0 ? n : fallback;
}

export interface Tuning {
  flushRows: number;
  flushBytes: number;
  flushAgeMs: number;
  /** 0: never freeze */
  freezeAfterMs: number;
  segmentRows: number;
  segmentCacheBytes: number;
  /** how long superseded manifest versions (time travel) and their segments are kept */
  retentionMs: number;
  /** WebSockets (realtime and sync) one project holds at most */
  maxConnections: number;
  /** what the WAL keeps past a flush and a freeze, for sync cursors (sync/retention.ts) */
  walRetention: WalRetention;
  /** files: bytes a project may store, and how old an uncommitted upload gets before the alarm drops it */
  storageQuotaBytes: number;
  uploadTtlMs: number;
}

/** Tunables (wrangler vars, docs/api.md "Storage"), with their defaults. */
function readTuning(env: Env): Tuning {
  return {
    flushRows: numberVar(env.HEARTH_FLUSH_ROWS, 100_000),
    flushBytes: numberVar(env.HEARTH_FLUSH_BYTES, 64 * 1024 * 1024),
    flushAgeMs: numberVar(env.HEARTH_FLUSH_AGE_SECONDS, 300) * 1000,
    freezeAfterMs: numberVar(env.HEARTH_FREEZE_AFTER_SECONDS, 900) * 1000,
    segmentRows: Math.max(1, numberVar(env.HEARTH_SEGMENT_ROWS, 262_144)),
    segmentCacheBytes: numberVar(env.HEARTH_SEGMENT_CACHE_BYTES, 256 * 1024 * 1024),
    retentionMs: numberVar(env.HEARTH_RETENTION_SECONDS, 7 * 24 * 3600) * 1000,
    maxConnections: numberVar(env.HEARTH_MAX_CONNECTIONS, 10_000),
    walRetention: {
      changes: numberVar(env.HEARTH_WAL_RETAIN_CHANGES, DEFAULT_WAL_RETENTION.changes),
      ms: numberVar(env.HEARTH_WAL_RETAIN_SECONDS, DEFAULT_WAL_RETENTION.ms / 1000) * 1000,
    },
    storageQuotaBytes: numberVar(env.HEARTH_STORAGE_QUOTA_BYTES, 10 * 1024 ** 3),
    uploadTtlMs: numberVar(env.HEARTH_STORAGE_UPLOAD_TTL_SECONDS, 3600) * 1000,
  };
}

/** Storage calls that finish a request another call began (and was metered for). */
const STORAGE_FOLLOW_UPS = new Set<StorageOp["op"]>(["markMultipart", "commitUpload", "abortUpload"]);

export class ProjectDO extends DurableObject<Env> {
  private state!: ProjectState;
  private cold!: ColdStore;
  private sockets!: SocketStore;
  private realtime!: RealtimeHub;
  private sync!: SyncHub;
  private feed!: ChangeFeed;
  private files!: FileStore;
  /** sockets kept through hibernation are re-attached to their hubs on first use */
  private socketsRestored = false;
  private lastSweep = 0;
  lastActivity = Date.now();
  /** requests being served (a freeze waits until none is) */
  private inflight = 0;
  private firstPendingAt = 0;
  private alarmSet = false;
  private flushing: Promise<FlushResult> | null = null;
  /** when to flush and freeze (wrangler vars; tests change them on the instance) */
  tuning: Tuning;
  /** the project's request rate limit and request figures (tests may change `limit`) */
  readonly meter: RequestMeter;
  /** the per-client share of it (client-limit.ts; tests may change `limit`) */
  readonly clients: ClientLimiter;
  /** tests replace the bucket (R2 faults) and hook flush steps (crashes) */
  bucketOverride: R2Bucket | null = null;
  /** tests: a catalog (D1) whose calls fail, for the flush's catalog commit */
  catalogOverride: D1Database | null = null;
  flushHooks: FlushHooks | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.tuning = readTuning(env);
    this.meter = new RequestMeter(readRateLimit(env));
    this.clients = new ClientLimiter(readClientRateLimit(env));
    this.flushHooks = devPauseHooks(env);
    ctx.blockConcurrencyWhile(async () => {
      this.load();
      if (this.state.projectId !== null) await recoverFlush(this.flushContext());
    });
  }

  private load(): void {
    this.state = new ProjectState(this.ctx.storage.sql, this.ctx.storage);
    this.cold = new ColdStore(
      this.ctx.storage.sql,
      () => this.state.projectId ?? "",
      () => this.bucket,
      this.tuning.segmentCacheBytes,
    );
    const sql = this.ctx.storage.sql;
    this.sockets = new SocketStore(sql);
    const auth = new Authenticator(
      // the catalog as the request path sees it: an outage is a 503, not a revoked token
      new Proxy(this.env, { get: (env, k) => (k === "CATALOG" ? this.catalog : Reflect.get(env, k)) }),
      () => this.state.projectId ?? "",
      (id) => this.state.hasKey(id),
    );
    this.realtime = new RealtimeHub({
      store: this.sockets,
      auth,
      schema: () => this.state.schema,
      limits: { ...DEFAULT_REALTIME_LIMITS },
    });
    this.sync = new SyncHub({
      sql,
      storage: this.ctx.storage,
      store: this.sockets,
      auth,
      cold: this.cold,
      schema: () => this.state.schema,
      rest: (principal, request, inTransaction) =>
        this.route(request, this.checkPrincipal(principal), crypto.randomUUID(), inTransaction),
      afterWrite: () => this.afterWrite(),
      limits: { frameBytes: DEFAULT_REALTIME_LIMITS.frameBytes },
    });
    this.feed = new ChangeFeed(sql, [this.realtime, this.sync], () => this.state.schema);
    this.files = new FileStore({
      sql,
      storage: this.ctx.storage,
      projectId: () => this.state.projectId ?? "",
      bucket: () => this.bucket,
      defaultQuotaBytes: this.tuning.storageQuotaBytes,
    });
    if (this.state.projectId !== null) this.feed.startAt(lastLsn(sql));
    this.socketsRestored = false;
  }

  private hubOf(kind: SocketKind): SocketHub {
    return kind === "sync" ? this.sync : this.realtime;
  }

  /** After hibernation the sockets are still there; their state comes back from storage. */
  private restoreSockets(): void {
    if (this.socketsRestored || this.state.projectId === null) return;
    this.socketsRestored = true;
    const live = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      const a = attachmentOf(ws);
      if (!a) continue;
      live.add(a.id);
      this.hubOf(a.kind).restore(ws, a.id);
    }
    this.sockets.prune(live);
  }

  /**
   * Delivers committed changes to realtime and sync subscribers. The pump starts on the next
   * turn, after the write's response has left: a writer does not wait for the fan-out
   * (at 1,000 subscribers that moved the write's ack p50 from ~64 ms to ~8 ms,
   * bench/results/realtime.md).
   */
  private publish(): void {
    this.restoreSockets();
    setTimeout(() => {
      this.feed.pump().catch((err) => console.error("change feed failed", err));
    }, 0);
  }

  private get bucket(): R2Bucket {
    return this.bucketOverride ?? this.env.BUCKET;
  }

  /** The catalog on the request path: an outage is 503 HEARTH_CATALOG_UNAVAILABLE (workers/catalog/guard.ts). */
  private get catalog(): D1Database {
    return guardCatalog(this.catalogOverride ?? this.env.CATALOG);
  }

  private flushContext() {
    return {
      sql: this.ctx.storage.sql,
      storage: this.ctx.storage,
      bucket: this.bucket,
      catalog: this.catalogOverride ?? this.env.CATALOG,
      store: this.cold,
      projectId: this.state.projectId ?? "",
      schema: this.state.schema,
      schemaVersion: this.state.schemaVersion,
      segmentRows: this.tuning.segmentRows,
      walRetention: this.tuning.walRetention,
      ...(this.flushHooks ? { hooks: this.flushHooks } : {}),
    };
  }

  /**
   * Before a write: a flush or compaction that stopped after its manifest (its catalog commit
   * failed) is finished first, with no other request interleaving, since finishing it drops
   * the hot tier. If it still cannot be finished, the write is refused (503) with nothing done.
   */
  private async finishPendingFlush(): Promise<void> {
    if (this.state.projectId === null || !flushPending(this.ctx.storage.sql)) return;
    let failure: unknown;
    await this.ctx.blockConcurrencyWhile(async () => {
      try {
        // Another request may have finished it while this one waited.
        if (flushPending(this.ctx.storage.sql)) await recoverFlush(this.flushContext());
      } catch (err) {
        failure = err; // thrown here, blockConcurrencyWhile would reset the object
      }
    });
    if (failure) throw failure;
  }

  /**
   * Flushes every hot row to R2 (see cold/flush.ts). No other request runs meanwhile, so
   * the rows written to segments are exactly the rows dropped afterwards. A failure is
   * returned to the caller rather than resetting the object.
   */
  async flush(): Promise<FlushResult> {
    if (this.flushing) return this.flushing;
    const run = async (): Promise<FlushResult> => {
      let out: FlushResult | undefined;
      let failure: unknown;
      await this.ctx.blockConcurrencyWhile(async () => {
        try {
          out = await flush(this.flushContext());
          // Small and tombstone-heavy segments merge right away, while no shadow exists.
          if (out.flushed) {
            const c = await compact(this.flushContext());
            if (c.compacted > 0) out = { ...out, version: c.version, compacted: c.compacted };
          }
        } catch (err) {
          failure = err;
        }
      });
      if (failure !== undefined) throw failure;
      this.firstPendingAt = 0;
      try {
        await collectGarbage(this.flushContext(), this.cold.manifestVersion, this.tuning.retentionMs);
      } catch (err) {
        console.error("garbage collection failed (retried after the next flush)", err);
      }
      return out!;
    };
    this.flushing = run().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /**
   * Freezes the project: flushes everything, then empties this object's storage (tables,
   * WAL, keys). The catalog and R2 hold all of it; the next request wakes the object.
   */
  async freeze(own = 0): Promise<{ frozen: boolean; version: number }> {
    if (this.state.projectId === null) return { frozen: false, version: 0 };
    const projectId = this.state.projectId;
    const result = await this.flush();
    let frozen = false;
    await this.ctx.blockConcurrencyWhile(async () => {
      // A write that slipped in between the flush and now keeps the project awake, and so
      // does any other request still in flight (it holds this object's state).
      if (this.inflight > own) return;
      // Open sockets (realtime, sync) keep the project awake: their state lives here.
      if (this.ctx.getWebSockets().length > 0) return;
      // So do uploads in flight and R2 keys not yet deleted (docs/storage.md, "Freezing").
      if (this.files.holdsPending()) return;
      if (needsFlush(this.flushContext(), await this.cold.current())) return;
      // The WAL tail and the sync ledger outlive the storage (sync/archive.ts); without
      // them the freeze does not happen (a throw here would reset the object).
      try {
        await saveArchive(this.bucket, this.ctx.storage.sql, projectId);
        await saveFilesArchive(this.bucket, projectId, this.ctx.storage.sql);
      } catch (err) {
        console.error("freeze: the WAL tail could not be saved; the project stays awake", err);
        return;
      }
      try {
        await this.catalog
          .prepare("UPDATE projects SET frozen_at = ? WHERE id = ?")
          .bind(new Date().toISOString(), projectId)
          .run();
      } catch (err) {
        console.error("freeze: the catalog is unavailable; the project stays awake", err);
        return;
      }
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      this.alarmSet = false;
      this.cold.dropCaches();
      this.load();
      frozen = true;
    });
    return { frozen, version: result.version };
  }

  /**
   * First request to a frozen project (empty storage): rebuilds the object from the
   * catalog (keys) and the current manifest (schema, sequences, LSN high-water mark).
   */
  private async wake(projectId: string): Promise<void> {
    if (!this.env.PROJECT.idFromName(projectId).equals(this.ctx.id)) return;
    const project = await this.catalog
      .prepare("SELECT manifest_version AS v FROM projects WHERE id = ?")
      .bind(projectId)
      .first<{ v: number }>();
    if (!project) return;
    const keys = await this.catalog
      .prepare("SELECT id, role FROM api_keys WHERE project_id = ? AND revoked_at IS NULL")
      .bind(projectId)
      .all<{ id: string; role: "anon" | "service" }>();
    const manifest = project.v > 0 ? await readManifest(this.bucket, projectId, project.v) : null;
    const archive = manifest ? await loadArchive(this.bucket, projectId) : null;
    const files = await loadFilesArchive(this.bucket, projectId);
    let restoredFiles = false;
    await this.ctx.blockConcurrencyWhile(async () => {
      if (this.state.projectId !== null) return;
      this.adopt(projectId, keys.results, manifest, archive);
      if (files) {
        this.ctx.storage.transactionSync(() => restoreFilesArchive(this.ctx.storage.sql, files));
        this.files.reset();
        restoredFiles = true;
      }
    });
    // Only a marker for operators: awake with it still set is harmless, and a throw inside
    // blockConcurrencyWhile would reset the object.
    await this.catalog
      .prepare("UPDATE projects SET frozen_at = NULL WHERE id = ?")
      .bind(projectId)
      .run()
      .catch((err) => console.error("wake: frozen_at not cleared (catalog unavailable)", err));
    // Restored once: a later wake must not bring back rows changed since (storage/archive.ts).
    if (restoredFiles) await this.bucket.delete(filesArchiveKey(projectId));
  }

  /**
   * Makes this (empty) object the holder of `manifest`: schema, sequences, LSNs, version;
   * and of the WAL tail and sync ledger its last freeze saved (`archive`), if that freeze
   * left this manifest (an older archive is ignored).
   */
  private adopt(
    projectId: string,
    keys: KeyRecord[],
    manifest: Manifest | null,
    archive: WalArchive | null = null,
  ): void {
    this.state.init(projectId, keys);
    if (!manifest) return;
    if (manifest.schema) this.state.applySchema(manifest.schema, manifest.schemaVersion);
    const tail = archive && archive.lastLsn >= manifest.lastLsn ? archive : null;
    // Changes after the last flush that left no row behind (insert, then delete) still
    // took LSNs: the archive knows the true high-water mark.
    const high = Math.max(manifest.lastLsn, tail?.lastLsn ?? 0);
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      const seqs: [string, number][] = [...Object.entries(manifest.sequences), ["_hearth_wal", high]];
      for (const [name, seq] of seqs) {
        sql.exec("DELETE FROM sqlite_sequence WHERE name = ?", name);
        sql.exec("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", name, seq);
      }
      if (tail) restoreArchive(sql, tail);
      this.cold.setVersion(manifest.version);
    });
    this.cold.install(manifest);
    this.feed.startAt(high);
  }

  /**
   * Fork, the new project's side: puts its manifest 1 (the parent's current one: the
   * segments stay where they are, shared by reference) to R2 and takes it as its state, with
   * the parent's files copied by filesForFork. No catalog row names this project yet: the
   * gateway writes them last and empties this object (`destroy`) if it cannot (fork.ts).
   */
  async adoptFork(
    projectId: string,
    keys: KeyRecord[],
    manifest: Manifest,
    files: FilesArchive | null = null,
  ): Promise<ForkStep<null>> {
    try {
      await putForkManifest(this.bucket, manifest);
    } catch (err) {
      return forkFailure(err);
    }
    this.adopt(projectId, keys, manifest);
    // A starting state like the tables, so restored with the WAL muted.
    if (files) {
      this.ctx.storage.transactionSync(() => restoreFilesArchive(this.ctx.storage.sql, files));
      this.files.reset();
    }
    return { ok: true, value: null };
  }

  /** The parent side of a fork: everything flushed, and the manifest that holds it. */
  async snapshotForFork(projectId: string): Promise<ForkStep<Manifest>> {
    try {
      await this.forkParent(projectId);
      await this.flush();
      return { ok: true, value: await this.cold.current() };
    } catch (err) {
      return forkFailure(err);
    }
  }

  /**
   * The parent side of a fork's files: every object's bytes copied to the fork's prefix, and
   * the rows the fork restores (fork-files.ts). On failure the copies are gone.
   */
  async filesForFork(projectId: string, forkId: string): Promise<ForkStep<FilesArchive | null>> {
    try {
      await this.forkParent(projectId);
    } catch (err) {
      return forkFailure(err);
    }
    try {
      return { ok: true, value: await copyFilesForFork(this.ctx.storage.sql, this.bucket, forkId) };
    } catch (err) {
      console.error("fork: copying the files failed", err);
      return forkFailure(
        err instanceof HearthError
          ? err
          : new HearthError("HEARTH_STORAGE_UNAVAILABLE", "The fork failed: its files could not be copied", {
              details: err instanceof Error ? err.message : String(err),
              hint: "Nothing was created; fork again.",
            }),
      );
    }
  }

  /** A frozen parent wakes first (a catalog outage is its 503). */
  private async forkParent(projectId: string): Promise<void> {
    if (this.state.projectId === null) await this.wake(projectId);
    if (this.state.projectId !== projectId) {
      throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
    }
  }

  /** Alarm: freeze when idle long enough, else flush when a threshold is reached. */
  override async alarm(): Promise<void> {
    this.alarmSet = false;
    if (this.state.projectId === null) return;
    const t = this.tuning;
    const now = Date.now();
    try {
      await this.files.sweep(t.uploadTtlMs);
    } catch (err) {
      console.error("storage sweep failed (retried at the next alarm)", err);
    }
    if (t.freezeAfterMs > 0 && now - this.lastActivity >= t.freezeAfterMs) {
      const { frozen } = await this.freeze();
      // Uploads in flight keep a project awake, and need the next sweep.
      if (!frozen && this.files.holdsPending()) await this.scheduleAlarm(this.nextCheckMs());
      return;
    }
    // Hot rows, and deletes or updates of flushed rows (shadows), both wait for a flush.
    const hot = hotRowCount(this.ctx.storage.sql, this.state.schema) + this.cold.shadowCount;
    // After a restart the age of the oldest change is unknown: flush.
    const old = this.firstPendingAt === 0 || now - this.firstPendingAt >= t.flushAgeMs;
    if (hot > 0 && (hot >= t.flushRows || this.ctx.storage.sql.databaseSize >= t.flushBytes || old)) {
      try {
        await this.flush();
      } catch (err) {
        console.error("scheduled flush failed", err);
      }
    }
    // Changes that never flush (file metadata) leave the WAL by the same retention as a
    // flush's trim; a flush still to be finished goes first (it trims too).
    if (!flushPending(this.ctx.storage.sql)) {
      trimIdleWal(this.ctx.storage, t.walRetention, this.feed.deliveredLsn, Date.now());
    }
    await this.scheduleAlarm(this.nextCheckMs());
  }

  private nextCheckMs(): number {
    const t = this.tuning;
    return Math.max(1000, t.freezeAfterMs > 0 ? Math.min(t.flushAgeMs, t.freezeAfterMs) : t.flushAgeMs);
  }

  private async scheduleAlarm(inMs: number): Promise<void> {
    if (this.alarmSet) return;
    this.alarmSet = true;
    const existing = await this.ctx.storage.getAlarm();
    if (existing === null || existing > Date.now() + inMs) await this.ctx.storage.setAlarm(Date.now() + inMs);
  }

  /** After a write: count it toward the thresholds and make sure an alarm will come. */
  private async afterWrite(): Promise<void> {
    this.publish();
    if (this.firstPendingAt === 0) this.firstPendingAt = Date.now();
    // Changes since the last flush: the LSNs past the manifest's.
    const pending = lastLsn(this.ctx.storage.sql) - this.cold.manifest.lastLsn;
    if (pending >= this.tuning.flushRows) {
      this.alarmSet = true;
      await this.ctx.storage.setAlarm(Date.now());
      return;
    }
    await this.scheduleAlarm(this.nextCheckMs());
  }

  /** Called by the gateway when the project is created. Idempotent. */
  async init(projectId: string, keys: KeyRecord[]): Promise<void> {
    this.state.init(projectId, keys);
  }

  /** Deletes every byte this object holds (project deletion). */
  async destroy(): Promise<void> {
    this.restoreSockets();
    this.realtime.closeAll("project deleted");
    for (const ws of this.ctx.getWebSockets()) closeSafe(ws, 1000, "project deleted");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.state = new ProjectState(this.ctx.storage.sql, this.ctx.storage);
  }

  /**
   * OAuth consent: adds an app's tables to this project's schema (additive; identical tables
   * are shared, a differing one is a conflict). Returns a result instead of throwing because
   * a HearthError does not survive RPC as its class.
   */
  async mergeTables(projectId: string, tables: Record<string, TableDef>): Promise<MergeResult> {
    // A frozen project wakes first: its schema lives in its manifest until then.
    if (this.state.projectId === null) {
      try {
        await this.wake(projectId);
      } catch (err) {
        if (!(err instanceof HearthError)) throw err;
        return { ok: false, code: err.code, message: err.message, details: err.details ?? "" };
      }
    }
    if (this.state.projectId !== projectId) {
      return {
        ok: false,
        code: "HEARTH_PROJECT_NOT_FOUND",
        message: `No project with id "${projectId}".`,
        details: "",
      };
    }
    const { schema, conflicts } = mergeTables(this.state.schema?.schema ?? null, tables);
    if (conflicts.length > 0) {
      return {
        ok: false,
        code: "HEARTH_APP_TABLE_CONFLICT",
        message: `The project already has ${conflicts.length === 1 ? "a table" : "tables"} ${conflicts.join(", ")} with another definition than the app's`,
        details: `Conflicting tables: ${conflicts.join(", ")}. A shared table may gain columns and indexes, but columns both declare must match.`,
      };
    }
    try {
      const result = this.state.applySchema(schema);
      this.restoreSockets();
      this.realtime.schemaChanged();
      return { ok: true, applied: result.applied, version: result.version };
    } catch (err) {
      if (!(err instanceof HearthError)) throw err;
      return {
        ok: false,
        code: "HEARTH_APP_TABLE_CONFLICT",
        message: err.message,
        details: err.details ?? "",
      };
    }
  }

  /**
   * The gateway's entry point (Workers RPC): about 2 ms faster per request than `fetch`
   * under wrangler dev (bench/results/core.md), and the principal travels as a value.
   */
  async handle(request: Request, principal: Principal, requestId: string): Promise<Response> {
    this.inflight++;
    try {
      this.lastActivity = Date.now();
      // The client's share first: a client over it does not spend the project's tokens.
      this.clients.admit(clientOf(principal, request.headers));
      this.meter.admit();
      if (this.state.projectId === null) await this.wake(principal.projectId);
      const response = await this.route(request, this.checkPrincipal(principal), requestId);
      this.meter.answered(response.status);
      if (this.state.projectId !== null) {
        if (isDataWrite(request) && response.status < 300) await this.afterWrite();
        // A project woken by reads alone must still freeze again when idle.
        else if (!this.alarmSet && this.tuning.freezeAfterMs > 0)
          await this.scheduleAlarm(this.nextCheckMs());
      }
      return response;
    } catch (err) {
      // Refused before the body was read: read it to the end (bounded) so the gateway's
      // stream into this request completes before the response is sent.
      if (request.body && !request.bodyUsed) await drain(request.body, this.maxBodyBytes());
      const retry = err instanceof RateLimitedError ? { "retry-after": String(err.retryAfterSeconds) } : {};
      const response = errorResponse(err, requestId, retry);
      this.meter.answered(response.status);
      return response;
    } finally {
      this.inflight--;
    }
  }

  /**
   * Files (workers/storage): one metadata operation. Bytes never come here; the gateway
   * streams them to and from R2 around these calls.
   */
  async storage(
    caller: StorageCaller,
    op: StorageOp,
    metered = !STORAGE_FOLLOW_UPS.has(op.op),
  ): Promise<StorageResult> {
    this.inflight++;
    try {
      this.lastActivity = Date.now();
      // One token per storage request, as for REST: its first call here. The calls that
      // finish an upload already admitted (commit, abort, multipart id) are never refused.
      if (metered) {
        this.clients.admit(storageClientOf(caller));
        this.meter.admit();
      }
      const projectId = caller.kind === "principal" ? caller.principal.projectId : caller.projectId;
      if (this.state.projectId === null) await this.wake(projectId);
      if (caller.kind === "principal") this.checkPrincipal(caller.principal);
      else if (this.state.projectId !== projectId) {
        throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
      }
      const { result, wrote } = await this.files.run(caller, op);
      if (wrote) {
        // File metadata is not hot rows: it never waits for a flush, so it does not count
        // toward flushRows (afterWrite's LSN count would set the alarm at once on every file
        // change of a project that never flushes). The alarm still comes: sweep, WAL trim.
        this.publish();
        await this.scheduleAlarm(this.nextCheckMs());
      } else if (op.op === "beginUpload" && result.ok) await this.scheduleAlarm(this.nextCheckMs());
      if (metered) this.meter.answered(result.ok ? 200 : result.status);
      return result;
    } catch (err) {
      if (metered) this.meter.answered(err instanceof HearthError ? err.status : 500);
      if (err instanceof RateLimitedError || err instanceof ClientRateLimitedError) {
        return { ...storageFailure(err.code, err.message), retryAfterSeconds: err.retryAfterSeconds };
      }
      if (err instanceof HearthError) {
        return { ok: false, status: err.status, code: err.code, error: "InvalidJWT", message: err.message };
      }
      throw err;
    } finally {
      this.inflight--;
    }
  }

  /**
   * `POST {url}/import`, in the steps of the gateway (workers/project/import.ts): `begin`
   * books a staging key in R2, the gateway streams the body there (`multipart` records its
   * upload, `abort` drops it), then `run` imports from it. Answers as `handle` does.
   */
  async importStep(principal: Principal, step: ImportStep, requestId: string): Promise<Response> {
    this.inflight++;
    try {
      this.lastActivity = Date.now();
      if (step.step === "begin") {
        this.clients.admit(clientOf(principal, new Headers()));
        this.meter.admit();
      }
      if (this.state.projectId === null) await this.wake(principal.projectId);
      const checked = this.checkPrincipal(principal);
      requireService(checked);
      const sql = this.ctx.storage.sql;
      let body: unknown = {};
      if (step.step === "begin" || step.step === "run") {
        // Refused before a large body is stored, and again once it is.
        if ((await this.cold.coldRowCount()) > 0) {
          throw new HearthError(
            "HEARTH_IMPORT_NOT_EMPTY",
            "The project already holds rows (flushed to its segments)",
            {
              hint: "Import into a new, empty project.",
            },
          );
        }
        assertEmpty(sql, this.state.schema);
      }
      if (step.step === "begin") {
        body = beginStaging(sql, checked.projectId);
        await this.scheduleAlarm(this.nextCheckMs());
      } else if (step.step === "multipart") markStagingMultipart(sql, step.version, step.uploadId);
      else if (step.step === "abort") await endStaging(sql, this.bucket, step.version);
      else {
        body = await importStaged(this.importContext(checked.projectId), step.version);
        this.restoreSockets();
        this.realtime.schemaChanged();
        await this.afterWrite();
      }
      if (step.step === "begin") this.meter.answered(200);
      return json(body, 200, requestId);
    } catch (err) {
      if (step.step === "run")
        await endStaging(this.ctx.storage.sql, this.bucket, step.version).catch(() => {});
      const response = errorResponse(err, requestId);
      if (step.step === "begin") this.meter.answered(response.status);
      return response;
    } finally {
      this.inflight--;
    }
  }

  private importContext(projectId: string): ImportContext {
    return {
      sql: this.ctx.storage.sql,
      storage: this.ctx.storage,
      state: this.state,
      reloadState: () => {
        this.state = new ProjectState(this.ctx.storage.sql, this.ctx.storage);
      },
      maxBodyBytes: this.maxBodyBytes(),
      files: {
        r2: this.bucket,
        projectId,
        defaultQuotaBytes: this.tuning.storageQuotaBytes,
        armSweep: () => this.scheduleAlarm(this.nextCheckMs()),
      },
    };
  }

  /** HTTP entry point, kept for WebSocket upgrades: the principal comes in a header. */
  override async fetch(request: Request): Promise<Response> {
    const requestId = request.headers.get(REQUEST_ID_HEADER) ?? crypto.randomUUID();
    try {
      this.lastActivity = Date.now();
      const raw = request.headers.get(PRINCIPAL_HEADER);
      if (!raw) throw new HearthError("HEARTH_UNAUTHORIZED", "Missing credentials.");
      const principal = JSON.parse(raw) as Principal;
      if (this.state.projectId === null) await this.wake(principal.projectId);
      const checked = this.checkPrincipal(principal);
      if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
        return await this.acceptSocket(request, checked, request.headers.get(TOKEN_HEADER) ?? "");
      }
      return await this.route(request, checked, requestId);
    } catch (err) {
      // Refused before the body was read: read it to the end (bounded) so the gateway's
      // stream into this request completes before the response is sent.
      if (request.body && !request.bodyUsed) await drain(request.body, this.maxBodyBytes());
      return errorResponse(err, requestId);
    }
  }

  /** `{url}/realtime/v1/websocket` and `{url}/sync/v1`: accepted with the hibernation API. */
  private async acceptSocket(request: Request, principal: Principal, token: string): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.slice(`/p/${principal.projectId}`.length);
    const kind: SocketKind | null =
      path === "/realtime/v1/websocket" ? "realtime" : path === "/sync/v1" ? "sync" : null;
    if (!kind) throw new HearthError("HEARTH_NOT_FOUND", `No WebSocket endpoint at ${url.pathname}`);
    if (this.ctx.getWebSockets().length >= this.tuning.maxConnections) {
      throw new HearthError(
        "HEARTH_REALTIME_LIMIT",
        `The project already holds ${this.tuning.maxConnections} WebSocket connections`,
        { hint: "Close unused connections, or raise HEARTH_MAX_CONNECTIONS." },
      );
    }
    this.restoreSockets();
    const now = Date.now();
    const auth = {
      token,
      principal,
      // The gateway checked the token just now; its expiry comes with the first recheck.
      expiresAtMs: null,
      checkedAt: principal.role === "anon" || principal.role === "service" ? now : 0,
    };
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const id = crypto.randomUUID();
    this.ctx.acceptWebSocket(server, [kind]);
    server.serializeAttachment({ id, kind } satisfies Attachment);
    this.hubOf(kind).open(server, id, auth, url);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.restoreSockets();
    const a = attachmentOf(ws);
    if (!a) return;
    const now = Date.now();
    this.lastActivity = now;
    // Heartbeats of the others are the clock that finds silent sockets.
    if (now - this.lastSweep > 5_000) {
      this.lastSweep = now;
      this.realtime.sweep(now);
      this.sync.sweep(now);
    }
    await this.hubOf(a.kind).message(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.restoreSockets();
    const a = attachmentOf(ws);
    if (a) this.hubOf(a.kind).close(ws);
    closeSafe(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.restoreSockets();
    const a = attachmentOf(ws);
    if (a) this.hubOf(a.kind).close(ws);
    closeSafe(ws, 1011, "error");
  }

  /** The gateway revoked an app's grant: its realtime channels and sync sockets close now. */
  async grantRevoked(grantId: string): Promise<number> {
    // This isolate's grant cache must not answer "live" to a rejoin with the same token.
    forgetGrant(grantId);
    this.restoreSockets();
    return this.realtime.revokeGrant(grantId) + this.sync.revokeGrant(grantId);
  }

  /** Members or keys of the project changed: every socket's token is checked again. */
  async accessChanged(): Promise<void> {
    // Re-checks must see the change: drop this isolate's cached roles in the project first.
    if (this.state.projectId) forgetMemberships(this.state.projectId);
    this.restoreSockets();
    this.realtime.recheckAll();
    this.sync.recheckAll();
  }

  private async snapshot(asOf: string): Promise<Manifest> {
    const version = await resolveSnapshot(this.catalog, this.state.projectId ?? "", asOf);
    return this.cold.snapshot(version);
  }

  private async stats(): Promise<Record<string, unknown>> {
    const sql = this.ctx.storage.sql;
    const manifest = await this.cold.current();
    const refs = Object.values(manifest.tables).flat();
    return {
      projectId: this.state.projectId,
      schemaVersion: this.state.schemaVersion,
      hotRows: hotRowCount(sql, this.state.schema),
      coldRows: await this.cold.coldRowCount(),
      segments: refs.length,
      r2Bytes: refs.reduce((s, r) => s + r.bytes, 0),
      doStorageBytes: sql.databaseSize,
      segmentCacheBytes: this.cold.cachedBytes,
      manifestVersion: this.cold.manifestVersion,
      // a flush or compaction stopped between its manifest and its drop (finished before the next write)
      flushPending: flushPending(sql),
      wal: { ...walRange(sql), lastLsn: lastLsn(sql) },
      lastActivity: new Date(this.lastActivity).toISOString(),
      requests: { ...this.meter.figures(), clients: this.clients.figures() },
    };
  }

  /**
   * Before a schema change: the flushed rows of every table it changes (anything but new
   * columns) or drops come back to the hot tier, so SQLite's migration sees all rows.
   */
  private async promoteForSchema(next: unknown): Promise<void> {
    const current = this.state.schema;
    if (!current || this.cold.isEmpty || typeof next !== "object" || next === null) return;
    const nextTables = ((next as { tables?: unknown }).tables ?? {}) as Record<
      string,
      { columns?: Record<string, unknown> }
    >;
    const changed = [...current.tables.values()].filter((t) => {
      const after = nextTables[t.name];
      if (!after || typeof after !== "object") return true;
      const { columns: beforeCols, ...beforeRest } = t.def;
      const { columns: afterCols = {}, ...afterRest } = after;
      if (JSON.stringify(beforeRest) !== JSON.stringify(afterRest)) return true;
      return Object.entries(beforeCols).some(([c, d]) => JSON.stringify(afterCols[c]) !== JSON.stringify(d));
    });
    for (const table of changed) {
      const view = await prepareWrite(this.cold, current, table);
      this.cold.transaction(this.ctx.storage, () => {
        this.cold.promoteAll(view, table);
      });
    }
  }

  private maxBodyBytes(): number {
    return Number(this.env.HEARTH_MAX_BODY_BYTES) || DEFAULT_MAX_BODY_BYTES;
  }

  private checkPrincipal(principal: Principal): Principal {
    if (this.state.projectId === null || principal.projectId !== this.state.projectId) {
      throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${principal.projectId}".`);
    }
    if ((principal.role === "anon" || principal.role === "service") && !this.state.hasKey(principal.keyId)) {
      throw new HearthError("PGRST301", "This key has been revoked.");
    }
    return principal;
  }

  private async route(
    request: Request,
    principal: Principal,
    requestId: string,
    inTransaction?: () => void,
  ): Promise<Response> {
    const url = new URL(request.url);
    const prefix = `/p/${principal.projectId}`;
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
    const method = request.method.toUpperCase();
    if (path === "/rest/v1" || path.startsWith("/rest/v1/")) {
      return handleRest(
        {
          sql: this.ctx.storage.sql,
          storage: this.ctx.storage,
          schema: this.state.requireSchema(),
          principal,
          requestId,
          maxBodyBytes: this.maxBodyBytes(),
          baseUrl: `${url.origin}${prefix}/rest/v1`,
          cold: this.cold,
          snapshot: (asOf) => this.snapshot(asOf),
          beforeWrite: () => this.finishPendingFlush(),
          ...(inTransaction ? { inTransaction } : {}),
        },
        request,
        path.slice("/rest/v1".length),
      );
    }
    if (path === "/schema") {
      requireService(principal);
      if (method === "GET") {
        const schema = this.state.schema?.schema ?? { tables: {} };
        return json({ ...schema }, 200, requestId, {
          "x-hearth-schema-version": String(this.state.schemaVersion),
        });
      }
      if (method === "PUT") {
        const body = await readJsonBody(request, MAX_SCHEMA_BYTES);
        if (body === undefined) {
          throw new HearthError(
            "HEARTH_SCHEMA_INVALID",
            'The schema must be a JSON object with a "tables" key.',
          );
        }
        await this.promoteForSchema(body);
        const result = this.state.applySchema(body);
        this.restoreSockets();
        this.realtime.schemaChanged();
        return json(result, 200, requestId);
      }
      throw new HearthError(
        "HEARTH_METHOD_NOT_ALLOWED",
        `${method} is not allowed on /schema; use GET or PUT.`,
      );
    }
    if (path === "/export" && method === "GET") {
      requireExportAccess(principal);
      const format = exportFormat(url);
      const ctx = {
        sql: this.ctx.storage.sql,
        cold: this.cold,
        schema: this.state.schema,
        projectId: principal.projectId,
        requestId,
        blobs: { buckets: () => this.files.buckets(), pages: () => this.files.objects(), r2: this.bucket },
      };
      return exportProject(ctx, format);
    }
    if (path.startsWith("/realtime/v1/api/broadcast")) {
      this.restoreSockets();
      return broadcastHttp(
        this.realtime,
        principal,
        request,
        path.slice("/realtime/v1/api/broadcast".length),
        requestId,
      );
    }
    if (path === "/admin/v1/ping") {
      requireService(principal);
      return json({ ok: true }, 200, requestId);
    }
    if (path === "/admin/v1/flush") {
      requireService(principal);
      if (method !== "POST") {
        throw new HearthError(
          "HEARTH_METHOD_NOT_ALLOWED",
          `${method} is not allowed on /admin/v1/flush; use POST.`,
        );
      }
      return json(await this.flush(), 200, requestId);
    }
    if (path === "/admin/v1/freeze") {
      requireService(principal);
      if (method !== "POST") {
        throw new HearthError(
          "HEARTH_METHOD_NOT_ALLOWED",
          `${method} is not allowed on /admin/v1/freeze; use POST.`,
        );
      }
      return json(await this.freeze(1), 200, requestId);
    }
    if (path === "/admin/v1/stats") {
      requireService(principal);
      return json(await this.stats(), 200, requestId);
    }
    throw new HearthError("HEARTH_NOT_FOUND", `No route for ${method} ${url.pathname}`);
  }
}

/** ISO time or manifest version → a kept manifest (time travel). */
async function resolveSnapshot(catalog: D1Database, projectId: string, asOf: string): Promise<number> {
  if (/^\d+$/.test(asOf)) {
    const v = Number(asOf);
    const row = await catalog
      .prepare("SELECT version FROM manifests WHERE project_id = ? AND version = ?")
      .bind(projectId, v)
      .first<{ version: number }>();
    if (!row) {
      throw new HearthError("HEARTH_SNAPSHOT_NOT_FOUND", `There is no kept snapshot with version ${v}`, {
        hint: "GET {url}/admin/v1/stats shows the current manifest version; older ones are kept for the retention window.",
      });
    }
    return v;
  }
  const ms = Date.parse(asOf);
  if (Number.isNaN(ms)) {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `as_of must be a manifest version or an ISO-8601 time, not "${asOf}"`,
    );
  }
  const row = await catalog
    .prepare(
      "SELECT version FROM manifests WHERE project_id = ? AND created_at <= ? ORDER BY version DESC LIMIT 1",
    )
    .bind(projectId, new Date(ms).toISOString())
    .first<{ version: number }>();
  if (!row) {
    throw new HearthError("HEARTH_SNAPSHOT_NOT_FOUND", `No snapshot was taken at or before ${asOf}`, {
      hint: "Snapshots are the flushes (manifest versions); the first one is taken by the first flush.",
    });
  }
  return row.version;
}

/** A request that may change rows (the flush thresholds count those). */
function isDataWrite(request: Request): boolean {
  const m = request.method;
  if (m === "GET" || m === "HEAD" || m === "OPTIONS") return false;
  const path = new URL(request.url).pathname;
  return path.includes("/rest/v1/") || path.endsWith("/import");
}

function requireService(principal: Principal): void {
  if (principal.role !== "service") {
    throw new HearthError("HEARTH_FORBIDDEN", "This endpoint needs the project's service key.");
  }
}

function json(
  body: unknown,
  status: number,
  requestId: string,
  headers: Record<string, string> = {},
): Response {
  return respond(status, JSON.stringify(body), { "content-type": JSON_TYPE, ...headers }, requestId);
}
