/**
 * `POST /v1/projects/:id/fork`: a new project (new keys, owned by the caller) that starts as
 * the parent's current state. All or nothing: the catalog rows that make the fork exist (its
 * project row with `forked_from`, its keys, its manifest 1 and that manifest's segment rows)
 * are written in one D1 batch, the last step that can fail. Every step before it only
 * prepares what that batch will name, and is undone when a later step fails:
 *
 *   1. parent  flush, and its manifest (snapshotForFork; a frozen parent wakes first)
 *   2. id      the new id, keys and catalog rows, chosen here (nothing written)
 *   3. files   the parent copies its files' bytes under `projects/<new id>/` (filesForFork)
 *   4. adopt   the new object puts manifest 1 under its prefix and takes it as its state
 *   5. catalog the one batch
 *
 * Undoing 3 and 4 empties the new object (`destroy`) and deletes `projects/<new id>/`; until
 * 5 commits no catalog row names the project, so nothing can reach it (the gateway answers
 * 404 for an id the catalog does not know, and the keys never left this request). The
 * segments stay the parent's, shared by reference (copy-on-write: later writes of either
 * project go to its own prefix); docs/storage.md, "Forks".
 */
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { manifestStatements } from "../../durable-objects/cold/flush.ts";
import type { Manifest } from "../../durable-objects/cold/manifest.ts";
import { type ForkStep, forkManifest } from "../../durable-objects/fork.ts";
import type { FilesArchive } from "../../durable-objects/storage/archive.ts";
import { type ErrorCode, HearthError } from "../../shared/errors.ts";
import { readJsonBody } from "../../shared/rest/bodies.ts";
import { platformCaller } from "../auth/admin.ts";
import { CatalogUnavailableError } from "../catalog/guard.ts";
import type { AppEnv, Env } from "../env.ts";
import { deleteProjectBlobs } from "../project/storage.ts";
import { visibleProject } from "./access.ts";
import { CreateProjectSchema, prepareProject, projectUrl } from "./projects.ts";

/** A step's value, or its failure as the error it was in the Durable Object. */
function unwrap<T>(step: ForkStep<T>): T {
  if (step.ok) return step.value;
  if (step.code === "HEARTH_CATALOG_UNAVAILABLE") throw new CatalogUnavailableError(step.message);
  throw new HearthError(step.code as ErrorCode, step.message, { details: step.details, hint: step.hint });
}

/** Steps 3 and 4 undone: the new object emptied, its prefix deleted. A failure here is logged. */
async function undo(env: Env, id: string): Promise<void> {
  await env.PROJECT.get(env.PROJECT.idFromName(id))
    .destroy()
    .catch((err) => console.error(`fork ${id}: emptying its object failed`, err));
  // No catalog row names this prefix's objects, and no other project's segments live there.
  await deleteProjectBlobs(env.BUCKET, id).catch((err) =>
    console.error(`fork ${id}: deleting projects/${id}/ failed`, err),
  );
}

export async function forkProject(c: Context<AppEnv>): Promise<Response> {
  const caller = await platformCaller(c);
  const { project, role } = await visibleProject(c.env, caller, c.req.param("id") ?? "");
  if (role !== "owner" && caller.kind !== "admin") {
    throw new HearthError("HEARTH_FORBIDDEN", "Only the project's owner can fork it.");
  }
  const body = (await readJsonBody(c.req.raw, 64 * 1024)) ?? {};
  const parsed = CreateProjectSchema.partial().safeParse(body);
  if (!parsed.success) {
    throw new HearthError("HEARTH_BAD_REQUEST", `Invalid fork: ${parsed.error.issues[0]!.message}`);
  }
  const parent = c.env.PROJECT.get(c.env.PROJECT.idFromName(project.id));
  // RPC types flatten the manifest's schema type to `never`; the value is the manifest.
  const snapshot = unwrap((await parent.snapshotForFork(project.id)) as unknown as ForkStep<Manifest>);
  const fresh = await prepareProject(c.env, {
    name: parsed.data.name ?? `${project.name} (fork)`,
    ownerAccountId: caller.kind === "account" ? caller.accountId : project.ownerAccountId,
    personal: false,
    forkedFrom: project.id,
  });
  const id = fresh.created.id;
  const manifest = forkManifest(snapshot, id);
  const db = drizzle(c.env.CATALOG);
  try {
    const files = unwrap(
      (await parent.filesForFork(project.id, id)) as unknown as ForkStep<FilesArchive | null>,
    );
    const child = c.env.PROJECT.get(c.env.PROJECT.idFromName(id));
    unwrap(await child.adoptFork(id, fresh.keys, manifest, files));
    await db.batch([...fresh.rows, ...manifestStatements(db, id, manifest)]);
  } catch (err) {
    await undo(c.env, id);
    throw err;
  }
  return c.json(
    {
      ...fresh.created,
      url: projectUrl(c.req.url, id),
      forkedFrom: project.id,
      manifestVersion: snapshot.version,
    },
    201,
  );
}
