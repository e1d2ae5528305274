/**
 * `GET /account/grants`, `DELETE /account/grants/:id`: the user's view of which apps may
 * reach which of their projects. Revoking stops access (the app's next request is a 401)
 * and never touches data.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { HearthError } from "../../shared/errors.ts";
import { requireAccount } from "../apps/store.ts";
import { platformCaller } from "../auth/admin.ts";
import { apps, grants } from "../catalog/schema.ts";
import type { AppEnv } from "../env.ts";
import { revokeGrant } from "../oauth/grants.ts";

export const accountGrantsRoutes = new Hono<AppEnv>();

accountGrantsRoutes.get("/", async (c) => {
  const accountId = await requireAccount(c.env, await platformCaller(c));
  const rows = await drizzle(c.env.CATALOG)
    .select({ grant: grants, appName: apps.name })
    .from(grants)
    .innerJoin(apps, eq(apps.clientId, grants.clientId))
    .where(and(eq(grants.accountId, accountId), isNull(grants.revokedAt)))
    .orderBy(desc(grants.createdAt));
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
  const [grant] = await drizzle(c.env.CATALOG)
    .select({ id: grants.id })
    .from(grants)
    .where(and(eq(grants.id, id), eq(grants.accountId, accountId)));
  if (!grant) throw new HearthError("HEARTH_NOT_FOUND", `No grant with id "${id}".`);
  await revokeGrant(c.env, grant.id); // idempotent: revoking twice is still 204
  return c.body(null, 204);
});
