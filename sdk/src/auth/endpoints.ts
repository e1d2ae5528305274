/**
 * The wire calls of sign-in: GoTrue's `/auth/v1` subset (JSON bodies, `{code, msg}` errors)
 * and OAuth 2.1's `/oauth/token` and `/oauth/revoke` (form bodies, `{error}` errors).
 * Stateless: `auth-client.ts` keeps the session.
 */
import { errorFromResponse, HearthError } from "../errors.ts";

export interface AuthTransport {
  /** The platform root, where `/oauth/*` lives. */
  platformUrl: string;
  /** `{url}/auth/v1` when the client has a project key, else `{platform}/auth/v1` (no key needed). */
  authUrl: string;
  /** The project key sent as `apikey` to a project's `/auth/v1`; null at the platform root. */
  apikey: string | null;
  /** fetch with the client's own headers; retries only reads (sign-in calls are not idempotent). */
  fetch: (url: string, init: RequestInit) => Promise<Response>;
}

async function json(t: AuthTransport, url: string, init: RequestInit): Promise<unknown> {
  const res = await t.fetch(url, init);
  if (!res.ok) throw await errorFromResponse(res);
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HearthError(
      "HEARTH_BAD_RESPONSE",
      `The server answered ${res.status} with a body that is not JSON`,
      {
        status: res.status,
        details: text.slice(0, 500),
        requestId: res.headers.get("x-request-id"),
      },
    );
  }
}

function headers(t: AuthTransport, token: string | null, body: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (t.apikey) h.apikey = t.apikey;
  if (token) h.authorization = `Bearer ${token}`;
  if (body) h["content-type"] = "application/json";
  return h;
}

export function signUpRequest(t: AuthTransport, body: Record<string, unknown>): Promise<unknown> {
  return json(t, `${t.authUrl}/signup`, {
    method: "POST",
    headers: headers(t, null, true),
    body: JSON.stringify(body),
  });
}

export function tokenRequest(
  t: AuthTransport,
  grantType: "password" | "refresh_token",
  body: Record<string, unknown>,
): Promise<unknown> {
  return json(t, `${t.authUrl}/token?grant_type=${grantType}`, {
    method: "POST",
    headers: headers(t, null, true),
    body: JSON.stringify(body),
  });
}

export function userRequest(t: AuthTransport, accessToken: string): Promise<unknown> {
  return json(t, `${t.authUrl}/user`, { method: "GET", headers: headers(t, accessToken, false) });
}

export async function logoutRequest(
  t: AuthTransport,
  accessToken: string,
  scope: "global" | "local" | "others",
): Promise<void> {
  await json(t, `${t.authUrl}/logout?scope=${scope}`, {
    method: "POST",
    headers: headers(t, accessToken, false),
  });
}

function form(fields: Record<string, string>): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  };
}

/** `POST /oauth/token` (RFC 6749 §4.1.3 and §6). */
export function oauthTokenRequest(t: AuthTransport, fields: Record<string, string>): Promise<unknown> {
  return json(t, `${t.platformUrl}/oauth/token`, form(fields));
}

/** `POST /oauth/revoke` (RFC 7009): always 200, whatever the token. */
export async function oauthRevokeRequest(t: AuthTransport, fields: Record<string, string>): Promise<void> {
  await json(t, `${t.platformUrl}/oauth/revoke`, form(fields));
}

export interface AuthorizeUrlParams {
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string;
  codeChallenge: string;
  projectId?: string;
}

/** `GET /oauth/authorize?...` with PKCE S256 (docs/api.md "Apps and OAuth"). */
export function authorizeUrl(platformUrl: string, p: AuthorizeUrlParams): string {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: p.clientId,
    redirect_uri: p.redirectUri,
    scope: p.scope,
    state: p.state,
    code_challenge: p.codeChallenge,
    code_challenge_method: "S256",
  });
  if (p.projectId !== undefined) q.set("project_id", p.projectId);
  return `${platformUrl}/oauth/authorize?${q}`;
}
