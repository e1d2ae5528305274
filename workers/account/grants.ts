/**
 * `GET /account/grants`, `DELETE /account/grants/:id`: the user's view of which apps may
 * reach which of their projects. Revoking stops access (the app's next request is a 401)
 * and never touches data. The "My data" page (workers/web/) lists and revokes through the
 * same two functions.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { HearthError } from "../../shared/errors.ts";
import { requireAccount } from "../apps/store.ts";
import { platformCaller } from "../auth/admin.ts";
import { apps, grants } from "../catalog/schema.ts";
import type { AppEnv, Env } from "../env.ts";
import { revokeGrant } from "../oauth/grants.ts";

/** The account's live grants, newest first, with each app's name. */
export async function liveGrants(env: Env, accountId: string) {
  return drizzle(env.CATALOG)
    .select({ grant: grants, appName: apps.name })
    .from(grants)
    .innerJoin(apps, eq(apps.clientId, grants.clientId))
    .where(and(eq(grants.accountId, accountId), isNull(grants.revokedAt)))
    .orderBy(desc(grants.createdAt));
}

/** Revokes the account's grant `id`; false when the account has no grant of that id. */
export async function revokeOwnGrant(env: Env, accountId: string, id: string): Promise<boolean> {
  const [grant] = await drizzle(env.CATALOG)
    .select({ id: grants.id })
    .from(grants)
    .where(and(eq(grants.id, id), eq(grants.accountId, accountId)));
  if (!grant) return false;
  await revokeGrant(env, grant.id); // idempotent: revoking twice still succeeds
  return true;
}

export const accountGrantsRoutes = new Hono<AppEnv>();

accountGrantsRoutes.get("/", async (c) => {
  const accountId = await requireAccount(c.env, await platformCaller(c));
  const rows = await liveGrants(c.env, accountId);
  return c.json(
    rows.map(({ grant, appName }) => ({
      id: grant.id,
      app: { clientId: grant.clientId, name: appName },
      projectId: grant.projectId,
      scopes: grant.scopes.split(" "),
      createdAt: grant.createdAt,
      lastUsedAt: grant.lastUsedAt,
    })),
  );
});

accountGrantsRoutes.delete("/:id", async (c) => {
  const accountId = await requireAccount(c.env, await platformCaller(c));
  const id = c.req.param("id");
  if (!(await revokeOwnGrant(c.env, accountId, id))) {
    throw new HearthError("HEARTH_NOT_FOUND", `No grant with id "${id}".`);
  }
  return c.body(null, 204);
});
