/**
 * What the "My data" page shows of a project, asked of the project's Durable Object through
 * its own REST and export paths with the signed-in account as the principal: the gateway
 * never reads project data itself, and the account sees exactly what its token would see
 * (table policies, membership) and nothing more.
 */
import { desc, eq, inArray, or } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import type { Principal } from "../../shared/principal.ts";
import { membershipOf } from "../auth/principal.ts";
import { projectMembers, projects } from "../catalog/schema.ts";
import type { AppEnv } from "../env.ts";

export const PAGE_SIZE = 50;

export type ProjectRow = typeof projects.$inferSelect;

/** The account's projects (owned or member of), personal first, then oldest first. */
export async function accountProjects(c: Context<AppEnv>, accountId: string): Promise<ProjectRow[]> {
  const db = drizzle(c.env.CATALOG);
  const memberOf = db
    .select({ id: projectMembers.projectId })
    .from(projectMembers)
    .where(eq(projectMembers.accountId, accountId));
  const rows = await db
    .select()
    .from(projects)
    .where(or(eq(projects.ownerAccountId, accountId), inArray(projects.id, memberOf)))
    .orderBy(desc(projects.personal), projects.createdAt);
  return rows;
}

/** Calls `{url}<path>` of the project's DO as the account, like forward.ts does for a token. */
export async function asAccount(
  c: Context<AppEnv>,
  accountId: string,
  projectId: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const membership = await membershipOf(c.env.CATALOG, projectId, accountId);
  const principal: Principal = { role: "authenticated", projectId, userId: accountId, membership };
  const url = `${new URL(c.req.url).origin}/p/${projectId}${path}`;
  const stub = c.env.PROJECT.get(c.env.PROJECT.idFromName(projectId));
  return stub.handle(new Request(url, { headers }), principal, c.get("requestId"));
}

/** A refusal of the project's DO (its PostgREST-shaped error), shown on the page as is. */
export class PageDataError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function failure(res: Response): Promise<PageDataError> {
  let message = `The project answered ${res.status}.`;
  let code = "";
  try {
    const body = (await res.json()) as { message?: unknown; code?: unknown };
    if (typeof body.message === "string") message = body.message;
    if (typeof body.code === "string") code = body.code;
  } catch {
    // not JSON: keep the generic message
  }
  return new PageDataError(res.status, code, message);
}

/** Names and columns of the tables the account may read (the REST root's OpenAPI document). */
export async function readableTables(
  c: Context<AppEnv>,
  accountId: string,
  projectId: string,
): Promise<Map<string, string[]>> {
  const res = await asAccount(c, accountId, projectId, "/rest/v1/", { accept: "application/openapi+json" });
  if (!res.ok) {
    const err = await failure(res);
    // A project nobody gave a schema yet simply has no tables.
    if (err.code === "HEARTH_SCHEMA_MISSING") return new Map();
    throw err;
  }
  const doc = (await res.json()) as {
    components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> };
  };
  const out = new Map<string, string[]>();
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    out.set(name, Object.keys(schema.properties ?? {}));
  }
  return out;
}

function totalOf(res: Response): number | null {
  const total = /\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1];
  return total === undefined ? null : Number(total);
}

function tablePath(table: string, query: string): string {
  return `/rest/v1/${encodeURIComponent(table)}?${query}`;
}

/** The number of rows of `table` the account can see. */
export async function rowCount(
  c: Context<AppEnv>,
  accountId: string,
  projectId: string,
  table: string,
): Promise<number> {
  const res = await asAccount(c, accountId, projectId, tablePath(table, "select=*&limit=0"), {
    prefer: "count=exact",
  });
  if (!res.ok) throw await failure(res);
  await res.body?.cancel();
  return totalOf(res) ?? 0;
}

export interface RowPage {
  rows: Record<string, unknown>[];
  total: number;
  offset: number;
}

/** One page of rows (50), in the table's natural order; past the end is an empty page. */
export async function rowPage(
  c: Context<AppEnv>,
  accountId: string,
  projectId: string,
  table: string,
  page: number,
): Promise<RowPage> {
  const offset = (page - 1) * PAGE_SIZE;
  const res = await asAccount(
    c,
    accountId,
    projectId,
    tablePath(table, `select=*&limit=${PAGE_SIZE}&offset=${offset}`),
    { prefer: "count=exact" },
  );
  if (res.status === 416) {
    await res.body?.cancel();
    return { rows: [], total: await rowCount(c, accountId, projectId, table), offset };
  }
  if (!res.ok) throw await failure(res);
  const rows = (await res.json()) as Record<string, unknown>[];
  return { rows, total: totalOf(res) ?? rows.length, offset };
}
