/**
 * The Durable Object side of a fork (POST /v1/projects/:id/fork, workers/admin/fork.ts). The
 * gateway runs the steps and undoes them when one fails, so each step answers its failure as
 * a value: a HearthError loses its code crossing Workers RPC, and the fork must answer 503
 * HEARTH_CATALOG_UNAVAILABLE or HEARTH_STORAGE_UNAVAILABLE, not a 500.
 *
 * The fork's own object holds nothing the catalog does not know of yet: `adoptFork` puts the
 * fork's manifest 1 to R2 and takes it as its state, but no catalog row names the project
 * until the gateway's one batch commits, so until then the object cannot be reached.
 */
import { HearthError } from "../shared/errors.ts";
import { type Manifest, manifestKey, withRetry } from "./cold/manifest.ts";

export type ForkStep<T> =
  | { ok: true; value: T }
  | { ok: false; code: string; message: string; details: string | null; hint: string | null };

/** `err` as a step's failure: a HearthError keeps its code; anything else is rethrown (a bug). */
export function forkFailure(err: unknown): ForkStep<never> {
  if (err instanceof HearthError) {
    return { ok: false, code: err.code, message: err.message, details: err.details, hint: err.hint };
  }
  throw err;
}

/** The fork's first manifest: the parent's current one as version 1 of `projectId`. */
export function forkManifest(parent: Manifest, projectId: string): Manifest {
  return {
    ...parent,
    version: 1,
    projectId,
    createdAt: new Date().toISOString(),
    flushId: crypto.randomUUID(),
  };
}

/**
 * Puts the fork's manifest 1, only if absent: the id is new, so an existing one is this very
 * put, landed by a try whose answer was lost (the retry then finds it).
 */
export async function putForkManifest(bucket: R2Bucket, manifest: Manifest): Promise<void> {
  const key = manifestKey(manifest.projectId, manifest.version);
  const put = await withRetry(`writing ${key}`, () =>
    bucket.put(key, JSON.stringify(manifest), {
      onlyIf: { etagDoesNotMatch: "*" },
      httpMetadata: { contentType: "application/json" },
    }),
  );
  if (put !== null) return;
  const existing = await withRetry(`reading ${key}`, () => bucket.get(key));
  const other = existing ? ((await existing.json()) as Manifest) : null;
  if (other?.flushId !== manifest.flushId) {
    throw new HearthError(
      "HEARTH_STORAGE_UNAVAILABLE",
      `Object storage failed: ${key} holds another manifest`,
      {
        hint: "Nothing was created; fork again.",
      },
    );
  }
}
