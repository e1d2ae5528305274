/**
 * drizzle-orm view of the D1 catalog. The SQL of record is migrations/NNNN_*.sql; keep the
 * two in step (test/catalog.test.ts reads every table through these definitions).
 */
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const accounts = sqliteTable("accounts", {
  id: text("id").primaryKey(),
  email: text("email").notNull().unique(),
  passwordHash: text("password_hash"),
  emailConfirmedAt: text("email_confirmed_at"),
  createdAt: text("created_at").notNull(),
  updatedAt: text("updated_at").notNull(),
  /** JSON object: GoTrue's `user_metadata` (signUp's `data`). Added by 0002_auth.sql. */
  userMetadata: text("user_metadata").notNull().default("{}"),
  lastSignInAt: text("last_sign_in_at"),
});

export const projects = sqliteTable("projects", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  ownerAccountId: text("owner_account_id"),
  personal: integer("personal", { mode: "boolean" }).notNull().default(false),
  createdAt: text("created_at").notNull(),
  /** 0004_storage.sql: the current manifest version (0 before the first flush) */
  manifestVersion: integer("manifest_version").notNull().default(0),
  frozenAt: text("frozen_at"),
  /** the project a fork started from (informational) */
  forkedFrom: text("forked_from"),
});

/** 0004_storage.sql: one row per kept manifest version of a project. */
export const manifests = sqliteTable(
  "manifests",
  {
    projectId: text("project_id").notNull(),
    version: integer("version").notNull(),
    r2Key: text("r2_key").notNull(),
    lastLsn: integer("last_lsn").notNull(),
    segments: integer("segments").notNull(),
    rows: integer("rows").notNull(),
    bytes: integer("bytes").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.version] })],
);

/** 0004_storage.sql: one row per (manifest version, segment it lists), with its stats (JSON). */
export const segments = sqliteTable(
  "segments",
  {
    projectId: text("project_id").notNull(),
    version: integer("version").notNull(),
    r2Key: text("r2_key").notNull(),
    tableName: text("table_name").notNull(),
    rows: integer("rows").notNull(),
    bytes: integer("bytes").notNull(),
    firstLsn: integer("first_lsn").notNull(),
    lastLsn: integer("last_lsn").notNull(),
    stats: text("stats").notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.version, t.r2Key] })],
);

export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  projectId: text("project_id").notNull(),
  role: text("role", { enum: ["anon", "service"] }).notNull(),
  keyHash: text("key_hash").notNull().unique(),
  issuedAt: integer("issued_at").notNull(),
  revokedAt: text("revoked_at"),
});

export const projectMembers = sqliteTable(
  "project_members",
  {
    projectId: text("project_id").notNull(),
    accountId: text("account_id").notNull(),
    role: text("role", { enum: ["reader", "writer", "admin"] }).notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.accountId] })],
);

export const apps = sqliteTable("apps", {
  clientId: text("client_id").primaryKey(),
  ownerAccountId: text("owner_account_id").notNull(),
  name: text("name").notNull(),
  redirectUris: text("redirect_uris").notNull(),
  confidential: integer("confidential", { mode: "boolean" }).notNull().default(false),
  clientSecretHash: text("client_secret_hash"),
  schemaJson: text("schema_json").notNull(),
  createdAt: text("created_at").notNull(),
});

export const grants = sqliteTable("grants", {
  id: text("id").primaryKey(),
  accountId: text("account_id").notNull(),
  clientId: text("client_id").notNull(),
  projectId: text("project_id").notNull(),
  scopes: text("scopes").notNull(),
  createdAt: text("created_at").notNull(),
  lastUsedAt: text("last_used_at"),
  revokedAt: text("revoked_at"),
});

// migrations/0002_auth.sql: sessions, tokens, mail and rate limits of workers/auth/.

export const sessions = sqliteTable("sessions", {
  id: text("id").primaryKey(),
  accountId: text("account_id").notNull(),
  createdAt: text("created_at").notNull(),
  refreshedAt: text("refreshed_at"),
  revokedAt: text("revoked_at"),
  ip: text("ip"),
  userAgent: text("user_agent"),
});

export const refreshTokens = sqliteTable("refresh_tokens", {
  tokenHash: text("token_hash").primaryKey(),
  sessionId: text("session_id").notNull(),
  parentHash: text("parent_hash"),
  createdAt: text("created_at").notNull(),
  usedAt: text("used_at"),
});

export const oneTimeTokens = sqliteTable("one_time_tokens", {
  id: text("id").primaryKey(),
  email: text("email").notNull(),
  codeHash: text("code_hash").notNull(),
  linkHash: text("link_hash").notNull().unique(),
  userMetadata: text("user_metadata"),
  createdAt: text("created_at").notNull(),
  expiresAt: integer("expires_at").notNull(),
  usedAt: text("used_at"),
});

export const outbox = sqliteTable("outbox", {
  id: text("id").primaryKey(),
  toEmail: text("to_email").notNull(),
  message: text("message").notNull(),
  createdAt: text("created_at").notNull(),
});

export const rateLimits = sqliteTable("rate_limits", {
  key: text("key").primaryKey(),
  windowStart: integer("window_start").notNull(),
  count: integer("count").notNull(),
});
