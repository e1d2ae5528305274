/**
 * Browser sessions of the server-rendered pages (the consent page under /oauth, "My data"
 * under /me): an HttpOnly cookie holding the account's access token from a password sign-in
 * on the page, scoped to the page's path. The CSRF token of a page's forms is an HMAC of that
 * cookie, so a page that cannot read the cookie cannot forge it; SameSite=Lax keeps the
 * cookie off cross-site POSTs in the first place.
 *
 * The sign-in forms come before any session, so they get a pre-session double-submit token
 * against login CSRF (another site posting its own credentials to sign the victim into the
 * attacker's account): rendering the form sets a short-lived random cookie (`scope.login`)
 * and puts an HMAC of it in the form; the POST must bring both, from a same-origin page.
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
  /** The pre-session cookie of the page's sign-in form (login CSRF), on the same path. */
  login: string;
}

export const SESSION_COOKIE = "hearth_oauth_session";
export const OAUTH_COOKIE: CookieScope = {
  name: SESSION_COOKIE,
  path: "/oauth",
  login: "hearth_oauth_login",
};

/** How long a sign-in form stays usable; rendering the form again renews it. */
export const LOGIN_FORM_TTL_S = 60 * 60;
/** A login cookie's value: 32 random bytes, base64url. */
const LOGIN_NONCE = /^[A-Za-z0-9_-]{43}$/;

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

function isHttps(c: Context<AppEnv>): boolean {
  return new URL(c.req.url).protocol === "https:";
}

export function setBrowserSession(
  c: Context<AppEnv>,
  accessToken: string,
  maxAgeS: number,
  scope: CookieScope = OAUTH_COOKIE,
): void {
  setCookie(c, scope.name, accessToken, {
    httpOnly: true,
    secure: isHttps(c),
    sameSite: "Lax",
    path: scope.path,
    maxAge: maxAgeS,
  });
}

export function clearBrowserSession(c: Context<AppEnv>, scope: CookieScope): void {
  deleteCookie(c, scope.name, { path: scope.path, secure: isHttps(c) });
}

/** HMAC-SHA-256 of `message` under the deployment's secret, base64url. */
async function hmac(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message));
  return base64url(new Uint8Array(mac));
}

export function csrfToken(secret: string, sessionToken: string): Promise<string> {
  return hmac(secret, `oauth-csrf:${sessionToken}`);
}

export async function checkCsrf(
  secret: string,
  sessionToken: string,
  presented: string | undefined,
): Promise<boolean> {
  if (!presented) return false;
  return sameHash(await csrfToken(secret, sessionToken), presented);
}

/** The sign-in form's token for a login cookie; the label keeps it apart from `csrfToken`. */
function loginToken(secret: string, scope: CookieScope, nonce: string): Promise<string> {
  return hmac(secret, `login-csrf:${scope.login}:${nonce}`);
}

/**
 * For a sign-in form about to be rendered: sets (or renews) the page's login cookie and
 * returns the value of the form's hidden `login_csrf` field. A cookie the browser already
 * holds is kept, so a sign-in form open in another tab stays valid.
 */
export function loginFormToken(c: Context<AppEnv>, scope: CookieScope): Promise<string> {
  const held = getCookie(c, scope.login);
  const nonce =
    held !== undefined && LOGIN_NONCE.test(held)
      ? held
      : base64url(crypto.getRandomValues(new Uint8Array(32)));
  setCookie(c, scope.login, nonce, {
    httpOnly: true,
    secure: isHttps(c),
    sameSite: "Lax",
    path: scope.path,
    maxAge: LOGIN_FORM_TTL_S,
  });
  return loginToken(readConfig(c.env).jwtSecret, scope, nonce);
}

/**
 * Whether a posted sign-in form is this browser's own form of this site: not sent from
 * another site (when the browser says where it comes from), and carrying the token that
 * matches its login cookie.
 */
export async function checkLoginForm(
  c: Context<AppEnv>,
  scope: CookieScope,
  presented: string | undefined,
): Promise<boolean> {
  if (fromAnotherSite(c)) return false;
  const nonce = getCookie(c, scope.login);
  if (nonce === undefined || !LOGIN_NONCE.test(nonce) || !presented) return false;
  return sameHash(await loginToken(readConfig(c.env).jwtSecret, scope, nonce), presented);
}

/**
 * Defense in depth beside the token, from the headers browsers add to a form POST. Only
 * `same-origin` (or `none`, a user's own navigation) passes `Sec-Fetch-Site`: `same-site`
 * is refused too, because a sibling subdomain can plant cookies for this host. `Origin:
 * null` passes: the pages are served with `no-referrer`, under which browsers send exactly
 * that with their own form posts. Clients that send neither header rely on the token alone.
 */
function fromAnotherSite(c: Context<AppEnv>): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") return true;
  const origin = c.req.header("origin");
  return origin !== undefined && origin !== "null" && origin !== new URL(c.req.url).origin;
}
