/**
 * `GET /oauth/authorize` (consent page) and `POST /oauth/authorize` (the decision: JSON with
 * an account access token, or the page's form with the session cookie and CSRF token; or the
 * sign-in form, with its login cookie and login-CSRF token).
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import { readJsonBody } from "../../shared/rest/bodies.ts";
import { requireAccount } from "../apps/store.ts";
import { platformCaller } from "../auth/admin.ts";
import { accounts, projects } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { AuthorizeParamsSchema, type AuthorizeRequest, checkAuthorizeRequest } from "./authorize-request.ts";
import { decide } from "./consent.ts";
import { consentPage, errorPage, signInPage } from "./consent-page.ts";
import { oauthErrorResponse } from "./oauth-error.ts";
import {
  browserSession,
  checkCsrf,
  checkLoginForm,
  csrfToken,
  loginFormToken,
  OAUTH_COOKIE,
} from "./session.ts";
import { passwordSignIn } from "./signin.ts";

const DecisionSchema = z.enum(["approve", "deny"], { error: 'decision must be "approve" or "deny"' });
const FORM_REFUSED = "The form expired or did not come from this site; reload the page.";
// The pages must not be framed (clickjacking) nor cached (their forms carry cookie-bound tokens).
const PAGE_HEADERS = { "x-frame-options": "DENY", "cache-control": "no-store" };

function redirect(location: string, status: 302 | 303 = 302): Response {
  return new Response(null, { status, headers: { location, "cache-control": "no-store" } });
}

/** The authorize parameters only (drops decision, csrf_token, credentials...). */
function authorizeParams(input: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const key of Object.keys(AuthorizeParamsSchema.shape)) {
    const v = input[key];
    if (typeof v === "string") out[key] = v;
  }
  return out;
}

async function projectLabel(c: Context<AppEnv>, req: AuthorizeRequest): Promise<string> {
  if (req.projectId === undefined) return "your personal data store";
  const [p] = await drizzle(c.env.CATALOG)
    .select({ name: projects.name })
    .from(projects)
    .where(eq(projects.id, req.projectId));
  return p ? `the project "${p.name}"` : `project ${req.projectId}`;
}

export async function authorizeGet(c: Context<AppEnv>): Promise<Response> {
  const query = c.req.query();
  const check = await checkAuthorizeRequest(c.env, query);
  if (check.kind === "fatal") return c.html(errorPage(check.error.error, check.error.description), 400);
  if (check.kind === "redirect") return redirect(check.location);
  const params = authorizeParams(query);
  const session = await browserSession(c);
  if (!session) return signIn(c, check.req, params, null, 200);
  const [account] = await drizzle(c.env.CATALOG)
    .select({ email: accounts.email })
    .from(accounts)
    .where(eq(accounts.id, session.accountId));
  const page = consentPage({
    app: check.req.app,
    scopes: check.req.scopes,
    projectLabel: await projectLabel(c, check.req),
    params,
    csrf: await csrfToken(readConfig(c.env).jwtSecret, session.token),
    email: account?.email ?? null,
  });
  return c.html(page, 200, PAGE_HEADERS);
}

/** The sign-in form, with a login-CSRF token (and its cookie) of its own. */
async function signIn(
  c: Context<AppEnv>,
  req: AuthorizeRequest,
  params: Record<string, string | undefined>,
  message: string | null,
  status: 200 | 400 | 401,
): Promise<Response> {
  const loginCsrf = await loginFormToken(c, OAUTH_COOKIE);
  return c.html(signInPage({ appName: req.app.name, params, message, loginCsrf }), status, PAGE_HEADERS);
}

export async function authorizePost(c: Context<AppEnv>): Promise<Response> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") return authorizeForm(c);
  // JSON path: the account authenticates with its access token; any failure here is a
  // Hearth error (the caller is the user's own client, not the app).
  const accountId = await requireAccount(c.env, await platformCaller(c));
  const body = await readJsonBody(c.req.raw, 64 * 1024);
  if (body === undefined || typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      "The body must be a JSON object of the authorize parameters and decision.",
    );
  }
  const check = await checkAuthorizeRequest(c.env, authorizeParams(body as Record<string, unknown>));
  if (check.kind === "fatal") return oauthErrorResponse(check.error, c.get("requestId"));
  if (check.kind === "redirect") return redirect(check.location);
  const decision = DecisionSchema.safeParse((body as Record<string, unknown>).decision);
  if (!decision.success) throw new HearthError("HEARTH_BAD_REQUEST", decision.error.issues[0]!.message);
  return redirect(await decide(c.env, accountId, check.req, decision.data));
}

/** The consent page's form: sign-in, or the decision (session cookie + CSRF token). */
async function authorizeForm(c: Context<AppEnv>): Promise<Response> {
  const form = Object.fromEntries(new URLSearchParams(new TextDecoder().decode(await c.req.arrayBuffer())));
  const params = authorizeParams(form);
  const check = await checkAuthorizeRequest(c.env, params);
  if (check.kind === "fatal") return c.html(errorPage(check.error.error, check.error.description), 400);
  if (check.kind === "redirect") return redirect(check.location);
  const back = `/oauth/authorize?${new URLSearchParams(params as Record<string, string>)}`;
  if (form.action === "signin") {
    // Login CSRF: refused before the password is even looked at, so nothing is counted or set.
    if (!(await checkLoginForm(c, OAUTH_COOKIE, form.login_csrf))) {
      return c.html(errorPage("invalid_request", FORM_REFUSED), 403, PAGE_HEADERS);
    }
    const failure = await passwordSignIn(c, form.email ?? "", form.password ?? "");
    if (failure) return signIn(c, check.req, params, failure, 400);
    // c.redirect keeps the Set-Cookie header that the sign-in put on the context.
    return c.redirect(back, 303);
  }
  const session = await browserSession(c);
  if (!session) return signIn(c, check.req, params, "Please sign in first.", 401);
  if (!(await checkCsrf(readConfig(c.env).jwtSecret, session.token, form.csrf_token))) {
    return c.html(errorPage("invalid_request", FORM_REFUSED), 403, PAGE_HEADERS);
  }
  const decision = DecisionSchema.safeParse(form.decision);
  if (!decision.success) return c.html(errorPage("invalid_request", decision.error.issues[0]!.message), 400);
  return redirect(await decide(c.env, session.accountId, check.req, decision.data));
}
