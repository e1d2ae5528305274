/**
 * Uploads and copies: ask the DO for a ticket (rights, limits, a fresh R2 key), stream the
 * bytes to that key, then commit (the object becomes visible) or abort (the bytes go).
 * A refusal on declared size or type comes before any byte is stored.
 */
import { checkObjectName } from "../../durable-objects/storage/names.ts";
import type {
  ObjectRow,
  StorageCaller,
  UploadMode,
  UploadTicket,
} from "../../durable-objects/storage/types.ts";
import { HearthError } from "../../shared/errors.ts";
import type { Env } from "../env.ts";
import { callStorage, json, jsonBody } from "./http.ts";
import { boundaryOf, readFormFile } from "./multipart.ts";
import { moveArgs, type StorageRequest } from "./routes.ts";
import { storeBody } from "./stream.ts";

const MAX_METADATA_BYTES = 8 * 1024;

function metadataJson(text: string | null | undefined): string | null {
  if (text === null || text === undefined || text === "") return null;
  if (text.length > MAX_METADATA_BYTES) {
    throw new HearthError("HEARTH_BAD_REQUEST", `metadata is limited to ${MAX_METADATA_BYTES} bytes`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new HearthError("HEARTH_BAD_REQUEST", "metadata must be a JSON object");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new HearthError("HEARTH_BAD_REQUEST", "metadata must be a JSON object");
  }
  return JSON.stringify(v);
}

function fromBase64(b64: string): string {
  try {
    const bin = atob(b64);
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(bin, (ch) => ch.charCodeAt(0)),
    );
  } catch {
    throw new HearthError("HEARTH_BAD_REQUEST", "x-metadata must be base64 of a JSON object");
  }
}

function cacheSeconds(header: string | null | undefined): string {
  if (!header) return "3600";
  const m = /max-age=(\d{1,10})/.exec(header);
  if (m) return m[1]!;
  if (/^\d{1,10}$/.test(header.trim())) return header.trim();
  return "3600";
}

interface Body {
  stream: ReadableStream<Uint8Array> | null;
  declared: number | null;
  contentType: string;
  cacheControl: string;
  metadata: string | null;
}

async function uploadBody(req: Request): Promise<Body> {
  const type = req.headers.get("content-type") ?? "";
  if (/^multipart\/form-data/i.test(type)) {
    const boundary = boundaryOf(type);
    if (!boundary || !req.body)
      throw new HearthError("HEARTH_BAD_REQUEST", "A multipart body needs a boundary");
    const form = await readFormFile(req.body, boundary);
    return {
      stream: form.stream,
      declared: null,
      contentType: form.contentType,
      cacheControl: cacheSeconds(form.fields.get("cacheControl")),
      metadata: metadataJson(form.fields.get("metadata")),
    };
  }
  const length = req.headers.get("content-length");
  const declared = length === null ? null : Number(length);
  if (declared !== null && (!Number.isSafeInteger(declared) || declared < 0)) {
    throw new HearthError("HEARTH_BAD_REQUEST", "Content-Length must be a number of bytes");
  }
  const xMeta = req.headers.get("x-metadata");
  return {
    stream: req.body,
    declared: req.body ? declared : 0,
    contentType: type.trim() || "application/octet-stream",
    cacheControl: cacheSeconds(req.headers.get("cache-control")),
    metadata: metadataJson(xMeta ? fromBase64(xMeta) : null),
  };
}

/** Streams to the ticket's key, then commits; any failure aborts (no visible object, no bytes). */
async function storeAndCommit(
  env: Env,
  projectId: string,
  caller: StorageCaller,
  ticket: UploadTicket,
  body: {
    stream: ReadableStream<Uint8Array> | null;
    declared: number | null;
    contentType: string;
    cacheControl: string;
  },
): Promise<{ Id: string; Key: string }> {
  let stored: { size: number; checksum: string };
  try {
    stored = await storeBody(env.BUCKET, ticket.key, body.stream, {
      declared: body.declared,
      maxBytes: ticket.maxBytes,
      boundBy: ticket.boundBy,
      contentType: body.contentType,
      cacheControl: body.cacheControl,
      onMultipart: async (multipartId) => {
        await callStorage(env, projectId, caller, {
          op: "markMultipart",
          version: ticket.version,
          multipartId,
        });
      },
    });
  } catch (err) {
    await callStorage(env, projectId, caller, { op: "abortUpload", version: ticket.version }).catch((e) =>
      console.error("abort after a failed upload failed (the alarm's sweep retries)", e),
    );
    throw err;
  }
  const done = await callStorage<{ Id: string; Key: string }>(env, projectId, caller, {
    op: "commitUpload",
    version: ticket.version,
    size: stored.size,
    checksum: stored.checksum,
  });
  return { Id: done.Id, Key: done.Key };
}

export async function uploadObject(
  r: StorageRequest,
  caller: StorageCaller,
  bucket: string,
  name: string,
  mode: UploadMode,
): Promise<Response> {
  const { env } = r.c;
  const body = await uploadBody(r.c.req.raw);
  const ticket = await callStorage<UploadTicket>(env, r.projectId, caller, {
    op: "beginUpload",
    bucket,
    name,
    mode,
    contentType: body.contentType,
    declaredSize: body.declared,
    cacheControl: body.cacheControl,
    metadata: body.metadata,
  });
  return json(await storeAndCommit(env, r.projectId, caller, ticket, body));
}

/** `POST /object/copy`: the source's bytes streamed from R2 to a new key, then committed. */
export async function copyObject(r: StorageRequest): Promise<Response> {
  const { env } = r.c;
  const caller = await r.caller();
  const args = moveArgs(await jsonBody(r.c.req.raw));
  checkObjectName(args.to);
  const { source, ticket } = await callStorage<{ source: ObjectRow; ticket: UploadTicket }>(
    env,
    r.projectId,
    caller,
    {
      op: "beginCopy",
      ...args,
    },
  );
  const obj = await env.BUCKET.get(source.key);
  if (!obj) {
    await callStorage(env, r.projectId, caller, { op: "abortUpload", version: ticket.version }).catch(
      () => {},
    );
    throw new HearthError("HEARTH_STORAGE_OBJECT_NOT_FOUND", `Object not found: ${args.bucket}/${args.from}`);
  }
  const done = await storeAndCommit(env, r.projectId, caller, ticket, {
    stream: obj.body,
    declared: source.size,
    contentType: source.content_type,
    cacheControl: source.cache_control,
  });
  return json({ Key: done.Key, Id: done.Id });
}
