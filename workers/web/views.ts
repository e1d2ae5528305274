/**
 * The "My data" pages: sign-in, the overview (projects, tables, row counts, apps with access)
 * and one table's rows. Views take plain data; workers/web/routes.ts fetches it.
 */
import { html } from "hono/html";
import type { MemberRole } from "../../shared/principal.ts";
import { rightsByTable } from "../oauth/scopes.ts";
import { accountBar, page, postButton, when } from "./layout.ts";
import { PAGE_SIZE } from "./project-data.ts";

export interface TableSummary {
  name: string;
  rows: number | null;
}

export interface ProjectSummary {
  id: string;
  name: string;
  personal: boolean;
  role: MemberRole;
  tables: TableSummary[];
  /** Why the tables could not be listed, when they could not. */
  error: string | null;
}

export interface GrantSummary {
  id: string;
  appName: string;
  projectName: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
}

export function tableHref(projectId: string, table: string, pageNo = 1): string {
  const base = `/me/projects/${encodeURIComponent(projectId)}/tables/${encodeURIComponent(table)}`;
  return pageNo > 1 ? `${base}?page=${pageNo}` : base;
}

/** `loginCsrf`: the form's login-CSRF token (workers/oauth/session.ts `loginFormToken`). */
export function signInView(opts: { loginCsrf: string; message: string | null; email?: string }) {
  return page(
    "Sign in",
    html`<main><h1>Sign in to see your data</h1>
${opts.message ? html`<p class="error" role="alert">${opts.message}</p>` : ""}
<form method="post" action="/me/signin"><input type="hidden" name="login_csrf" value="${opts.loginCsrf}">
<p><label for="email">Email</label><br><input id="email" type="email" name="email" value="${opts.email ?? ""}" required autocomplete="email"></p>
<p><label for="password">Password</label><br><input id="password" type="password" name="password" required autocomplete="current-password"></p>
<p><button type="submit">Sign in</button></p>
</form></main>`,
  );
}

function projectView(p: ProjectSummary) {
  const title = html`${p.name}${p.personal ? html` <span class="badge">personal data store</span>` : ""}`;
  const tables =
    p.error !== null
      ? html`<p class="error">The tables could not be listed: ${p.error}</p>`
      : p.tables.length === 0
        ? html`<p>No tables yet.</p>`
        : html`<table><caption class="vh">Tables of ${p.name}</caption>
<thead><tr><th scope="col">Table</th><th scope="col">Rows</th></tr></thead>
<tbody>${p.tables.map(
            (t) =>
              html`<tr><th scope="row"><a href="${tableHref(p.id, t.name)}"><code>${t.name}</code></a></th><td class="num">${t.rows === null ? "?" : t.rows}</td></tr>`,
          )}</tbody></table>`;
  // Exporting needs the owner (the DO refuses members); only the owner gets the link.
  const exportLink =
    p.role === "owner"
      ? html` · <a href="/me/projects/${p.id}/export" download>Export<span class="vh"> ${p.name}</span> (zip)</a>`
      : "";
  return html`<article aria-labelledby="project-${p.id}"><h3 id="project-${p.id}">${title}</h3>
<p>Your role: ${p.role}${exportLink}</p>${tables}</article>`;
}

function grantRow(g: GrantSummary, csrf: string) {
  const rights = [...rightsByTable(g.scopes)].map(
    ([table, right]) =>
      html`<li><code>${table}</code>: ${right === "write" ? "read and write" : "read"}</li>`,
  );
  return html`<tr><th scope="row">${g.appName}</th><td>${g.projectName}</td><td><ul>${rights}</ul></td>
<td>${when(g.createdAt, "")}</td><td>${when(g.lastUsedAt, "never")}</td>
<td>${postButton(`/me/grants/${encodeURIComponent(g.id)}/revoke`, csrf, html`Revoke<span class="vh"> access of ${g.appName}</span>`)}</td></tr>`;
}

export function homeView(opts: {
  email: string;
  csrf: string;
  notice: string | null;
  projects: ProjectSummary[];
  grants: GrantSummary[];
}) {
  const grants =
    opts.grants.length === 0
      ? html`<p>No app has access to your data.</p>`
      : html`<table><caption class="vh">Apps with access</caption>
<thead><tr><th scope="col">App</th><th scope="col">Project</th><th scope="col">Access</th><th scope="col">Granted</th><th scope="col">Last used</th><th scope="col"><span class="vh">Action</span></th></tr></thead>
<tbody>${opts.grants.map((g) => grantRow(g, opts.csrf))}</tbody></table>
<p>Revoking stops the app at once; your tables and rows stay.</p>`;
  return page(
    "My data",
    html`${accountBar(opts.email, opts.csrf)}<main><h1>My data</h1>
${opts.notice ? html`<p class="notice" role="status">${opts.notice}</p>` : ""}
<section aria-labelledby="projects-h"><h2 id="projects-h">Projects</h2>
${opts.projects.length === 0 ? html`<p>You have no projects.</p>` : opts.projects.map(projectView)}</section>
<section aria-labelledby="apps-h"><h2 id="apps-h">Apps with access</h2>${grants}</section></main>`,
  );
}

function cell(value: unknown) {
  if (value === null || value === undefined) return html`<td class="null">null</td>`;
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  // Long values (json, bytes) are cut so one cell cannot swamp the page; export has them whole.
  return html`<td>${text.length > 300 ? `${text.slice(0, 300)}…` : text}</td>`;
}

export function tableView(opts: {
  email: string;
  csrf: string;
  project: { id: string; name: string };
  table: string;
  columns: string[];
  rows: Record<string, unknown>[];
  total: number;
  pageNo: number;
}) {
  const { rows, total, pageNo } = opts;
  const first = (pageNo - 1) * PAGE_SIZE;
  const range =
    rows.length === 0
      ? total === 0
        ? "This table has no rows you can see."
        : `No rows on page ${pageNo}; the table has ${total}.`
      : `Rows ${first + 1}–${first + rows.length} of ${total}.`;
  const lastPage = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const prev =
    pageNo > 1
      ? html`<a href="${tableHref(opts.project.id, opts.table, Math.min(pageNo - 1, lastPage))}" rel="prev">Previous page</a>`
      : "";
  const next =
    pageNo < lastPage
      ? html`<a href="${tableHref(opts.project.id, opts.table, pageNo + 1)}" rel="next">Next page</a>`
      : "";
  const body =
    rows.length === 0
      ? ""
      : html`<div class="scroll"><table class="rows"><caption class="vh">Rows of ${opts.table}</caption>
<thead><tr>${opts.columns.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
<tbody>${rows.map((r) => html`<tr>${opts.columns.map((c) => cell(r[c]))}</tr>`)}</tbody></table></div>`;
  return page(
    `${opts.table} · ${opts.project.name}`,
    html`${accountBar(opts.email, opts.csrf)}<main>
<p><a href="/me">← All projects</a></p>
<h1><code>${opts.table}</code> <span class="badge">${opts.project.name}</span></h1>
<p role="status">${range}</p>${body}
${prev || next ? html`<nav aria-label="Pages"><p>${prev}${prev && next ? " · " : ""}${next}</p></nav>` : ""}</main>`,
  );
}
