/**
 * Files (`{url}/storage/v1`) for tests inside workerd: requests with the service key unless
 * told otherwise, a JSON answer that must be a success, an upload, the project's R2 keys
 * under its blobs prefix, the project prefixes in R2, and bytes that are not text.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Env } from "../../workers/env.ts";
import { call, type TestProject } from "./api.ts";

/** A request of `{url}/storage/v1<path>`, with the service key unless `init.key` says otherwise. */
export function files(
  p: TestProject,
  path: string,
  init: Parameters<typeof call>[1] = {},
): Promise<Response> {
  return call(`${p.url}/storage/v1${path}`, { key: p.serviceKey, ...init });
}

/** The answer's JSON (null when empty), after checking it is a success. */
export async function ok(res: Promise<Response>): Promise<unknown> {
  const r = await res;
  const text = await r.text();
  expect(r.status, text).toBeLessThan(300);
  return text === "" ? null : JSON.parse(text);
}

/** Uploads `body` to `<bucket>/<name>` (text/plain unless a header says otherwise). */
export function put(
  p: TestProject,
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<unknown> {
  return ok(
    files(p, `/object/${path}`, {
      method: "POST",
      headers: { "content-type": "text/plain", ...headers },
      body,
    }),
  );
}

/** The R2 keys under a project's blobs prefix. */
export async function blobKeys(projectId: string): Promise<string[]> {
  const list = await (env as unknown as Env).BUCKET.list({ prefix: `projects/${projectId}/blobs/` });
  return list.objects.map((o) => o.key);
}

/** The project prefixes in R2 (`projects/<id>/`), sorted. */
export async function projectPrefixes(): Promise<string[]> {
  const bucket = (env as unknown as Env).BUCKET;
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: "projects/", delimiter: "/", ...(cursor ? { cursor } : {}) });
    out.push(...page.delimitedPrefixes);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out.sort();
}

/** `n` bytes of 0..255 in a pattern (not text, so a mangled copy shows). */
export function binary(n: number, seed = 3): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 255;
  return out;
}
