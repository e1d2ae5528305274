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

export async function membershipOf(
  db: D1Database,
  projectId: string,
  accountId: string,
): Promise<MemberRole | null> {
  const orm = drizzle(db);
  const [project] = await orm
    .select({ owner: projects.ownerAccountId })
    .from(projects)
    .where(eq(projects.id, projectId));
  if (!project) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  if (project.owner === accountId) return "owner";
  const [member] = await orm
    .select({ role: projectMembers.role })
    .from(projectMembers)
    .where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.accountId, accountId)));
  return member?.role ?? null;
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
  const membership = await membershipOf(env.CATALOG, projectId, verified.claims.sub);
  return {
    principal: { role: "authenticated", projectId, userId: verified.claims.sub, membership },
    expiresAtMs,
  };
}
