/**
 * Validation of an authorization request (RFC 6749 §4.1.1 + PKCE, OAuth 2.1). Order matters:
 * until client_id and redirect_uri are known good, errors are shown to the user and never
 * redirected (an open redirector otherwise); after that, errors go back to the app.
 */
import { z } from "zod";
import { PROJECT_ID } from "../admin/access.ts";
import { type App, loadApp } from "../apps/store.ts";
import type { Env } from "../env.ts";
import { OAuthError, type OAuthErrorCode } from "./oauth-error.ts";
import { parseScopes } from "./scopes.ts";
import { CODE_CHALLENGE } from "./tokens.ts";

const Param = z.string().max(2048).optional();
export const AuthorizeParamsSchema = z.object({
  response_type: Param,
  client_id: Param,
  redirect_uri: Param,
  scope: Param,
  state: Param,
  code_challenge: Param,
  code_challenge_method: Param,
  project_id: Param,
});

export interface AuthorizeRequest {
  app: App;
  redirectUri: string;
  scopes: string[];
  state: string | undefined;
  codeChallenge: string;
  projectId: string | undefined;
}

export type AuthorizeCheck =
  | { kind: "fatal"; error: OAuthError }
  | { kind: "redirect"; location: string }
  | { kind: "ok"; req: AuthorizeRequest };

/** `redirect_uri` with the answer's parameters added to its own query (RFC 6749 §3.1.2). */
export function redirectTo(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

export function errorRedirect(
  redirectUri: string,
  error: OAuthErrorCode,
  description: string,
  state: string | undefined,
): string {
  return redirectTo(redirectUri, { error, error_description: description, state });
}

export async function checkAuthorizeRequest(env: Env, input: unknown): Promise<AuthorizeCheck> {
  const parsed = AuthorizeParamsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      kind: "fatal",
      error: new OAuthError("invalid_request", `${issue.path.join(".")}: ${issue.message}`),
    };
  }
  const p = parsed.data;
  if (!p.client_id)
    return { kind: "fatal", error: new OAuthError("invalid_request", "client_id is required") };
  const app = await loadApp(env, p.client_id);
  if (!app) {
    return {
      kind: "fatal",
      error: new OAuthError("invalid_client", "Unknown client_id: no app is registered under it", 400),
    };
  }
  if (!p.redirect_uri || !app.redirectUris.includes(p.redirect_uri)) {
    return {
      kind: "fatal",
      error: new OAuthError(
        "invalid_request",
        "redirect_uri is missing or not one of the app's registered redirect URIs (exact match)",
      ),
    };
  }
  const fail = (error: OAuthErrorCode, description: string): AuthorizeCheck => ({
    kind: "redirect",
    location: errorRedirect(p.redirect_uri!, error, description, p.state),
  });
  if (p.response_type !== "code") return fail("unsupported_response_type", "response_type must be code");
  if (!p.code_challenge) return fail("invalid_request", "code_challenge is required (PKCE)");
  if (p.code_challenge_method !== "S256") {
    return fail("invalid_request", "code_challenge_method must be S256 (plain is not allowed)");
  }
  if (!CODE_CHALLENGE.test(p.code_challenge)) {
    return fail(
      "invalid_request",
      "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
    );
  }
  if (p.project_id !== undefined && !PROJECT_ID.test(p.project_id)) {
    return fail("invalid_request", "project_id is not a project id");
  }
  const scopes = parseScopes(p.scope, new Set(Object.keys(app.schema.tables)));
  if (!scopes.ok) return fail("invalid_scope", scopes.description);
  return {
    kind: "ok",
    req: {
      app,
      redirectUri: p.redirect_uri,
      scopes: scopes.scopes,
      state: p.state,
      codeChallenge: p.code_challenge,
      projectId: p.project_id,
    },
  };
}
