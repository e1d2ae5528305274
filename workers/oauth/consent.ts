/**
 * The decision itself, shared by the JSON path and the HTML form: deny → `access_denied`;
 * approve → apply the app's tables to the project (additive), create or extend the grant,
 * issue a one-time code. The schema is applied before any catalog row is written, so a
 * conflict leaves nothing behind.
 */
import { HearthError } from "../../shared/errors.ts";
import { CatalogUnavailableError } from "../catalog/guard.ts";
import type { Env } from "../env.ts";
import { type AuthorizeRequest, errorRedirect, redirectTo } from "./authorize-request.ts";
import { grantableProject, grantWithCode } from "./grants.ts";

export async function decide(
  env: Env,
  accountId: string,
  req: AuthorizeRequest,
  decision: "approve" | "deny",
): Promise<string> {
  if (decision === "deny") {
    return errorRedirect(req.redirectUri, "access_denied", "The user denied access", req.state);
  }
  const projectId = await grantableProject(env, accountId, req.projectId);
  if (projectId === null) {
    return errorRedirect(
      req.redirectUri,
      "invalid_request",
      req.projectId === undefined
        ? "The account has no personal project"
        : "project_id is not a project this account owns or administers",
      req.state,
    );
  }
  const merged = await env.PROJECT.get(env.PROJECT.idFromName(projectId)).mergeTables(
    projectId,
    req.app.schema.tables,
  );
  if (!merged.ok) {
    if (merged.code === "HEARTH_CATALOG_UNAVAILABLE") throw new CatalogUnavailableError(merged.message);
    throw new HearthError(merged.code, merged.message, {
      details: merged.details,
      hint: "The app declares a table the project already has with another definition; nothing was changed.",
    });
  }
  const code = await grantWithCode(
    env,
    { accountId, clientId: req.app.clientId, projectId, scopes: req.scopes },
    { redirectUri: req.redirectUri, codeChallenge: req.codeChallenge },
  );
  return redirectTo(req.redirectUri, { code, state: req.state });
}
