/**
 * The shell of the "My data" pages: plain HTML that works without JavaScript. Every
 * interpolated value goes through hono/html's `html` tag, which escapes it; nothing here
 * uses `raw`.
 */
import { html } from "hono/html";

const STYLE = html`<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
  header { display: flex; justify-content: space-between; align-items: center; gap: 1rem; flex-wrap: wrap;
    border-bottom: 1px solid #ccc; padding-bottom: .5rem; }
  header p, header form { margin: 0; }
  section { margin-top: 2rem; }
  article { border: 1px solid #ddd; border-radius: 6px; padding: .25rem 1rem 1rem; margin: 1rem 0; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.null { color: #666; font-style: italic; }
  .scroll { overflow-x: auto; }
  .rows td { font-family: ui-monospace, monospace; font-size: .9rem; white-space: pre-wrap; word-break: break-word; }
  button { font: inherit; padding: .3rem 1rem; }
  a { color: #0645ad; }
  .error { color: #a00; }
  .notice { background: #eef7ee; border: 1px solid #9c9; padding: .5rem 1rem; }
  .badge { font-size: .8rem; background: #eee; border-radius: 4px; padding: 0 .4rem; font-weight: normal; }
  .vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
</style>`;

export function page(title: string, body: unknown) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${title} · Hearth</title>${STYLE}</head>
<body>${body}</body></html>`;
}

/** A POST form of one button, carrying the CSRF token bound to the session cookie. */
export function postButton(action: string, csrf: string, label: unknown) {
  return html`<form method="post" action="${action}"><input type="hidden" name="csrf_token" value="${csrf}"><button type="submit">${label}</button></form>`;
}

/** The bar on top of every signed-in page: who is signed in, and the sign-out button. */
export function accountBar(email: string, csrf: string) {
  return html`<header><p><a href="/me">Hearth · My data</a></p>
<p>Signed in as <strong>${email}</strong></p>${postButton("/me/signout", csrf, "Sign out")}</header>`;
}

/** `2026-05-01T12:34:56.789Z` → `2026-05-01 12:34 UTC`; null → the fallback. */
export function when(iso: string | null, fallback: string): string {
  if (iso === null) return fallback;
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

export function errorPage(title: string, message: string, signedIn: boolean) {
  return page(
    title,
    html`<main><h1>${title}</h1><p class="error">${message}</p>
<p><a href="/me">${signedIn ? "Back to My data" : "Sign in to My data"}</a></p></main>`,
  );
}
