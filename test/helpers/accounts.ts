/**
 * Accounts for tests that need an account token without going through signup: a catalog
 * row plus an access token signed like the accounts module signs them (without a session,
 * which the gateway then does not check).
 */
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";

export const TEST_JWT_SECRET = new TextEncoder().encode("test-jwt-secret-0123456789abcdef0123456789abcdef");
const catalog = (env as unknown as { CATALOG: D1Database }).CATALOG;

/** Creates account `id` (email `<id>@example.test`) if needed and returns an access token for it. */
export async function account(id: string): Promise<string> {
  const now = new Date().toISOString();
  await catalog
    .prepare("INSERT OR IGNORE INTO accounts (id, email, created_at, updated_at) VALUES (?, ?, ?, ?)")
    .bind(id, `${id}@example.test`, now, now)
    .run();
  return accessToken(id);
}

/** An access token for `sub` (the account row is not created). */
export function accessToken(sub: string): Promise<string> {
  return new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer("hearth")
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(TEST_JWT_SECRET);
}
