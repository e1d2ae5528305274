/**
 * OAuth endpoints answer errors as RFC 6749 §5.2 JSON `{error, error_description}`, not as
 * Hearth's PostgREST-shaped errors: OAuth client libraries parse exactly these fields.
 */
import { type HearthError, hearthErrorIn } from "../../shared/errors.ts";

export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "server_error"
  | "temporarily_unavailable";

export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = error === "invalid_client" ? 401 : 400,
    readonly retryAfterSeconds?: number,
  ) {
    super(description);
  }
}

/**
 * An error of an OAuth endpoint in RFC 6749's words: an OAuthError as it is; a refusal that
 * says when to come back (the catalog down: 503 HEARTH_CATALOG_UNAVAILABLE, or a rate limit)
 * as `temporarily_unavailable` with its status and `retry-after`; anything else is not ours
 * to translate (null: the caller rethrows it).
 */
export function asOAuthError(err: unknown): OAuthError | null {
  if (err instanceof OAuthError) return err;
  const known = hearthErrorIn(err) as (HearthError & { retryAfterSeconds?: number }) | null;
  if (known && (known.status === 503 || known.status === 429)) {
    return new OAuthError("temporarily_unavailable", known.message, known.status, known.retryAfterSeconds);
  }
  return null;
}

export function oauthErrorResponse(err: OAuthError, requestId: string): Response {
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    "x-request-id": requestId,
  };
  // RFC 6749 §5.2: a 401 for client authentication carries WWW-Authenticate.
  if (err.status === 401) headers["www-authenticate"] = 'Basic realm="hearth"';
  if (err.retryAfterSeconds !== undefined) headers["retry-after"] = String(Math.ceil(err.retryAfterSeconds));
  return new Response(JSON.stringify({ error: err.error, error_description: err.description }), {
    status: err.status,
    headers,
  });
}
