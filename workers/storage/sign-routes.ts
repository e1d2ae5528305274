/**
 * Signed URLs: `POST /object/sign/<bucket>/<path>` (one) and `POST /object/sign/<bucket>`
 * (`{paths}`) hand out read URLs; `POST /object/upload/sign/<bucket>/<path>` an upload URL
 * (2 hours). Using one needs no key: the token is the authority (signing.ts).
 */

import { checkBucketId } from "../../durable-objects/storage/names.ts";
import type { StorageCaller } from "../../durable-objects/storage/types.ts";
import { HearthError } from "../../shared/errors.ts";
import { readConfig } from "../config.ts";
import { callStorage, json, jsonBody, objectResponse } from "./http.ts";
import { clientIp, objectPath, type StorageRequest } from "./routes.ts";
import { signUrlToken, verifyUrlToken } from "./signing.ts";
import { uploadObject } from "./upload.ts";

const UPLOAD_URL_SECONDS = 2 * 3600;
const MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600;

function expiresIn(v: unknown): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_EXPIRY_SECONDS) {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `expiresIn must be a whole number of seconds from 1 to ${MAX_EXPIRY_SECONDS}`,
    );
  }
  return n;
}

async function signRead(
  r: StorageRequest,
  caller: StorageCaller,
  bucket: string,
  name: string,
  seconds: number,
  metered = true,
) {
  await callStorage(
    r.c.env,
    r.projectId,
    caller,
    { op: "authorize", bucket, name, write: false, mustExist: true },
    { metered },
  );
  const token = await signUrlToken(
    readConfig(r.c.env).jwtSecret,
    { ref: r.projectId, url: `${bucket}/${name}`, right: "read" },
    seconds,
  );
  // Not percent-encoded: storage-js applies encodeURI to the whole URL itself.
  return `/object/sign/${bucket}/${name}?token=${token}`;
}

export async function signRoute(r: StorageRequest, rest: string[]): Promise<Response> {
  const caller = await r.caller();
  const body = await jsonBody(r.c.req.raw);
  const seconds = expiresIn(body.expiresIn);
  if (rest.length === 1) {
    const bucket = checkBucketId(rest[0]);
    if (
      !Array.isArray(body.paths) ||
      body.paths.length > 1000 ||
      body.paths.some((p) => typeof p !== "string")
    ) {
      throw new HearthError("HEARTH_BAD_REQUEST", "paths must be a list of at most 1000 object names");
    }
    const out = [];
    // One request, one token against the rate limit: the first path's call takes it.
    let metered = true;
    for (const path of body.paths as string[]) {
      try {
        const { name } = objectPath([bucket, ...path.replace(/^\/+/, "").split("/")]);
        const first = metered;
        metered = false;
        out.push({ path, error: null, signedURL: await signRead(r, caller, bucket, name, seconds, first) });
      } catch (err) {
        if (!(err instanceof HearthError) && !(err instanceof Error && "code" in err)) throw err;
        if (err instanceof HearthError && err.code === "HEARTH_RATE_LIMITED") throw err;
        out.push({
          path,
          error: "Either the object does not exist or you do not have access to it",
          signedURL: null,
        });
      }
    }
    return json(out);
  }
  const { bucket, name } = objectPath(rest);
  return json({ signedURL: await signRead(r, caller, bucket, name, seconds) });
}

export async function signedRead(r: StorageRequest, rest: string[]): Promise<Response> {
  const { bucket, name } = objectPath(rest);
  await verifyUrlToken(readConfig(r.c.env).jwtSecret, r.url.searchParams.get("token"), {
    ref: r.projectId,
    url: `${bucket}/${name}`,
    right: "read",
  });
  const caller: StorageCaller = { kind: "signed", projectId: r.projectId, owner: null, ip: clientIp(r) };
  const row = await callStorage<Parameters<typeof objectResponse>[1]>(r.c.env, r.projectId, caller, {
    op: "read",
    bucket,
    name,
  });
  return objectResponse(r.c.env.BUCKET, row, r.c.req.raw, {
    head: r.method === "HEAD",
    download: r.url.searchParams.get("download"),
  });
}

export async function signUploadRoute(r: StorageRequest, rest: string[]): Promise<Response> {
  const { bucket, name } = objectPath(rest);
  const caller = await r.caller();
  await jsonBody(r.c.req.raw);
  const { owner } = await callStorage<{ owner: string | null }>(r.c.env, r.projectId, caller, {
    op: "authorize",
    bucket,
    name,
    write: true,
    mustExist: false,
  });
  const upsert = (r.c.req.header("x-upsert") ?? "").toLowerCase() === "true";
  const token = await signUrlToken(
    readConfig(r.c.env).jwtSecret,
    { ref: r.projectId, url: `${bucket}/${name}`, right: "upload", owner, upsert },
    UPLOAD_URL_SECONDS,
  );
  return json({ url: `/object/upload/sign/${bucket}/${name}?token=${token}`, token });
}

export async function signedUpload(r: StorageRequest, rest: string[]): Promise<Response> {
  const { bucket, name } = objectPath(rest);
  const claims = await verifyUrlToken(readConfig(r.c.env).jwtSecret, r.url.searchParams.get("token"), {
    ref: r.projectId,
    url: `${bucket}/${name}`,
    right: "upload",
  });
  const caller: StorageCaller = {
    kind: "signed",
    projectId: r.projectId,
    owner: claims.owner ?? null,
    ip: clientIp(r),
  };
  return uploadObject(r, caller, bucket, name, claims.upsert ? "upsert" : "create");
}
