/**
 * `POST /v1/apps`, `GET /v1/apps`: apps registered by a developer account. An app declares
 * the namespaced tables it uses; consent later applies them to the user's project.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import { readJsonBody } from "../../shared/rest/bodies.ts";
import { parseProjectSchema } from "../../shared/schema.ts";
import { platformCaller } from "../auth/admin.ts";
import { sha256Hex } from "../auth/keys.ts";
import { apps } from "../catalog/schema.ts";
import type { AppEnv } from "../env.ts";
import { randomToken } from "../oauth/tokens.ts";
import { appFromRow, requireAccount } from "./store.ts";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * OAuth 2.1 §2.3.1 / RFC 8252: https anywhere, http only on loopback, or a private-use
 * scheme (reverse domain, `com.example.app:/cb`) for native apps; never a fragment.
 */
const RedirectUriSchema = z.string().refine((s) => {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return false;
  }
  if (url.hash !== "" || s.includes("#")) return false;
  if (url.protocol === "https:") return true;
  if (url.protocol === "http:") return LOOPBACK.has(url.hostname);
  return /^[a-z][a-z0-9+-]*\.[a-z0-9+\-.]+:$/.test(url.protocol);
}, "must be an absolute https URL (http only for localhost), or a reverse-domain scheme, without a fragment");

const CreateAppSchema = z
  .object({
    name: z.string().trim().min(1, "must not be empty").max(100, "must be at most 100 characters"),
    redirectUris: z.array(RedirectUriSchema).min(1, "at least one redirect URI is required").max(10),
    confidential: z.boolean().default(false),
    schema: z.unknown(),
  })
  .strict();

function badApp(message: string, details: string | null = null): HearthError {
  return new HearthError("HEARTH_BAD_REQUEST", `Invalid app: ${message}`, { details });
}

export const appsRoutes = new Hono<AppEnv>();

appsRoutes.post("/", async (c) => {
  const accountId = await requireAccount(c.env, await platformCaller(c));
  const body = await readJsonBody(c.req.raw, 256 * 1024);
  if (body === undefined) throw badApp('the body must be JSON like {"name", "redirectUris", "schema"}');
  const parsed = CreateAppSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badApp(`${issue.path.join(".") || "body"}: ${issue.message}`);
  }
  const schema = parseProjectSchema(parsed.data.schema);
  if (schema.migrations) throw badApp("schema.migrations: an app's schema is additive only");
  const names = Object.keys(schema.tables);
  if (names.length === 0) throw badApp("schema.tables: declare at least one table");
  const bare = names.filter((n) => !n.includes("."));
  if (bare.length > 0) {
    throw badApp(
      `schema.tables: table names must be namespaced (com.example.todos): ${bare.join(", ")}`,
      "Namespaces keep the tables of unrelated apps apart in a user's store.",
    );
  }
  const clientId = `app_${randomToken("").slice(0, 24)}`;
  const clientSecret = parsed.data.confidential ? randomToken("hcs_") : null;
  await drizzle(c.env.CATALOG)
    .insert(apps)
    .values({
      clientId,
      ownerAccountId: accountId,
      name: parsed.data.name,
      redirectUris: JSON.stringify(parsed.data.redirectUris),
      confidential: parsed.data.confidential,
      clientSecretHash: clientSecret ? await sha256Hex(clientSecret) : null,
      schemaJson: JSON.stringify(schema),
      createdAt: new Date().toISOString(),
    });
  return c.json({ clientId, ...(clientSecret ? { clientSecret } : {}) }, 201);
});

appsRoutes.get("/", async (c) => {
  const accountId = await requireAccount(c.env, await platformCaller(c));
  const rows = await drizzle(c.env.CATALOG)
    .select()
    .from(apps)
    .where(eq(apps.ownerAccountId, accountId))
    .orderBy(apps.createdAt);
  return c.json(
    rows.map(appFromRow).map((a) => ({
      clientId: a.clientId,
      name: a.name,
      redirectUris: a.redirectUris,
      confidential: a.confidential,
      schema: a.schema,
      createdAt: a.createdAt,
    })),
  );
});
