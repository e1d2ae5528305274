/** Small helpers of the storage routes: the DO call, JSON bodies, byte responses, ranges. */

import type {
  ObjectRow,
  StorageCaller,
  StorageOp,
  StorageResult,
} from "../../durable-objects/storage/types.ts";
import { type ErrorCode, HearthError } from "../../shared/errors.ts";
import type { Env } from "../env.ts";

const MAX_JSON_BYTES = 1024 * 1024;

/**
 * One metadata operation in the project's DO; a refusal becomes a thrown HearthError (a
 * 429 carries `retryAfterSeconds` for the retry-after header). The DO counts a request's
 * first call against the project's rate limit; `metered: false` for its further calls.
 */
export async function callStorage<T>(
  env: Env,
  projectId: string,
  caller: StorageCaller,
  op: StorageOp,
  opts: { metered?: boolean } = {},
): Promise<T> {
  const stub = env.PROJECT.get(env.PROJECT.idFromName(projectId));
  const result = (
    opts.metered === undefined ? await stub.storage(caller, op) : await stub.storage(caller, op, opts.metered)
  ) as StorageResult;
  if (!result.ok) {
    const err = new HearthError(result.code as ErrorCode, result.message, { status: result.status });
    if (result.retryAfterSeconds !== undefined) {
      (err as HearthError & { retryAfterSeconds?: number }).retryAfterSeconds = result.retryAfterSeconds;
    }
    throw err;
  }
  return result.value as T;
}

/** A JSON object body (storage-js sends `{}` even where nothing is needed); 400 otherwise. */
export async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_JSON_BYTES) {
    throw new HearthError("HEARTH_PAYLOAD_TOO_LARGE", `JSON bodies are limited to ${MAX_JSON_BYTES} bytes`);
  }
  const text = req.body ? await req.text() : "";
  if (text.length > MAX_JSON_BYTES) {
    throw new HearthError("HEARTH_PAYLOAD_TOO_LARGE", `JSON bodies are limited to ${MAX_JSON_BYTES} bytes`);
  }
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HearthError("HEARTH_BAD_REQUEST", "The body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HearthError("HEARTH_BAD_REQUEST", "The body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

export type ByteRange = { offset: number; length: number };

/**
 * `Range: bytes=a-b | a- | -n` against an object of `size` bytes. null: serve it whole (no
 * header, or several ranges, which we do not combine). 416 when it cannot be satisfied.
 */
export function parseRange(header: string | null, size: number): ByteRange | null {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) {
    if (/^\s*bytes\s*=.*,/.test(header)) return null;
    throw unsatisfiable(size);
  }
  const [a, b] = [m[1] ?? "", m[2] ?? ""];
  if (a === "" && b === "") throw unsatisfiable(size);
  if (a === "") {
    const n = Math.min(Number(b), size);
    if (n === 0) throw unsatisfiable(size);
    return { offset: size - n, length: n };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) throw unsatisfiable(size);
  return { offset: start, length: end - start + 1 };
}

function unsatisfiable(size: number): HearthError {
  const e = new HearthError(
    "HEARTH_STORAGE_RANGE",
    `The range is not satisfiable: the object has ${size} bytes`,
  );
  (e as HearthError & { size?: number }).size = size;
  return e;
}

function cacheControl(stored: string): string {
  return /^\d+$/.test(stored) ? `max-age=${stored}` : stored;
}

/** The object's bytes from R2, streamed; 206 for a range. */
export async function objectResponse(
  r2: R2Bucket,
  row: ObjectRow,
  req: Request,
  opts: { head: boolean; download: string | null },
): Promise<Response> {
  const range = parseRange(req.headers.get("range"), row.size);
  const headers = new Headers({
    "content-type": row.content_type,
    "cache-control": cacheControl(row.cache_control),
    etag: `"${row.checksum}"`,
    "last-modified": new Date(row.updated_at).toUTCString(),
    "accept-ranges": "bytes",
  });
  if (opts.download !== null) {
    const name = opts.download || row.name.split("/").pop() || "download";
    headers.set("content-disposition", `attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
  }
  const status = range ? 206 : 200;
  if (range)
    headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${row.size}`);
  headers.set("content-length", String(range ? range.length : row.size));
  if (opts.head) return new Response(null, { status, headers });
  const obj = await r2.get(row.key, range ? { range } : {});
  if (!obj) {
    throw new HearthError("HEARTH_STORAGE_OBJECT_NOT_FOUND", `Object not found: ${row.bucket}/${row.name}`);
  }
  return new Response(obj.body, { status, headers });
}
