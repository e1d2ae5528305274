/**
 * Browser sessions of the server-rendered pages (the consent page under /oauth, "My data"
 * under /me): an HttpOnly cookie holding the account's access token from a password sign-in
 * on the page, scoped to the page's path. The CSRF token of a page's forms is an HMAC of that
 * cookie, so a page that cannot read the cookie cannot forge it; SameSite=Lax keeps the
 * cookie off cross-site POSTs in the first place.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { verifyToken } from "../auth/keys.ts";
import { sessionIsLive } from "../auth/sessions.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { base64url, sameHash } from "./tokens.ts";

/** Which cookie a page uses: each page has its own, so signing out of one leaves the other. */
export interface CookieScope {
  name: string;
  path: string;
}

export const SESSION_COOKIE = "hearth_oauth_session";
export const OAUTH_COOKIE: CookieScope = { name: SESSION_COOKIE, path: "/oauth" };

export interface BrowserSession {
  token: string;
  accountId: string;
  sessionId: string | undefined;
}

/** The cookie's session, or null when it is missing, invalid, expired or signed out. */
export async function browserSession(
  c: Context<AppEnv>,
  scope: CookieScope = OAUTH_COOKIE,
): Promise<BrowserSession | null> {
  const token = getCookie(c, scope.name);
  if (!token) return null;
  try {
    const verified = await verifyToken(readConfig(c.env).jwtSecret, token);
    if (verified.kind !== "access") return null;
    // A signed-out session must not keep working from a cookie that outlived it.
    if (!(await sessionIsLive(c.env.CATALOG, verified.claims))) return null;
    return { token, accountId: verified.claims.sub, sessionId: verified.claims.session_id };
  } catch {
    return null;
  }
}

export function setBrowserSession(
  c: Context<AppEnv>,
  accessToken: string,
  maxAgeS: number,
  scope: CookieScope = OAUTH_COOKIE,
): void {
  setCookie(c, scope.name, accessToken, {
    httpOnly: true,
    secure: new URL(c.req.url).protocol === "https:",
    sameSite: "Lax",
    path: scope.path,
    maxAge: maxAgeS,
  });
}

export function clearBrowserSession(c: Context<AppEnv>, scope: CookieScope): void {
  deleteCookie(c, scope.name, { path: scope.path, secure: new URL(c.req.url).protocol === "https:" });
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
