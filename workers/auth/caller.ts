/**
 * Who may call the auth routes.
 * - Under a project (`/p/<id>/auth/v1`), like any project request, the project's anon or
 *   service key must come in `apikey` or `Authorization: Bearer`. The user-token endpoints
 *   (`/user`, `/logout`) are authenticated by the user's access token instead; a key sent
 *   beside it in `apikey` (supabase-js always sends one) must still be this project's.
 * - At the platform root no key is needed: the account pool is global.
 */
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { HearthError } from "../../shared/errors.ts";
import { apiKeys, projects, sessions } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { AuthError } from "./gotrue.ts";
import { verifyToken } from "./keys.ts";
import { type AccountRow, accountById } from "./users.ts";

const PROJECT_ID = /^[a-z0-9]{20}$/;

function bearerOf(c: Context<AppEnv>): string | undefined {
  const m = /^bearer\s+(.*)$/i.exec(c.req.header("authorization")?.trim() ?? "");
  const token = m?.[1]?.trim();
  return token ? token : undefined;
}

async function isLiveKeyOf(c: Context<AppEnv>, projectId: string, token: string): Promise<boolean> {
  let verified: Awaited<ReturnType<typeof verifyToken>>;
  try {
    verified = await verifyToken(readConfig(c.env).jwtSecret, token);
  } catch {
    return false;
  }
  if (verified.kind !== "key" || verified.claims.ref !== projectId) return false;
  const [row] = await drizzle(c.env.CATALOG)
    .select({ id: apiKeys.id })
    .from(apiKeys)
    .where(
      and(eq(apiKeys.id, verified.claims.jti), eq(apiKeys.projectId, projectId), isNull(apiKeys.revokedAt)),
    );
  return row !== undefined;
}

/** Checks the project credential of a request under `/p/<id>/auth/v1`. */
export async function checkProjectAccess(c: Context<AppEnv>, userEndpoint: boolean): Promise<void> {
  const projectId = c.req.param("projectId") ?? "";
  if (!PROJECT_ID.test(projectId)) {
    throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  }
  const apikey = c.req.header("apikey")?.trim() || undefined;
  const candidates = userEndpoint ? [apikey] : [apikey, bearerOf(c)];
  const present = candidates.filter((t): t is string => t !== undefined);
  if (present.length === 0) {
    if (!userEndpoint) {
      throw new AuthError(
        "no_authorization",
        "No API key found in request: send the project's anon key in the `apikey` header",
      );
    }
    const [project] = await drizzle(c.env.CATALOG)
      .select({ id: projects.id })
      .from(projects)
      .where(eq(projects.id, projectId));
    if (!project) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
    return;
  }
  for (const token of present) if (await isLiveKeyOf(c, projectId, token)) return;
  throw new AuthError("invalid_api_key", "Invalid API key: use this project's anon or service key");
}

export interface UserCaller {
  account: AccountRow;
  sessionId: string | undefined;
}

/**
 * The account behind `Authorization: Bearer <access token>` of `/user` and `/logout`. Unlike
 * the gateway's cached check, the session is read from D1 every time: these endpoints must
 * see a logout at once, whichever isolate handled it.
 */
export async function userCaller(c: Context<AppEnv>): Promise<UserCaller> {
  const token = bearerOf(c);
  if (!token) throw new AuthError("no_authorization", "This endpoint requires a Bearer token");
  let verified: Awaited<ReturnType<typeof verifyToken>>;
  try {
    verified = await verifyToken(readConfig(c.env).jwtSecret, token);
  } catch (err) {
    const why = err instanceof Error ? err.message : "unable to parse or verify signature";
    throw new AuthError("bad_jwt", `invalid JWT: ${why}`);
  }
  if (verified.kind !== "access") {
    throw new AuthError(
      "bad_jwt",
      "invalid claim: missing sub claim (a project key is not a user's access token)",
    );
  }
  const { sub, session_id: sessionId } = verified.claims;
  if (sessionId !== undefined) {
    const [session] = await drizzle(c.env.CATALOG)
      .select({ accountId: sessions.accountId, revokedAt: sessions.revokedAt })
      .from(sessions)
      .where(eq(sessions.id, sessionId));
    if (!session || session.revokedAt !== null || session.accountId !== sub) {
      throw new AuthError("session_not_found", "Session from session_id claim in JWT does not exist");
    }
  }
  const account = await accountById(c.env.CATALOG, sub);
  if (!account) throw new AuthError("user_not_found", "User from sub claim in JWT does not exist");
  return { account, sessionId };
}
