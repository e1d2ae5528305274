/**
 * `{url}/...` of one project: authenticate the caller for this project, then hand the
 * request to the project's Durable Object over Workers RPC (`handle`), with the
 * established principal as a value. A client cannot forge it: it never travels in a
 * header the client could set (any such header is dropped).
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { HearthError } from "../../shared/errors.ts";
import { type MemberRole, PRINCIPAL_HEADER, type Principal } from "../../shared/principal.ts";
import { PROJECT_ID } from "../admin/access.ts";
import { bearerToken, verifyToken } from "../auth/keys.ts";
import { sessionIsLive } from "../auth/sessions.ts";
import { projectMembers, projects } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { appPrincipal } from "../oauth/app-principal.ts";

const SMALL_BODY_BYTES = 1024 * 1024;

export async function membershipOf(
  db: D1Database,
  projectId: string,
  accountId: string,
): Promise<MemberRole | null> {
  const orm = drizzle(db);
  const [project] = await orm
    .select({ owner: projects.ownerAccountId })
    .from(projects)
    .where(eq(projects.id, projectId));
  if (!project) throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  if (project.owner === accountId) return "owner";
  const [member] = await orm
    .select({ role: projectMembers.role })
    .from(projectMembers)
    .where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.accountId, accountId)));
  return member?.role ?? null;
}

export async function authenticate(c: Context<AppEnv>, projectId: string): Promise<Principal> {
  const token = bearerToken(c.req.raw.headers);
  if (!token) {
    throw new HearthError("HEARTH_UNAUTHORIZED", "No API key found in request.", {
      hint: "Send the project's anon or service key in the `apikey` header or as `Authorization: Bearer <key>`.",
    });
  }
  const verified = await verifyToken(readConfig(c.env).jwtSecret, token);
  if (verified.kind === "key") {
    if (verified.claims.ref !== projectId) {
      throw new HearthError("PGRST301", "This key belongs to another project.", {
        hint: "Use the anonKey or serviceKey returned when this project was created.",
      });
    }
    return { role: verified.claims.role, projectId, keyId: verified.claims.jti };
  }
  if (verified.kind === "app") return appPrincipal(c.env, verified.claims, projectId);
  // An account's access token is refused once its session is revoked (logout, refresh-token
  // reuse, password change); see sessionIsLive for the cache.
  if (verified.kind === "access" && !(await sessionIsLive(c.env.CATALOG, verified.claims))) {
    throw new HearthError("PGRST301", "JWT session has ended (signed out or revoked).", {
      hint: "Sign in again (or refresh the session) to get a new access token.",
    });
  }
  const membership = await membershipOf(c.env.CATALOG, projectId, verified.claims.sub);
  return { role: "authenticated", projectId, userId: verified.claims.sub, membership };
}

export async function forwardToProject(c: Context<AppEnv>): Promise<Response> {
  const projectId = c.req.param("projectId") ?? "";
  if (!PROJECT_ID.test(projectId)) {
    throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${projectId}".`);
  }
  const principal = await authenticate(c, projectId);
  const headers = new Headers(c.req.raw.headers);
  headers.delete(PRINCIPAL_HEADER);
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
