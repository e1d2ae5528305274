/**
 * Password sign-in on the server-rendered pages (consent, "My data"), through the accounts
 * module (workers/auth/): the same checks and rate limit as
 * `POST /auth/v1/token?grant_type=password`. On success the session's access token goes into
 * the page's HttpOnly cookie (`scope`).
 */
import type { Context } from "hono";
import { clientIp } from "../auth/gotrue.ts";
import { burnPasswordCheck, verifyPassword } from "../auth/passwords.ts";
import { checkRateLimit } from "../auth/rate-limit.ts";
import { startSession } from "../auth/sessions.ts";
import { accountByEmail } from "../auth/users.ts";
import type { AppEnv } from "../env.ts";
import { type CookieScope, OAUTH_COOKIE, setBrowserSession } from "./session.ts";

/** Null on success (cookie set), else the message to show on the sign-in page. */
export async function passwordSignIn(
  c: Context<AppEnv>,
  rawEmail: string,
  password: string,
  scope: CookieScope = OAUTH_COOKIE,
): Promise<string | null> {
  const email = rawEmail.trim().toLowerCase();
  if (email === "" || password === "" || password.length > 1024) return "Enter your email and password.";
  const ip = clientIp(c.req.raw.headers);
  try {
    await checkRateLimit(c.env.CATALOG, "signin", { email, ip });
  } catch {
    return "Too many sign-in attempts; wait a minute and try again.";
  }
  const account = await accountByEmail(c.env.CATALOG, email);
  // Unknown accounts cost the same time as a wrong password, so timing reveals no email.
  let ok = false;
  if (account?.passwordHash) ok = await verifyPassword(password, account.passwordHash);
  else await burnPasswordCheck(password);
  if (!account || !ok) return "Invalid email or password.";
  if (account.emailConfirmedAt === null) return "Confirm your email address first.";
  const session = await startSession(c.env, account, { ip, userAgent: c.req.header("user-agent") ?? null });
  setBrowserSession(c, session.access_token, session.expires_in, scope);
  return null;
}
