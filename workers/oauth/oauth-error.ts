/**
 * OAuth endpoints answer errors as RFC 6749 §5.2 JSON `{error, error_description}`, not as
 * Hearth's PostgREST-shaped errors: OAuth client libraries parse exactly these fields.
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "server_error";

export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = error === "invalid_client" ? 401 : 400,
  ) {
    super(description);
  }
}

export function oauthErrorResponse(err: OAuthError, requestId: string): Response {
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    "x-request-id": requestId,
  };
  // RFC 6749 §5.2: a 401 for client authentication carries WWW-Authenticate.
  if (err.status === 401) headers["www-authenticate"] = 'Basic realm="hearth"';
  return new Response(JSON.stringify({ error: err.error, error_description: err.description }), {
    status: err.status,
    headers,
  });
}
