/**
 * `{url}/...` of one project: authenticate the caller for this project, then hand the
 * request to the project's Durable Object over Workers RPC (`handle`), with the
 * established principal as a value. A client cannot forge it: it never travels in a
 * header the client could set (any such header is dropped).
 */
import type { Context } from "hono";
import { HearthError, REQUEST_ID_HEADER } from "../../shared/errors.ts";
import { PRINCIPAL_HEADER, type Principal, TOKEN_HEADER } from "../../shared/principal.ts";
import { PROJECT_ID } from "../admin/access.ts";
import { bearerToken } from "../auth/keys.ts";
import { principalForToken } from "../auth/principal.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";

const SMALL_BODY_BYTES = 1024 * 1024;

/** The caller's token: `Authorization: Bearer`, else `apikey`, else (WebSockets only) `?apikey=`. */
function requestToken(c: Context<AppEnv>, upgrade: boolean): string {
  const token = bearerToken(c.req.raw.headers) ?? (upgrade ? c.req.query("apikey")?.trim() || null : null);
  if (!token) {
    throw new HearthError("HEARTH_UNAUTHORIZED", "No API key found in request.", {
      hint: upgrade
        ? "Add the project's anon key to the URL as `?apikey=<key>`."
        : "Send the project's anon or service key in the `apikey` header or as `Authorization: Bearer <key>`.",
    });
  }
  return token;
}

export async function authenticate(c: Context<AppEnv>, projectId: string): Promise<Principal> {
  return (await principalForToken(c.env, projectId, requestToken(c, false))).principal;
}

/**
 * A WebSocket upgrade (`/realtime/v1/websocket`, `/sync/v1`): the DO accepts the socket
 * itself (hibernation API), so the request goes over `fetch` with the principal, and the
 * token it came from, in headers the client cannot set.
 */
async function forwardUpgrade(c: Context<AppEnv>, projectId: string): Promise<Response> {
  const token = requestToken(c, true);
  const { principal } = await principalForToken(c.env, projectId, token);
  const headers = new Headers(c.req.raw.headers);
  headers.set(PRINCIPAL_HEADER, JSON.stringify(principal));
  headers.set(TOKEN_HEADER, token);
  headers.set(REQUEST_ID_HEADER, c.get("requestId"));
  const stub = c.env.PROJECT.get(c.env.PROJECT.idFromName(projectId));
  const res = await stub.fetch(new Request(c.req.url, { method: "GET", headers }));
  // A 101's headers are immutable and middleware (CORS, request id) adds some on the way out.
  if (res.webSocket) return new Response(null, { status: 101, webSocket: res.webSocket });
  return new Response(res.body, res);
}

export async function forwardToProject(c: Context<AppEnv>): Promise<Response> {
  const projectId = c.req.param("projectId") ?? "";
  if (!PROJECT_ID.test(projectId)) {
    throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  }
  if (c.req.header("upgrade")?.toLowerCase() === "websocket") return forwardUpgrade(c, projectId);
  const principal = await authenticate(c, projectId);
  const headers = new Headers(c.req.raw.headers);
  headers.delete(PRINCIPAL_HEADER);
  headers.delete(TOKEN_HEADER);
  const stub = c.env.PROJECT.get(c.env.PROJECT.idFromName(projectId));
  const init: RequestInit = { method: c.req.method, headers };
  if (c.req.method !== "GET" && c.req.method !== "HEAD" && c.req.raw.body) {
    const maxBytes = readConfig(c.env).maxBodyBytes;
    const declared = Number(c.req.header("content-length") ?? Number.NaN);
    if (declared > maxBytes) {
      throw new HearthError(
        "HEARTH_PAYLOAD_TOO_LARGE",
        `Request body is larger than the limit of ${maxBytes} bytes`,
        {
          details: `Content-Length is ${declared} bytes.`,
          hint: "Split the rows into several requests.",
        },
      );
    }
    // Small bodies are buffered: if the DO refuses the request without reading a streamed
    // body, the runtime errors on the half-read stream ("Can't read from request stream
    // after response has been sent") and may restart the isolate. Large ones stream, and
    // the DO drains them when it refuses early.
    init.body = declared <= SMALL_BODY_BYTES ? await c.req.arrayBuffer() : c.req.raw.body;
  }
  const res = await stub.handle(new Request(c.req.url, init), principal, c.get("requestId"));
  // A stub's Response has immutable headers; middleware (CORS) adds some on the way out.
  return new Response(res.body, res);
}
