/**
 * The overview's projects: each project the account owns or belongs to, with the tables it
 * may read and their row counts. One project failing (a DO error) shows on that project
 * only; the rest of the page still renders.
 */
import type { Context } from "hono";
import type { MemberRole } from "../../shared/principal.ts";
import { membershipOf } from "../auth/principal.ts";
import type { AppEnv } from "../env.ts";
import { accountProjects, PageDataError, readableTables, rowCount } from "./project-data.ts";
import type { ProjectSummary } from "./views.ts";

export async function summarizeProjects(
  c: Context<AppEnv>,
  accountId: string,
): Promise<{ projects: ProjectSummary[]; names: Map<string, string> }> {
  const rows = await accountProjects(c, accountId);
  const projects = await Promise.all(
    rows.map(async (p): Promise<ProjectSummary> => {
      const role: MemberRole =
        p.ownerAccountId === accountId
          ? "owner"
          : ((await membershipOf(c.env.CATALOG, p.id, accountId)) ?? "reader");
      const base = { id: p.id, name: p.name, personal: p.personal, role };
      try {
        const tables = [...(await readableTables(c, accountId, p.id)).keys()].sort();
        const counts = await Promise.all(
          tables.map((t) => rowCount(c, accountId, p.id, t).catch(() => null)),
        );
        return { ...base, tables: tables.map((name, i) => ({ name, rows: counts[i] ?? null })), error: null };
      } catch (err) {
        if (!(err instanceof PageDataError)) throw err;
        return { ...base, tables: [], error: err.message };
      }
    }),
  );
  return { projects, names: new Map(rows.map((p) => [p.id, p.name])) };
}
