/**
 * The consent page's browser session: an HttpOnly cookie holding the account's access token
 * (from a password sign-in on the page), scoped to /oauth. The CSRF token of the consent
 * form is an HMAC of that cookie, so a page that cannot read the cookie cannot forge it;
 * SameSite=Lax keeps the cookie off cross-site POSTs in the first place.
 */
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { verifyToken } from "../auth/keys.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { base64url, sameHash } from "./tokens.ts";

export const SESSION_COOKIE = "hearth_oauth_session";

export interface BrowserSession {
  token: string;
  accountId: string;
}

export async function browserSession(c: Context<AppEnv>): Promise<BrowserSession | null> {
  const token = getCookie(c, SESSION_COOKIE);
  if (!token) return null;
  try {
    const verified = await verifyToken(readConfig(c.env).jwtSecret, token);
    if (verified.kind !== "access") return null;
    return { token, accountId: verified.claims.sub };
  } catch {
    return null;
  }
}

export function setBrowserSession(c: Context<AppEnv>, accessToken: string, maxAgeS: number): void {
  setCookie(c, SESSION_COOKIE, accessToken, {
    httpOnly: true,
    secure: new URL(c.req.url).protocol === "https:",
    sameSite: "Lax",
    path: "/oauth",
    maxAge: maxAgeS,
  });
}

export async function csrfToken(secret: string, sessionToken: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`oauth-csrf:${sessionToken}`));
  return base64url(new Uint8Array(mac));
}

export async function checkCsrf(
  secret: string,
  sessionToken: string,
  presented: string | undefined,
): Promise<boolean> {
  if (!presented) return false;
  return sameHash(await csrfToken(secret, sessionToken), presented);
}
