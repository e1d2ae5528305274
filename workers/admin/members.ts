/**
 * Members of a project (multiplayer stores): `GET/POST /v1/projects/:id/members`,
 * `DELETE /v1/projects/:id/members/:accountId`. The owner and admins manage members;
 * every member may list them. A membership takes effect on the member's next request
 * (the gateway resolves membership per request).
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import { readJsonBody } from "../../shared/rest/bodies.ts";
import { platformCaller } from "../auth/admin.ts";
import { forgetMemberships } from "../auth/principal.ts";
import { accounts, projectMembers } from "../catalog/schema.ts";
import type { AppEnv, Env } from "../env.ts";
import { visibleProject } from "./access.ts";

const AddMemberSchema = z
  .object({
    email: z.string().email("email must be an email address").optional(),
    accountId: z.string().min(1).optional(),
    role: z.enum(["reader", "writer", "admin"], { error: "role must be reader, writer or admin" }),
  })
  .strict()
  .refine(
    (b) => (b.email === undefined) !== (b.accountId === undefined),
    "give exactly one of email or accountId",
  );

export const membersRoutes = new Hono<AppEnv>();

membersRoutes.get("/", async (c) => {
  const caller = await platformCaller(c);
  const { project } = await visibleProject(c.env, caller, c.req.param("id") ?? "");
  const rows = await drizzle(c.env.CATALOG)
    .select({
      accountId: projectMembers.accountId,
      email: accounts.email,
      role: projectMembers.role,
      createdAt: projectMembers.createdAt,
    })
    .from(projectMembers)
    .innerJoin(accounts, eq(accounts.id, projectMembers.accountId))
    .where(eq(projectMembers.projectId, project.id))
    .orderBy(projectMembers.createdAt);
  return c.json(rows);
});

/** Open realtime and sync sockets re-check their tokens (a role may have changed) before the next event. */
async function tellProject(env: Env, projectId: string): Promise<void> {
  forgetMemberships(projectId);
  try {
    await env.PROJECT.get(env.PROJECT.idFromName(projectId)).accessChanged();
  } catch (err) {
    console.error("could not tell the project about a membership change", err);
  }
}

membersRoutes.post("/", async (c) => {
  const caller = await platformCaller(c);
  const { project, role } = await visibleProject(c.env, caller, c.req.param("id") ?? "");
  if (role !== "owner" && role !== "admin") {
    throw new HearthError("HEARTH_FORBIDDEN", "Only the project's owner and admins can add members.");
  }
  const body = await readJsonBody(c.req.raw, 16 * 1024);
  const parsed = AddMemberSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `Invalid member: ${issue.path.join(".") || "body"}: ${issue.message}`,
      {
        hint: 'Send {"email": "someone@example.com", "role": "reader" | "writer" | "admin"}.',
      },
    );
  }
  const db = drizzle(c.env.CATALOG);
  const [account] = await db
    .select({ id: accounts.id, email: accounts.email })
    .from(accounts)
    .where(
      parsed.data.email !== undefined
        ? eq(accounts.email, parsed.data.email.toLowerCase())
        : eq(accounts.id, parsed.data.accountId!),
    );
  if (!account) throw new HearthError("HEARTH_NOT_FOUND", "No account with that email or id.");
  if (account.id === project.ownerAccountId) {
    throw new HearthError(
      "HEARTH_CONFLICT",
      "The project's owner is not added as a member: it already owns it.",
    );
  }
  const createdAt = new Date().toISOString();
  await db
    .insert(projectMembers)
    .values({ projectId: project.id, accountId: account.id, role: parsed.data.role, createdAt })
    .onConflictDoUpdate({
      target: [projectMembers.projectId, projectMembers.accountId],
      set: { role: parsed.data.role },
    });
  await tellProject(c.env, project.id);
  return c.json({ accountId: account.id, email: account.email, role: parsed.data.role }, 201);
});

membersRoutes.delete("/:accountId", async (c) => {
  const caller = await platformCaller(c);
  const { project, role } = await visibleProject(c.env, caller, c.req.param("id") ?? "");
  const accountId = c.req.param("accountId");
  // Members may leave on their own; removing someone else takes the owner or an admin.
  const self = caller.kind === "account" && caller.accountId === accountId;
  if (!self && role !== "owner" && role !== "admin") {
    throw new HearthError("HEARTH_FORBIDDEN", "Only the project's owner and admins can remove members.");
  }
  const removed = await drizzle(c.env.CATALOG)
    .delete(projectMembers)
    .where(and(eq(projectMembers.projectId, project.id), eq(projectMembers.accountId, accountId)))
    .returning({ accountId: projectMembers.accountId });
  if (removed.length === 0)
    throw new HearthError("HEARTH_NOT_FOUND", "That account is not a member of this project.");
  await tellProject(c.env, project.id);
  return c.body(null, 204);
});
