/**
 * Sessions, access tokens and rotating refresh tokens.
 *
 * - An access token is an HS256 JWT (1 hour) naming its session in `session_id`.
 * - A refresh token is 32 random bytes; only its SHA-256 is stored. Each use marks it used and
 *   issues a child. A used token presented again means it leaked (or a client raced itself):
 *   the whole session is revoked, as GoTrue does without its reuse interval.
 * - The gateway refuses access tokens of revoked sessions (`sessionIsLive`). The answer for a
 *   live session is cached in the isolate for 5 seconds, a revoked one until the token would
 *   expire anyway; logout clears the cache of its own isolate at once, so other isolates see a
 *   revocation within 5 seconds.
 */
import { and, eq, isNull, ne } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { SignJWT } from "jose";
import { accounts, refreshTokens, sessions } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { AuthError, nowIso } from "./gotrue.ts";
import { sha256Hex } from "./keys.ts";
import { type AccountRow, accountById, userJson } from "./users.ts";

export const ACCESS_TOKEN_TTL_SECONDS = 3600;
const LIVE_CACHE_MS = 5_000;
const LIVE_CACHE_MAX = 4096;

const encoder = new TextEncoder();

function randomToken(bytes = 32): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  let s = "";
  for (const b of raw) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

async function signAccessToken(
  env: Env,
  account: AccountRow,
  sessionId: string,
): Promise<{ token: string; exp: number }> {
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + ACCESS_TOKEN_TTL_SECONDS;
  const token = await new SignJWT({ role: "authenticated", email: account.email, session_id: sessionId })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("hearth")
    .setAudience("authenticated")
    .setSubject(account.id)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(encoder.encode(readConfig(env).jwtSecret));
  return { token, exp };
}

/** The session object of GoTrue: what signUp, signInWithPassword, verifyOtp and refresh read. */
async function sessionJson(env: Env, account: AccountRow, sessionId: string, refreshToken: string) {
  const { token, exp } = await signAccessToken(env, account, sessionId);
  return {
    access_token: token,
    token_type: "bearer",
    expires_in: ACCESS_TOKEN_TTL_SECONDS,
    expires_at: exp,
    refresh_token: refreshToken,
    user: userJson(account),
  };
}
export type SessionJson = Awaited<ReturnType<typeof sessionJson>>;

/** Starts a session for `account` (a successful sign-in): records the sign-in time too. */
export async function startSession(
  env: Env,
  account: AccountRow,
  client: { ip: string; userAgent: string | null },
): Promise<SessionJson> {
  const db = drizzle(env.CATALOG);
  const now = nowIso();
  const sessionId = crypto.randomUUID();
  const refreshToken = randomToken();
  await db.batch([
    db.insert(sessions).values({
      id: sessionId,
      accountId: account.id,
      createdAt: now,
      ip: client.ip,
      userAgent: client.userAgent,
    }),
    db.insert(refreshTokens).values({ tokenHash: await sha256Hex(refreshToken), sessionId, createdAt: now }),
    db.update(accounts).set({ lastSignInAt: now }).where(eq(accounts.id, account.id)),
  ]);
  return sessionJson(env, { ...account, lastSignInAt: now }, sessionId, refreshToken);
}

/** `grant_type=refresh_token`: rotate, or detect reuse and revoke the session. */
export async function refreshSession(env: Env, presented: string): Promise<SessionJson> {
  const db = drizzle(env.CATALOG);
  const hash = await sha256Hex(presented);
  const [row] = await db
    .select({
      sessionId: refreshTokens.sessionId,
      usedAt: refreshTokens.usedAt,
      revokedAt: sessions.revokedAt,
    })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .where(eq(refreshTokens.tokenHash, hash));
  const notFound = () =>
    new AuthError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
  if (!row) throw notFound();
  const reused = async () => {
    await revokeSessions(env, { sessionId: row.sessionId });
    return new AuthError("refresh_token_already_used", "Invalid Refresh Token: Already Used");
  };
  if (row.usedAt !== null) throw await reused();
  if (row.revokedAt !== null) throw notFound();
  const now = nowIso();
  // Conditional update: of two concurrent uses only one finds the token unused.
  const claimed = await db
    .update(refreshTokens)
    .set({ usedAt: now })
    .where(and(eq(refreshTokens.tokenHash, hash), isNull(refreshTokens.usedAt)))
    .returning({ sessionId: refreshTokens.sessionId });
  if (claimed.length === 0) throw await reused();
  const [session] = await db.select().from(sessions).where(eq(sessions.id, row.sessionId));
  const account = session ? await accountById(env.CATALOG, session.accountId) : undefined;
  if (!session || !account) throw notFound();
  const next = randomToken();
  await db.batch([
    db
      .insert(refreshTokens)
      .values({ tokenHash: await sha256Hex(next), sessionId: session.id, parentHash: hash, createdAt: now }),
    db.update(sessions).set({ refreshedAt: now }).where(eq(sessions.id, session.id)),
  ]);
  return sessionJson(env, account, session.id, next);
}

/** Revokes one session, or all of an account's (optionally but one). */
export async function revokeSessions(
  env: Env,
  target: { sessionId: string } | { accountId: string; except?: string },
): Promise<void> {
  const db = drizzle(env.CATALOG);
  const now = nowIso();
  const live = isNull(sessions.revokedAt);
  const where =
    "sessionId" in target
      ? and(eq(sessions.id, target.sessionId), live)
      : target.except === undefined
        ? and(eq(sessions.accountId, target.accountId), live)
        : and(eq(sessions.accountId, target.accountId), ne(sessions.id, target.except), live);
  const revoked = await db
    .update(sessions)
    .set({ revokedAt: now })
    .where(where)
    .returning({ id: sessions.id });
  for (const r of revoked) liveCache.set(r.id, { live: false, untilMs: Number.POSITIVE_INFINITY });
}

const liveCache = new Map<string, { live: boolean; untilMs: number }>();

/**
 * Whether the session an access token names is still live (exists, not revoked). Cached in
 * the isolate: "live" for LIVE_CACHE_MS, "revoked" until the token's own expiry, since a
 * revoked session never comes back. A token without `session_id` (none is issued by this
 * module) has no session to check.
 */
export async function sessionIsLive(
  db: D1Database,
  claims: { session_id?: string | undefined; exp: number },
): Promise<boolean> {
  const { session_id: sessionId, exp: tokenExp } = claims;
  if (sessionId === undefined) return true;
  const now = Date.now();
  const cached = liveCache.get(sessionId);
  if (cached && cached.untilMs > now) return cached.live;
  const [row] = await drizzle(db)
    .select({ revokedAt: sessions.revokedAt })
    .from(sessions)
    .where(eq(sessions.id, sessionId));
  const live = row !== undefined && row.revokedAt === null;
  if (liveCache.size >= LIVE_CACHE_MAX) liveCache.clear();
  liveCache.set(sessionId, { live, untilMs: live ? now + LIVE_CACHE_MS : tokenExp * 1000 });
  return live;
}
