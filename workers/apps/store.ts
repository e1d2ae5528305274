/** Apps in the catalog: the row as stored, parsed back into typed values. */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { HearthError } from "../../shared/errors.ts";
import type { ProjectSchema } from "../../shared/schema.ts";
import type { Caller } from "../auth/admin.ts";
import { accounts, apps } from "../catalog/schema.ts";
import type { Env } from "../env.ts";

export interface App {
  clientId: string;
  ownerAccountId: string;
  name: string;
  redirectUris: string[];
  confidential: boolean;
  clientSecretHash: string | null;
  schema: ProjectSchema;
  createdAt: string;
}

export function appFromRow(row: typeof apps.$inferSelect): App {
  return {
    clientId: row.clientId,
    ownerAccountId: row.ownerAccountId,
    name: row.name,
    redirectUris: JSON.parse(row.redirectUris) as string[],
    confidential: row.confidential,
    clientSecretHash: row.clientSecretHash,
    schema: JSON.parse(row.schemaJson) as ProjectSchema,
    createdAt: row.createdAt,
  };
}

export async function loadApp(env: Env, clientId: string): Promise<App | null> {
  if (clientId === "" || clientId.length > 100) return null;
  const [row] = await drizzle(env.CATALOG).select().from(apps).where(eq(apps.clientId, clientId));
  return row ? appFromRow(row) : null;
}

/** An account caller whose account row exists (tokens outlive deleted accounts). */
export async function requireAccount(env: Env, caller: Caller): Promise<string> {
  if (caller.kind !== "account") {
    throw new HearthError(
      "HEARTH_FORBIDDEN",
      "This endpoint needs an account access token, not the admin key.",
    );
  }
  const [known] = await drizzle(env.CATALOG)
    .select({ id: accounts.id })
    .from(accounts)
    .where(eq(accounts.id, caller.accountId));
  if (!known)
    throw new HearthError("HEARTH_UNAUTHORIZED", "The access token names an account that does not exist.");
  return caller.accountId;
}
