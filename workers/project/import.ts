/**
 * `POST {url}/import`: the zip is streamed to a staging object in R2 under the project's
 * prefix (`projects/<id>/imports/<uuid>.zip`, booked first by the DO), then the project's DO
 * imports from it with ranged reads (durable-objects/import.ts). A zip of any size up to
 * HEARTH_MAX_IMPORT_BYTES, in bounded memory; the staging object is deleted afterwards, done
 * or failed, or by the DO's alarm if the import died (durable-objects/import-staging.ts).
 */
import type { Context } from "hono";
import type { ImportStep } from "../../durable-objects/import-staging.ts";
import { HearthError } from "../../shared/errors.ts";
import { PROJECT_ID } from "../admin/access.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { storeBody } from "../storage/stream.ts";
import { authenticate } from "./forward.ts";

function tooLarge(max: number, declared: number | null): HearthError {
  return new HearthError(
    "HEARTH_IMPORT_TOO_LARGE",
    `The zip is larger than the import limit of ${max} bytes`,
    {
      details: declared === null ? null : `Content-Length is ${declared} bytes.`,
      hint: "Raise HEARTH_MAX_IMPORT_BYTES, or leave large files out of the export.",
    },
  );
}

export async function importZip(c: Context<AppEnv>): Promise<Response> {
  const projectId = c.req.param("projectId") ?? "";
  if (!PROJECT_ID.test(projectId)) {
    throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  }
  const principal = await authenticate(c, projectId);
  // Before a byte is stored (the DO checks again).
  if (principal.role !== "service") {
    throw new HearthError("HEARTH_FORBIDDEN", "This endpoint needs the project's service key.");
  }
  const max = readConfig(c.env).maxImportBytes;
  const length = c.req.header("content-length");
  const declared = length === undefined ? null : Number(length);
  if (declared !== null && (!Number.isSafeInteger(declared) || declared < 0)) {
    throw new HearthError("HEARTH_BAD_REQUEST", "Content-Length must be a number of bytes");
  }
  if (declared !== null && declared > max) {
    await c.req.raw.body?.cancel().catch(() => {});
    throw tooLarge(max, declared);
  }
  const requestId = c.get("requestId");
  const stub = c.env.PROJECT.get(c.env.PROJECT.idFromName(projectId));
  const step = (s: ImportStep) => stub.importStep(principal, s, requestId);
  // A stub's Response has immutable headers; middleware (CORS) adds some on the way out.
  const answer = (res: Response) => new Response(res.body, res);

  const begun = await step({ step: "begin" });
  if (!begun.ok) return answer(begun);
  const { version, key } = (await begun.json()) as { version: string; key: string };
  try {
    await storeBody(c.env.BUCKET, key, c.req.raw.body, {
      declared: c.req.raw.body ? declared : 0,
      maxBytes: max,
      boundBy: "bucket",
      tooLarge: () => tooLarge(max, declared),
      contentType: "application/zip",
      cacheControl: "no-store",
      onMultipart: async (uploadId) => {
        const res = await step({ step: "multipart", version, uploadId });
        if (!res.ok) throw new Error(`recording the staged import's multipart upload failed: ${res.status}`);
      },
    });
  } catch (err) {
    // refused part-way (too large, interrupted): the rest of the body is not wanted
    await c.req.raw.body?.cancel().catch(() => {});
    await step({ step: "abort", version }).catch((e) =>
      console.error("dropping a staged import failed (the alarm's sweep retries)", e),
    );
    throw err;
  }
  return answer(await step({ step: "run", version }));
}
