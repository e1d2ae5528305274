/** Which projects an admin or account caller may see, and in what role. */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { HearthError } from "../../shared/errors.ts";
import type { Caller } from "../auth/admin.ts";
import { projectMembers, projects } from "../catalog/schema.ts";
import type { Env } from "../env.ts";

export const PROJECT_ID = /^[a-z0-9]{20}$/;

export async function visibleProject(env: Env, caller: Caller, id: string) {
  if (!PROJECT_ID.test(id)) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${id}".`);
  const db = drizzle(env.CATALOG);
  const [project] = await db.select().from(projects).where(eq(projects.id, id));
  if (!project) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${id}".`);
  if (caller.kind === "account" && project.ownerAccountId !== caller.accountId) {
    const [member] = await db
      .select()
      .from(projectMembers)
      .where(and(eq(projectMembers.projectId, id), eq(projectMembers.accountId, caller.accountId)));
    if (!member) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${id}".`);
    return { project, role: member.role };
  }
  return { project, role: "owner" as const };
}
