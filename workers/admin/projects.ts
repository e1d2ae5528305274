/**
 * Platform API for projects: `POST/GET /v1/projects`, `GET/DELETE /v1/projects/:id`, and
 * `POST /v1/projects/:id/fork` (fork.ts).
 * The DO is initialised before the catalog row is written, so a project visible in the
 * catalog always has a DO that knows its keys.
 */
import { eq, inArray, or } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { z } from "zod";
import type { KeyRecord } from "../../durable-objects/project-state.ts";
import { HearthError } from "../../shared/errors.ts";
import { readJsonBody } from "../../shared/rest/bodies.ts";
import { platformCaller } from "../auth/admin.ts";
import { sha256Hex, signKey } from "../auth/keys.ts";
import { forgetMemberships } from "../auth/principal.ts";
import { accounts, apiKeys, projectMembers, projects } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { AppEnv, Env } from "../env.ts";
import { deleteProjectBlobs } from "../project/storage.ts";
import { visibleProject } from "./access.ts";
import { forkProject } from "./fork.ts";
import { membersRoutes } from "./members.ts";

export const CreateProjectSchema = z
  .object({
    name: z.string().trim().min(1, "name must not be empty").max(100, "name must be at most 100 characters"),
  })
  .strict();

function newProjectId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

type KeyRow = typeof apiKeys.$inferSelect;

async function keysOf(
  env: Env,
  rows: KeyRow[],
): Promise<{ anonKey: string | null; serviceKey: string | null }> {
  const secret = readConfig(env).jwtSecret;
  const active = rows.filter((r) => !r.revokedAt);
  const sign = (r: KeyRow | undefined) =>
    r
      ? signKey(secret, { ref: r.projectId, role: r.role, jti: r.id, iat: r.issuedAt })
      : Promise.resolve(null);
  const [anonKey, serviceKey] = await Promise.all([
    sign(active.find((r) => r.role === "anon")),
    sign(active.find((r) => r.role === "service")),
  ]);
  return { anonKey, serviceKey };
}

export function projectUrl(requestUrl: string, id: string): string {
  return `${new URL(requestUrl).origin}/p/${id}`;
}

export interface CreatedProject {
  id: string;
  name: string;
  anonKey: string;
  serviceKey: string;
  personal: boolean;
  createdAt: string;
}

/** A project about to be made: its id, key ids and signed keys, and the catalog rows that make it exist. */
export interface NewProject {
  created: CreatedProject;
  keys: KeyRecord[];
  /** the `projects` and `api_keys` rows, for the one batch that creates the project */
  rows: [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]];
}

/** Chooses the id and keys of a new project and builds its catalog rows (nothing written). */
export async function prepareProject(
  env: Env,
  opts: { name: string; ownerAccountId: string | null; personal: boolean; forkedFrom?: string },
): Promise<NewProject> {
  const id = newProjectId();
  const issuedAt = Math.floor(Date.now() / 1000);
  const secret = readConfig(env).jwtSecret;
  const keys = (["anon", "service"] as const).map((role) => ({ id: crypto.randomUUID(), role }));
  const signed = await Promise.all(
    keys.map((k) => signKey(secret, { ref: id, role: k.role, jti: k.id, iat: issuedAt })),
  );
  const db = drizzle(env.CATALOG);
  const createdAt = new Date().toISOString();
  const keyValues = await Promise.all(
    keys.map(async (k, i) => ({
      id: k.id,
      projectId: id,
      role: k.role,
      keyHash: await sha256Hex(signed[i]!),
      issuedAt,
    })),
  );
  return {
    created: {
      id,
      name: opts.name,
      anonKey: signed[0]!,
      serviceKey: signed[1]!,
      personal: opts.personal,
      createdAt,
    },
    keys,
    rows: [
      db.insert(projects).values({
        id,
        name: opts.name,
        ownerAccountId: opts.ownerAccountId,
        personal: opts.personal,
        createdAt,
        forkedFrom: opts.forkedFrom ?? null,
      }),
      db.insert(apiKeys).values(keyValues),
    ],
  };
}

/**
 * Creates a project: its DO learns its id and key ids first, then the catalog rows are
 * written, so a project visible in the catalog always has a DO that knows its keys.
 * Used by `POST /v1/projects` and by signup (the account's personal project).
 */
export async function createProject(
  env: Env,
  opts: {
    name: string;
    ownerAccountId: string | null;
    personal: boolean;
    /** statements committed in the same batch, before the project's rows (signup: the account) */
    before?: BatchItem<"sqlite">[];
  },
): Promise<CreatedProject> {
  const { created, keys, rows } = await prepareProject(env, opts);
  const id = created.id;
  const stub = env.PROJECT.get(env.PROJECT.idFromName(id));
  await stub.init(id, keys);
  // The catalog rows make the project exist. If they cannot be written (D1 down: 503), the
  // object initialised above is emptied again, so no half-made project is left behind.
  await drizzle(env.CATALOG)
    .batch(opts.before?.length ? [opts.before[0]!, ...opts.before.slice(1), ...rows] : rows)
    .catch(async (err) => {
      await stub.destroy().catch((e) => console.error(`project ${id}: emptying its object failed`, e));
      throw err;
    });
  return created;
}

export const projectsRoutes = new Hono<AppEnv>();
projectsRoutes.route("/:id/members", membersRoutes);

projectsRoutes.post("/", async (c) => {
  const caller = await platformCaller(c);
  const body = await readJsonBody(c.req.raw, 64 * 1024);
  if (body === undefined)
    throw new HearthError("HEARTH_BAD_REQUEST", 'Body must be JSON like {"name": "my-project"}.');
  if (caller.kind === "account") {
    const [known] = await drizzle(c.env.CATALOG)
      .select({ id: accounts.id })
      .from(accounts)
      .where(eq(accounts.id, caller.accountId));
    if (!known)
      throw new HearthError("HEARTH_UNAUTHORIZED", "The access token names an account that does not exist.");
  }
  const parsed = CreateProjectSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `Invalid project: ${issue.path.join(".") || "body"}: ${issue.message}`,
    );
  }
  const created = await createProject(c.env, {
    name: parsed.data.name,
    ownerAccountId: caller.kind === "account" ? caller.accountId : null,
    personal: false,
  });
  return c.json({ ...created, url: projectUrl(c.req.url, created.id) }, 201);
});

projectsRoutes.get("/", async (c) => {
  const caller = await platformCaller(c);
  const db = drizzle(c.env.CATALOG);
  let rows: (typeof projects.$inferSelect)[];
  if (caller.kind === "admin") {
    rows = await db.select().from(projects).orderBy(projects.createdAt);
  } else {
    const memberOf = db
      .select({ id: projectMembers.projectId })
      .from(projectMembers)
      .where(eq(projectMembers.accountId, caller.accountId));
    rows = await db
      .select()
      .from(projects)
      .where(or(eq(projects.ownerAccountId, caller.accountId), inArray(projects.id, memberOf)))
      .orderBy(projects.createdAt);
  }
  return c.json(
    rows.map((p) => ({
      id: p.id,
      name: p.name,
      url: projectUrl(c.req.url, p.id),
      personal: p.personal,
      createdAt: p.createdAt,
    })),
  );
});

projectsRoutes.get("/:id", async (c) => {
  const caller = await platformCaller(c);
  const { project, role } = await visibleProject(c.env, caller, c.req.param("id"));
  const db = drizzle(c.env.CATALOG);
  const keys =
    role === "owner" || role === "admin"
      ? await keysOf(c.env, await db.select().from(apiKeys).where(eq(apiKeys.projectId, project.id)))
      : {};
  return c.json({
    id: project.id,
    name: project.name,
    url: projectUrl(c.req.url, project.id),
    personal: project.personal,
    createdAt: project.createdAt,
    ...keys,
  });
});

projectsRoutes.delete("/:id", async (c) => {
  const caller = await platformCaller(c);
  const { project, role } = await visibleProject(c.env, caller, c.req.param("id"));
  if (role !== "owner") throw new HearthError("HEARTH_FORBIDDEN", "Only the project's owner can delete it.");
  if (project.personal) {
    throw new HearthError(
      "HEARTH_FORBIDDEN",
      "A personal project is deleted with its account, not on its own.",
    );
  }
  await removeProject(c.env, project.id);
  return c.body(null, 204);
});

/**
 * Catalog first: once the row is gone no new request can authenticate (the DO also
 * forgets its keys), then the data itself.
 */
async function removeProject(env: Env, id: string): Promise<void> {
  const db = drizzle(env.CATALOG);
  await db.batch([
    db.delete(apiKeys).where(eq(apiKeys.projectId, id)),
    db.delete(projectMembers).where(eq(projectMembers.projectId, id)),
    db.delete(projects).where(eq(projects.id, id)),
  ]);
  forgetMemberships(id);
  await env.PROJECT.get(env.PROJECT.idFromName(id)).destroy();
  await deleteProjectBlobs(env.BUCKET, id, env.CATALOG);
}

projectsRoutes.post("/:id/fork", forkProject);
