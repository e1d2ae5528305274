import type { ProjectDO } from "../durable-objects/project-do.ts";

/** Bindings and vars of wrangler.toml (plus secrets). */
export interface Env {
  PROJECT: DurableObjectNamespace<ProjectDO>;
  CATALOG: D1Database;
  BUCKET: R2Bucket;
  /** "production" (default in wrangler.toml), "development" (npm start) or "test" */
  HEARTH_ENV?: string;
  HEARTH_ADMIN_KEY?: string;
  HEARTH_JWT_SECRET?: string;
  HEARTH_MAX_BODY_BYTES?: string;
  /** `POST {url}/import`: the largest zip (default 10 GiB; staged in R2, not held in memory) */
  HEARTH_MAX_IMPORT_BYTES?: string;
  /** Cold tier (durable-objects/cold): flush thresholds, freezing, segment size and cache. */
  HEARTH_FLUSH_ROWS?: string;
  HEARTH_FLUSH_BYTES?: string;
  HEARTH_FLUSH_AGE_SECONDS?: string;
  /** idle time after which a project is frozen; 0 never freezes */
  HEARTH_FREEZE_AFTER_SECONDS?: string;
  HEARTH_SEGMENT_ROWS?: string;
  HEARTH_SEGMENT_CACHE_BYTES?: string;
  /** how long manifests (snapshots for as_of) and the segments they need are kept */
  HEARTH_RETENTION_SECONDS?: string;
  /** requests per second one project may receive (default 0: no limit); over it 429 HEARTH_RATE_LIMITED */
  HEARTH_PROJECT_RATE_LIMIT?: string;
  /** how many requests may arrive at once before the rate applies (default 2 × the rate) */
  HEARTH_PROJECT_RATE_BURST?: string;
  /** requests per second one client (user, app grant, anonymous IP) may send to one project (default 0: no limit) */
  HEARTH_CLIENT_RATE_LIMIT?: string;
  /** how many requests one client may send at once before its rate applies (default 2 × the rate) */
  HEARTH_CLIENT_RATE_BURST?: string;
  /** WebSockets (realtime and sync) one project holds at most (default 10000) */
  HEARTH_MAX_CONNECTIONS?: string;
  /** WAL entries kept past a flush and a freeze, for sync cursors (default 10000) */
  HEARTH_WAL_RETAIN_CHANGES?: string;
  /** WAL entries younger than this (seconds) are kept too (default 0: only the count) */
  HEARTH_WAL_RETAIN_SECONDS?: string;
  /** Files (docs/storage.md): bytes one project may store (default 10 GiB) */
  HEARTH_STORAGE_QUOTA_BYTES?: string;
  /** an upload not committed after this long (seconds, default 3600) loses its bytes at the next alarm */
  HEARTH_STORAGE_UPLOAD_TTL_SECONDS?: string;
  /** `npm start` and tests only (never production): `<flush step>:<ms>` logs and pauses each flush there (durable-objects/cold/dev-pause.ts) */
  HEARTH_DEV_PAUSE_AFTER?: string;
  /** Deployed mail: each auth email is POSTed there as JSON (workers/auth/mailer.ts). */
  HEARTH_EMAIL_WEBHOOK_URL?: string;
  /** Sent as `Authorization: Bearer <secret>` with each webhook POST, when set. */
  HEARTH_EMAIL_WEBHOOK_SECRET?: string;
}

/** Hono environment of the gateway. */
export type AppEnv = { Bindings: Env; Variables: { requestId: string } };

export const DEV_ADMIN_KEY = "dev-admin-key";
export const DEV_JWT_SECRET = "dev-jwt-secret-do-not-use-in-production-0123456789";
