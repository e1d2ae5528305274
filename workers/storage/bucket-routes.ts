/** `{url}/storage/v1/bucket[/<id>[/empty]]`: storage-js's bucket API. */
import type { BucketInput } from "../../durable-objects/storage/types.ts";
import { HearthError } from "../../shared/errors.ts";
import { callStorage, json, jsonBody } from "./http.ts";
import type { StorageRequest } from "./routes.ts";

function bucketInput(body: Record<string, unknown>): BucketInput {
  const str = (k: string) => {
    const v = body[k];
    if (v !== undefined && v !== null && typeof v !== "string") {
      throw new HearthError("HEARTH_BAD_REQUEST", `${k} must be a string`);
    }
    return (v ?? undefined) as string | undefined;
  };
  if (body.public !== undefined && typeof body.public !== "boolean") {
    throw new HearthError("HEARTH_BAD_REQUEST", "public must be true or false");
  }
  const policy = body.policy;
  if (policy !== undefined && (typeof policy !== "object" || policy === null || Array.isArray(policy))) {
    throw new HearthError("HEARTH_BAD_REQUEST", 'policy must be an object {"read", "write"}');
  }
  const p = (policy ?? {}) as Record<string, unknown>;
  const input: BucketInput = {
    id: str("id"),
    name: str("name"),
    public: body.public as boolean | undefined,
    file_size_limit: body.file_size_limit as BucketInput["file_size_limit"],
    allowed_mime_types: body.allowed_mime_types as BucketInput["allowed_mime_types"],
  };
  if (policy !== undefined) {
    input.policy = {
      read: p.read === undefined ? undefined : String(p.read),
      write: p.write === undefined ? undefined : String(p.write),
    };
  }
  return input;
}

function intParam(v: string | null, what: string): number | null {
  if (v === null || v === "") return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new HearthError("HEARTH_BAD_REQUEST", `${what} must be a non-negative integer`);
  return n;
}

export async function bucketRoute(r: StorageRequest): Promise<Response> {
  const { env } = r.c;
  const caller = await r.caller();
  const [, id, action, ...extra] = r.parts;
  const m = r.method;
  if (extra.length > 0)
    throw new HearthError("HEARTH_NOT_FOUND", `No storage route for ${m} ${r.url.pathname}`);
  if (id === undefined || id === "") {
    if (m === "GET") {
      const q = r.url.searchParams;
      return json(
        await callStorage(env, r.projectId, caller, {
          op: "listBuckets",
          limit: intParam(q.get("limit"), "limit"),
          offset: intParam(q.get("offset"), "offset") ?? 0,
          search: q.get("search"),
        }),
      );
    }
    if (m === "POST") {
      const input = bucketInput(await jsonBody(r.c.req.raw));
      return json(await callStorage(env, r.projectId, caller, { op: "createBucket", input }));
    }
  } else if (action === undefined) {
    if (m === "GET") return json(await callStorage(env, r.projectId, caller, { op: "getBucket", id }));
    if (m === "PUT") {
      const input = bucketInput(await jsonBody(r.c.req.raw));
      return json(await callStorage(env, r.projectId, caller, { op: "updateBucket", id, input }));
    }
    if (m === "DELETE") return json(await callStorage(env, r.projectId, caller, { op: "deleteBucket", id }));
  } else if (action === "empty" && m === "POST") {
    return json(await callStorage(env, r.projectId, caller, { op: "emptyBucket", id }));
  }
  throw new HearthError("HEARTH_NOT_FOUND", `No storage route for ${m} ${r.url.pathname}`);
}
