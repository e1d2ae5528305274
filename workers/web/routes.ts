/**
 * `/me`: the "My data" page, server-rendered, working without JavaScript. The browser session
 * is the consent page's mechanism (workers/oauth/session.ts) with its own cookie scoped to
 * /me; every POST carries the CSRF token bound to it, and the sign-in form its login-CSRF
 * token bound to a pre-session cookie. Project data comes from each project's
 * Durable Object through its REST and export paths, as the signed-in account.
 */

import type { Context } from "hono";
import { Hono } from "hono";
import { HearthError, hearthErrorIn, retryAfterOf } from "../../shared/errors.ts";
import { liveGrants, revokeOwnGrant } from "../account/grants.ts";
import { visibleProject } from "../admin/access.ts";
import { revokeSessions } from "../auth/sessions.ts";
import { accountById } from "../auth/users.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import {
  type BrowserSession,
  browserSession,
  type CookieScope,
  checkCsrf,
  checkLoginForm,
  clearBrowserSession,
  csrfToken,
  loginFormToken,
} from "../oauth/session.ts";
import { passwordSignIn } from "../oauth/signin.ts";
import { errorPage } from "./layout.ts";
import { summarizeProjects } from "./overview.ts";
import { asAccount, PageDataError, readableTables, rowPage } from "./project-data.ts";
import { homeView, signInView, tableView } from "./views.ts";

export const ME_COOKIE: CookieScope = { name: "hearth_me_session", path: "/me", login: "hearth_me_login" };
const MAX_FORM_BYTES = 16 * 1024;

const NOTICES: Record<string, string> = {
  revoked: "Access revoked: the app can no longer reach your data. Your tables and rows stay.",
};

interface Viewer extends BrowserSession {
  email: string;
  csrf: string;
}

async function viewer(c: Context<AppEnv>): Promise<Viewer | null> {
  const session = await browserSession(c, ME_COOKIE);
  if (!session) return null;
  const account = await accountById(c.env.CATALOG, session.accountId);
  if (!account) return null;
  return {
    ...session,
    email: account.email,
    csrf: await csrfToken(readConfig(c.env).jwtSecret, session.token),
  };
}

async function readForm(c: Context<AppEnv>): Promise<Record<string, string>> {
  if (Number(c.req.header("content-length") ?? 0) > MAX_FORM_BYTES) {
    throw new HearthError("HEARTH_PAYLOAD_TOO_LARGE", "The form is larger than a sign-in or a button needs.");
  }
  // arrayBuffer, not text(): workerd warns when a form body is read as text (docs/gotchas.md).
  const body = new TextDecoder().decode(await c.req.arrayBuffer());
  return Object.fromEntries(new URLSearchParams(body));
}

const FORM_REFUSED = "The form expired or did not come from this page; reload it.";

/** The sign-in form, with a login-CSRF token (and its cookie) of its own. */
async function signIn(c: Context<AppEnv>, message: string | null, email = "", status: 200 | 400 = 200) {
  const loginCsrf = await loginFormToken(c, ME_COOKIE);
  return c.html(signInView({ loginCsrf, message, email }), status);
}

/** The viewer of a POST whose CSRF token matches its session; null sends it to sign in. */
async function formViewer(c: Context<AppEnv>, form: Record<string, string>): Promise<Viewer | null> {
  const v = await viewer(c);
  if (!v) return null;
  if (!(await checkCsrf(readConfig(c.env).jwtSecret, v.token, form.csrf_token))) {
    throw new HearthError("HEARTH_FORBIDDEN", FORM_REFUSED);
  }
  return v;
}

export const meRoutes = new Hono<AppEnv>();

// Pages with account data: never cached, never framed (clickjacking), no script at all.
meRoutes.use("*", async (c, next) => {
  await next();
  const h = c.res.headers;
  h.set("cache-control", "no-store");
  h.set("x-frame-options", "DENY");
  h.set("x-content-type-options", "nosniff");
  h.set("referrer-policy", "no-referrer");
  h.set(
    "content-security-policy",
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
});

meRoutes.get("/", async (c) => {
  const v = await viewer(c);
  if (!v) return signIn(c, null);
  const { projects, names } = await summarizeProjects(c, v.accountId);
  const grants = (await liveGrants(c.env, v.accountId)).map(({ grant, appName }) => ({
    id: grant.id,
    appName,
    projectName: names.get(grant.projectId) ?? grant.projectId,
    scopes: grant.scopes.split(" "),
    createdAt: grant.createdAt,
    lastUsedAt: grant.lastUsedAt,
  }));
  const notice = NOTICES[c.req.query("notice") ?? ""] ?? null;
  return c.html(homeView({ email: v.email, csrf: v.csrf, notice, projects, grants }));
});

meRoutes.post("/signin", async (c) => {
  const form = await readForm(c);
  // Login CSRF: refused before the password is even looked at, so nothing is counted or set.
  if (!(await checkLoginForm(c, ME_COOKIE, form.login_csrf)))
    throw new HearthError("HEARTH_FORBIDDEN", FORM_REFUSED);
  const failure = await passwordSignIn(c, form.email ?? "", form.password ?? "", ME_COOKIE);
  if (failure) return signIn(c, failure, form.email ?? "", 400);
  // c.redirect keeps the Set-Cookie header the sign-in put on the context.
  return c.redirect("/me", 303);
});

meRoutes.post("/signout", async (c) => {
  const v = await formViewer(c, await readForm(c));
  // Ends the session itself, not just the cookie: a copied cookie stops working too.
  if (v?.sessionId !== undefined) await revokeSessions(c.env, { sessionId: v.sessionId });
  clearBrowserSession(c, ME_COOKIE);
  return c.redirect("/me", 303);
});

meRoutes.post("/grants/:id/revoke", async (c) => {
  const v = await formViewer(c, await readForm(c));
  if (!v) return c.redirect("/me", 303);
  if (!(await revokeOwnGrant(c.env, v.accountId, c.req.param("id")))) {
    throw new HearthError("HEARTH_NOT_FOUND", "No such grant: it may belong to another account.");
  }
  return c.redirect("/me?notice=revoked", 303);
});

/** The project of the `:id` route parameter, as the signed-in account may see it (404 otherwise). */
async function viewersProject(c: Context<AppEnv>, v: Viewer) {
  const { project } = await visibleProject(
    c.env,
    { kind: "account", accountId: v.accountId },
    c.req.param("id") ?? "",
  );
  return project;
}

meRoutes.get("/projects/:id/tables/:table", async (c) => {
  const v = await viewer(c);
  if (!v) return c.redirect("/me");
  const project = await viewersProject(c, v);
  const table = c.req.param("table");
  const columns = (await readableTables(c, v.accountId, project.id)).get(table);
  if (!columns)
    throw new HearthError("HEARTH_NOT_FOUND", `This project has no table "${table}" you can read.`);
  const requested = Number(c.req.query("page") ?? "1");
  const pageNo = Number.isSafeInteger(requested) && requested >= 1 && requested <= 1_000_000 ? requested : 1;
  const { rows, total } = await rowPage(c, v.accountId, project.id, table, pageNo);
  // Columns the document does not list (none today) still show, after the known ones.
  const all = [...new Set([...columns, ...rows.flatMap((r) => Object.keys(r))])];
  return c.html(
    tableView({ email: v.email, csrf: v.csrf, project, table, columns: all, rows, total, pageNo }),
  );
});

meRoutes.get("/projects/:id/export", async (c) => {
  const v = await viewer(c);
  if (!v) return c.redirect("/me");
  const project = await viewersProject(c, v);
  const res = await asAccount(c, v.accountId, project.id, "/export");
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new PageDataError(res.status, "", body.message ?? "The export failed.");
  }
  // A stub's Response has immutable headers; the middleware above adds some.
  return new Response(res.body, res);
});

meRoutes.all("*", () => {
  throw new HearthError("HEARTH_NOT_FOUND", "There is no such page.");
});

meRoutes.onError((err, c) => {
  const signedIn = c.req.header("cookie")?.includes(`${ME_COOKIE.name}=`) ?? false;
  const known = err instanceof PageDataError ? err : hearthErrorIn(err);
  if (known) {
    const title =
      known.status === 404
        ? "Not found"
        : known.status === 403
          ? "Not allowed"
          : known.status === 503
            ? "Try again in a moment"
            : "Request refused";
    return c.html(errorPage(title, known.message, signedIn), known.status as 400, retryAfterOf(known));
  }
  console.error(`[${c.get("requestId")}] /me failed`, err);
  return c.html(errorPage("Something went wrong", "The page could not be shown; try again.", signedIn), 500);
});
