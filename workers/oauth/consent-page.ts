/**
 * Server-rendered pages of `/oauth/authorize`: consent, sign-in, and errors. Every
 * interpolated value goes through hono/html's `html` tag, which escapes it.
 */
import { html } from "hono/html";
import type { App } from "../apps/store.ts";
import { rightsByTable } from "./scopes.ts";

type Params = Record<string, string | undefined>;

const STYLE = html`<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }
  table { border-collapse: collapse; width: 100%; } td { padding: .25rem 0; }
  button { font: inherit; padding: .5rem 1.25rem; margin-right: .5rem; }
  .error { color: #a00; }
</style>`;

function page(title: string, body: unknown) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer"><title>${title}</title>${STYLE}</head>
<body>${body}</body></html>`;
}

function hidden(params: Params) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`);
}

export function errorPage(error: string, description: string) {
  return page(
    "Authorization error",
    html`<h1>This app's request cannot be completed</h1>
<p class="error"><strong>${error}</strong>: ${description}</p>
<p>You were not redirected back to the app because its request could not be verified.</p>`,
  );
}

export function consentPage(opts: {
  app: App;
  scopes: string[];
  projectLabel: string;
  params: Params;
  csrf: string;
  email: string | null;
}) {
  const rows = [...rightsByTable(opts.scopes)].map(
    ([table, right]) =>
      html`<tr><td><code>${table}</code></td><td>${right === "write" ? "read and write" : "read"}</td></tr>`,
  );
  return page(
    `Allow ${opts.app.name}?`,
    html`<h1>Allow <em>${opts.app.name}</em> to use your data?</h1>
${opts.email ? html`<p>Signed in as ${opts.email}.</p>` : ""}
<p>The app asks for these tables in <strong>${opts.projectLabel}</strong>:</p>
<table>${rows}</table>
<p>The data stays yours: you can revoke this access at any time, and revoking never deletes data.</p>
<form method="post" action="/oauth/authorize">
${hidden(opts.params)}<input type="hidden" name="csrf_token" value="${opts.csrf}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}

/** `loginCsrf`: the form's login-CSRF token (session.ts `loginFormToken`). */
export function signInPage(opts: {
  appName: string;
  params: Params;
  message: string | null;
  loginCsrf: string;
}) {
  return page(
    "Sign in to Hearth",
    html`<h1>Sign in to continue to <em>${opts.appName}</em></h1>
${opts.message ? html`<p class="error">${opts.message}</p>` : ""}
<form method="post" action="/oauth/authorize">
${hidden(opts.params)}<input type="hidden" name="action" value="signin">
<input type="hidden" name="login_csrf" value="${opts.loginCsrf}">
<p><label>Email<br><input type="email" name="email" required autocomplete="email"></label></p>
<p><label>Password<br><input type="password" name="password" required autocomplete="current-password"></label></p>
<button type="submit">Sign in</button>
</form>`,
  );
}
