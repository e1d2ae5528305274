/**
 * Bucket ids and object names: checked at the gateway (from the URL and bodies) and again
 * in the DO (a value from RPC is still input). They are always bound, never SQL text, and
 * become R2 keys only under the project's prefix.
 */
import { fault } from "./errors.ts";

const BUCKET_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** bytes of UTF-8, as S3 and Supabase allow */
export const MAX_NAME_BYTES = 1024;
// Lone surrogates: not valid UTF-8 once encoded.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** C0 and C1 control characters and DEL. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

export function checkBucketId(id: unknown): string {
  if (typeof id !== "string" || !BUCKET_ID.test(id) || id === "." || id === "..") {
    throw fault(
      "HEARTH_STORAGE_INVALID_NAME",
      `Invalid bucket name ${JSON.stringify(String(id).slice(0, 80))}: use 1-63 letters, digits, "_", "-" or ".", starting with a letter or digit`,
    );
  }
  return id;
}

/** An object name: `a/b/c.txt`; no empty, "." or ".." segment, no leading or trailing "/". */
export function checkObjectName(name: unknown): string {
  if (typeof name !== "string" || name === "") {
    throw fault("HEARTH_STORAGE_INVALID_NAME", "The object name is empty");
  }
  if (hasControl(name) || LONE_SURROGATE.test(name)) {
    throw fault("HEARTH_STORAGE_INVALID_NAME", "The object name holds control characters or invalid UTF-8");
  }
  if (new TextEncoder().encode(name).byteLength > MAX_NAME_BYTES) {
    throw fault("HEARTH_STORAGE_INVALID_NAME", `The object name is longer than ${MAX_NAME_BYTES} bytes`);
  }
  for (const seg of name.split("/")) {
    if (seg === "" || seg === "." || seg === "..") {
      throw fault(
        "HEARTH_STORAGE_INVALID_NAME",
        `Invalid object name ${JSON.stringify(name.slice(0, 200))}: empty, "." and ".." path segments are refused`,
      );
    }
  }
  return name;
}

/** A list prefix (a folder): "" or a name, with or without a trailing "/". */
export function checkPrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === null || prefix === "") return "";
  if (typeof prefix !== "string") throw fault("HEARTH_STORAGE_INVALID_NAME", "prefix must be a string");
  const trimmed = prefix.replace(/^\/+/, "").replace(/\/+$/, "");
  if (trimmed === "") return "";
  return `${checkObjectName(trimmed)}/`;
}

/** Percent-decodes a path from the URL; invalid escapes or UTF-8 are a 400, not a 500. */
export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw fault("HEARTH_STORAGE_INVALID_NAME", "The path is not valid percent-encoded UTF-8");
  }
}

/** R2 key of one stored version of an object (fixed-length suffix: distinct names never collide). */
export function blobKey(projectId: string, bucket: string, name: string, version: string): string {
  return `${blobPrefix(projectId)}${bucket}/${name}@${version}`;
}

export function blobPrefix(projectId: string): string {
  return `projects/${projectId}/blobs/`;
}
