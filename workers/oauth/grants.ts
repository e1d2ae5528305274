/**
 * Grants, codes and refresh tokens in the catalog. A grant is one row per (account, app,
 * project) while it lives; consenting again adds scopes to it. Codes and refresh tokens are
 * stored as SHA-256 only.
 */
import { and, eq, isNull } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { drizzle } from "drizzle-orm/d1";
import { sha256Hex } from "../auth/keys.ts";
import { oauthCodes, oauthRefreshTokens } from "../catalog/oauth-schema.ts";
import { grants, projectMembers, projects } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { forgetGrant } from "./grant-check.ts";
import { unionScopes } from "./scopes.ts";
import {
  ACCESS_TOKEN_TTL_S,
  CODE_TTL_MS,
  REFRESH_TOKEN_TTL_MS,
  randomToken,
  signAppToken,
} from "./tokens.ts";

export type Grant = typeof grants.$inferSelect;

/**
 * The project an account may grant: the one named (owned, or administered as a member,
 * since consent changes its schema), else its personal project. Null when there is none.
 */
export async function grantableProject(env: Env, accountId: string, projectId: string | undefined) {
  const db = drizzle(env.CATALOG);
  if (projectId === undefined) {
    const [p] = await db
      .select({ id: projects.id })
      .from(projects)
      .where(and(eq(projects.ownerAccountId, accountId), eq(projects.personal, true)));
    return p?.id ?? null;
  }
  const [p] = await db.select().from(projects).where(eq(projects.id, projectId));
  if (!p) return null;
  if (p.ownerAccountId === accountId) return p.id;
  const [m] = await db
    .select({ role: projectMembers.role })
    .from(projectMembers)
    .where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.accountId, accountId)));
  return m?.role === "admin" ? p.id : null;
}

/**
 * Creates the grant or adds the scopes to the live one, and issues a one-time code for it:
 * one D1 batch, so a catalog failure leaves neither a grant nor a code (the user retries).
 */
export async function grantWithCode(
  env: Env,
  g: { accountId: string; clientId: string; projectId: string; scopes: string[] },
  c: { redirectUri: string; codeChallenge: string },
): Promise<string> {
  const db = drizzle(env.CATALOG);
  const [live] = await db
    .select()
    .from(grants)
    .where(
      and(
        eq(grants.accountId, g.accountId),
        eq(grants.clientId, g.clientId),
        eq(grants.projectId, g.projectId),
        isNull(grants.revokedAt),
      ),
    );
  const grantId = live?.id ?? crypto.randomUUID();
  const code = randomToken("hc_");
  const insertCode = db.insert(oauthCodes).values({
    codeHash: await sha256Hex(code),
    grantId,
    clientId: g.clientId,
    redirectUri: c.redirectUri,
    codeChallenge: c.codeChallenge,
    scopes: g.scopes.join(" "),
    expiresAt: Date.now() + CODE_TTL_MS,
  });
  if (!live) {
    await db.batch([
      db.insert(grants).values({
        id: grantId,
        accountId: g.accountId,
        clientId: g.clientId,
        projectId: g.projectId,
        scopes: g.scopes.join(" "),
        createdAt: new Date().toISOString(),
      }),
      insertCode,
    ]);
    return code;
  }
  const scopes = unionScopes(live.scopes.split(" "), g.scopes).join(" ");
  if (scopes === live.scopes) await insertCode;
  else await db.batch([db.update(grants).set({ scopes }).where(eq(grants.id, live.id)), insertCode]);
  return code;
}

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
  scope: string;
  project_id: string;
  project_url: string;
}

/**
 * A new access token and a new refresh token in the chain `family`: the answer, and the
 * insert that makes the refresh token exist. The caller runs the insert in one D1 batch with
 * the change that spends what was presented (the code, the old refresh token), so a catalog
 * failure leaves both as they were and the client may simply retry.
 */
export async function prepareTokens(
  env: Env,
  origin: string,
  grant: Grant,
  scopes: string[],
  family: string,
): Promise<{ insert: BatchItem<"sqlite">; tokenHash: string; response: TokenResponse }> {
  const refresh = randomToken("hr_");
  const tokenHash = await sha256Hex(refresh);
  const now = Date.now();
  const access = await signAppToken(readConfig(env).jwtSecret, {
    accountId: grant.accountId,
    clientId: grant.clientId,
    grantId: grant.id,
    scopes,
    projectId: grant.projectId,
  });
  const insert = drizzle(env.CATALOG)
    .insert(oauthRefreshTokens)
    .values({
      tokenHash,
      grantId: grant.id,
      clientId: grant.clientId,
      family,
      scopes: scopes.join(" "),
      createdAt: new Date(now).toISOString(),
      expiresAt: now + REFRESH_TOKEN_TTL_MS,
    });
  const response: TokenResponse = {
    access_token: access,
    token_type: "Bearer",
    expires_in: ACCESS_TOKEN_TTL_S,
    refresh_token: refresh,
    scope: scopes.join(" "),
    project_id: grant.projectId,
    project_url: `${origin}/p/${grant.projectId}`,
  };
  return { insert, tokenHash, response };
}

export async function loadGrant(env: Env, id: string): Promise<Grant | null> {
  const [g] = await drizzle(env.CATALOG).select().from(grants).where(eq(grants.id, id));
  return g ?? null;
}

/** Revokes every refresh token matching `where` (a grant, or one code's chain). */
export async function revokeRefreshTokens(
  env: Env,
  by: { grantId: string } | { family: string },
): Promise<void> {
  const now = new Date().toISOString();
  const db = drizzle(env.CATALOG);
  const where =
    "grantId" in by ? eq(oauthRefreshTokens.grantId, by.grantId) : eq(oauthRefreshTokens.family, by.family);
  await db
    .update(oauthRefreshTokens)
    .set({ revokedAt: now })
    .where(and(where, isNull(oauthRefreshTokens.revokedAt)));
}

/** The user's revocation: access stops (grant-check.ts), the data stays. */
export async function revokeGrant(env: Env, grantId: string): Promise<void> {
  const now = new Date().toISOString();
  const db = drizzle(env.CATALOG);
  const [grant] = await db.select({ projectId: grants.projectId }).from(grants).where(eq(grants.id, grantId));
  await db.batch([
    db
      .update(grants)
      .set({ revokedAt: now })
      .where(and(eq(grants.id, grantId), isNull(grants.revokedAt))),
    db
      .update(oauthRefreshTokens)
      .set({ revokedAt: now })
      .where(and(eq(oauthRefreshTokens.grantId, grantId), isNull(oauthRefreshTokens.revokedAt))),
    db.delete(oauthCodes).where(eq(oauthCodes.grantId, grantId)),
  ]);
  forgetGrant(grantId);
  // Open realtime channels and sync sockets of the grant close now, not at their next recheck.
  // If that fails, the DO's own recheck (RECHECK_MS) still closes them.
  if (grant) {
    try {
      await env.PROJECT.get(env.PROJECT.idFromName(grant.projectId)).grantRevoked(grantId);
    } catch (err) {
      console.error("could not tell the project about a revoked grant", err);
    }
  }
}
