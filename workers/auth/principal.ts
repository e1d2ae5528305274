/**
 * A bearer token → the principal of one project: a project key, an account's access token
 * (with its membership), or an app's token (with its live grant). The gateway runs it on
 * every request; the project's DO runs it again for realtime and sync sockets, where tokens
 * arrive inside frames and are re-checked while the socket lives.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { HearthError } from "../../shared/errors.ts";
import type { MemberRole, Principal } from "../../shared/principal.ts";
import { projectMembers, projects } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { appPrincipal } from "../oauth/app-principal.ts";
import { verifyToken } from "./keys.ts";
import { sessionIsLive } from "./sessions.ts";

/** How long a membership read on the request path is reused in the isolate. */
export const MEMBERSHIP_CACHE_MS = 5_000;
const MEMBERSHIP_CACHE_MAX = 10_000;
const membershipCache = new Map<string, { role: MemberRole | null; untilMs: number }>();

/**
 * An account's role in a project (owner, a member's role, or null), from one catalog query.
 * With `cached`, a role read in the last 5 seconds by this isolate is reused (as live
 * sessions and grants are): changes made through this isolate clear it at once
 * (`forgetMemberships`), other isolates see them within the 5 seconds.
 */
export async function membershipOf(
  db: D1Database,
  projectId: string,
  accountId: string,
  { cached = false }: { cached?: boolean } = {},
): Promise<MemberRole | null> {
  const key = `${projectId}\u0000${accountId}`;
  const now = Date.now();
  if (cached) {
    const hit = membershipCache.get(key);
    if (hit && hit.untilMs > now) return hit.role;
  }
  const [row] = await drizzle(db)
    .select({ owner: projects.ownerAccountId, role: projectMembers.role })
    .from(projects)
    .leftJoin(
      projectMembers,
      and(eq(projectMembers.projectId, projects.id), eq(projectMembers.accountId, accountId)),
    )
    .where(eq(projects.id, projectId));
  if (!row) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  const role: MemberRole | null = row.owner === accountId ? "owner" : (row.role ?? null);
  if (membershipCache.size >= MEMBERSHIP_CACHE_MAX) membershipCache.clear();
  membershipCache.set(key, { role, untilMs: now + MEMBERSHIP_CACHE_MS });
  return role;
}

/** Drops this isolate's cached memberships of a project (after adding, removing or deleting). */
export function forgetMemberships(projectId: string): void {
  const prefix = `${projectId}\u0000`;
  for (const key of membershipCache.keys()) if (key.startsWith(prefix)) membershipCache.delete(key);
}

export interface TokenPrincipal {
  principal: Principal;
  /** when the token stops being valid (ms since epoch); null for project keys */
  expiresAtMs: number | null;
}

/** Throws PGRST301 (401) for a bad, expired or revoked token, or another project's key. */
export async function principalForToken(env: Env, projectId: string, token: string): Promise<TokenPrincipal> {
  const verified = await verifyToken(readConfig(env).jwtSecret, token);
  if (verified.kind === "key") {
    if (verified.claims.ref !== projectId) {
      throw new HearthError("PGRST301", "This key belongs to another project.", {
        hint: "Use the anonKey or serviceKey returned when this project was created.",
      });
    }
    return {
      principal: { role: verified.claims.role, projectId, keyId: verified.claims.jti },
      expiresAtMs: null,
    };
  }
  const expiresAtMs = verified.claims.exp * 1000;
  if (verified.kind === "app") {
    return { principal: await appPrincipal(env, verified.claims, projectId), expiresAtMs };
  }
  // An account's access token is refused once its session is revoked (logout, refresh-token
  // reuse, password change); see sessionIsLive for the cache.
  if (!(await sessionIsLive(env.CATALOG, verified.claims))) {
    throw new HearthError("PGRST301", "JWT session has ended (signed out or revoked).", {
      hint: "Sign in again (or refresh the session) to get a new access token.",
    });
  }
  const membership = await membershipOf(env.CATALOG, projectId, verified.claims.sub, { cached: true });
  return {
    principal: { role: "authenticated", projectId, userId: verified.claims.sub, membership },
    expiresAtMs,
  };
}
