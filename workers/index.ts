/**
 * The gateway Worker: stateless. It authenticates, resolves the project and hands the
 * request to the project's Durable Object; it never reads project data itself.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { errorResponse, HearthError, REQUEST_ID_HEADER } from "../shared/errors.ts";
import { accountGrantsRoutes } from "./account/grants.ts";
import { projectsRoutes } from "./admin/projects.ts";
import { appsRoutes } from "./apps/routes.ts";
import { mailboxRoutes } from "./auth/mailer.ts";
import { authRoutes } from "./auth/routes.ts";
import { withGuardedCatalog } from "./catalog/guard.ts";
import { readConfig } from "./config.ts";
import type { AppEnv, Env } from "./env.ts";
import { oauthRoutes } from "./oauth/routes.ts";
import { forwardToProject } from "./project/forward.ts";
import { importZip } from "./project/import.ts";
import { storageRoutes } from "./storage/routes.ts";
import { meRoutes } from "./web/routes.ts";

export { ProjectDO } from "../durable-objects/project-do.ts";

const app = new Hono<AppEnv>();

// Browsers call Hearth from any origin with the headers supabase-js sends; keys, not
// cookies, authenticate, so a wildcard origin is safe.
app.use(
  "*",
  cors({
    origin: "*",
    allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    allowHeaders: [
      "authorization",
      "apikey",
      "content-type",
      "prefer",
      "range",
      "range-unit",
      "accept",
      "accept-profile",
      "content-profile",
      "x-client-info",
      "x-supabase-api-version",
      "x-request-id",
      "x-upsert",
      "x-metadata",
      "cache-control",
    ],
    exposeHeaders: [
      "content-range",
      "preference-applied",
      "location",
      "x-request-id",
      "content-location",
      // supabase-js reads an auth error's `code` only when it can see this header.
      "x-supabase-api-version",
      "retry-after",
      "content-length",
      "content-disposition",
      "etag",
      "last-modified",
      "accept-ranges",
    ],
    maxAge: 86400,
  }),
);

app.use("*", async (c, next) => {
  const requestId = c.req.header(REQUEST_ID_HEADER) ?? crypto.randomUUID();
  c.set("requestId", requestId);
  readConfig(c.env); // refuses to serve a misconfigured deployment
  await next();
  if (!c.res.headers.has(REQUEST_ID_HEADER)) c.res.headers.set(REQUEST_ID_HEADER, requestId);
});

app.get("/health", (c) => c.json({ status: "ok" }));
app.get("/", (c) => c.json({ name: "hearth", docs: "https://github.com/hearth/hearth#readme" }));

app.route("/v1/projects", projectsRoutes);
app.route("/v1/apps", appsRoutes);
app.route("/oauth", oauthRoutes);
app.route("/account/grants", accountGrantsRoutes);
// The "My data" page (HTML, session cookie): its own onError answers pages, not JSON.
app.route("/me", meRoutes);
// Accounts: the same GoTrue subset at the root and under every project, mounted before the
// project catch-all so `{url}/auth/v1/...` is answered here and never reaches the DO.
app.route("/auth/v1", authRoutes("platform"));
app.route("/p/:projectId/auth/v1", authRoutes("project"));
app.route("/dev/mailbox", mailboxRoutes);
// Files: the gateway streams bytes to and from R2 itself; only metadata goes to the DO.
app.route("/p/:projectId/storage/v1", storageRoutes);
// Imports: the gateway streams the zip to R2; the DO imports from there (workers/project/import.ts).
app.post("/p/:projectId/import", (c) => importZip(c));
app.all("/p/:projectId/*", (c) => forwardToProject(c));
app.all("/p/:projectId", (c) => forwardToProject(c));

app.notFound((c) => {
  throw new HearthError("HEARTH_NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`);
});

app.onError((err, c) => {
  const requestId = c.get("requestId") ?? crypto.randomUUID();
  return errorResponse(err, requestId);
});

// Every route sees the catalog through its guard: an outage is 503, not 500 (catalog/guard.ts).
export default {
  fetch: (request: Request, env: Env, ctx?: ExecutionContext) =>
    app.fetch(request, withGuardedCatalog(env), ctx),
};
