/**
 * drizzle-orm view of migrations/0003_oauth.sql. Kept apart from schema.ts (the 0001 tables)
 * so the OAuth tables and the accounts tables can evolve without touching the same file.
 */
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const oauthCodes = sqliteTable("oauth_codes", {
  codeHash: text("code_hash").primaryKey(),
  grantId: text("grant_id").notNull(),
  clientId: text("client_id").notNull(),
  redirectUri: text("redirect_uri").notNull(),
  codeChallenge: text("code_challenge").notNull(),
  scopes: text("scopes").notNull(),
  expiresAt: integer("expires_at").notNull(),
  usedAt: text("used_at"),
});

export const oauthRefreshTokens = sqliteTable("oauth_refresh_tokens", {
  tokenHash: text("token_hash").primaryKey(),
  grantId: text("grant_id").notNull(),
  clientId: text("client_id").notNull(),
  family: text("family").notNull(),
  scopes: text("scopes").notNull(),
  createdAt: text("created_at").notNull(),
  expiresAt: integer("expires_at").notNull(),
  rotatedAt: text("rotated_at"),
  revokedAt: text("revoked_at"),
});
