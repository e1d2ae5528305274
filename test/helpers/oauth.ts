/**
 * Accounts and the OAuth flow of apps through the real endpoints (`/auth/v1/signup`,
 * `POST /v1/apps`, `POST /oauth/authorize` as JSON, `POST /oauth/token` with PKCE S256,
 * `/account/grants`). Shared by the workerd tests and the Node e2e tests: it imports nothing
 * from `cloudflare:*` and uses only web APIs, so each side passes its own `fetch`
 * (`exports.default.fetch` inside workerd, the global `fetch` against `npm start`).
 */

/** A `fetch` bound to the platform origin: `api.fetch("/v1/apps", init)`. */
export interface Api {
  /** The platform origin, e.g. `http://127.0.0.1:8787`. */
  origin: string;
  fetch: (url: string, init?: RequestInit) => Promise<Response>;
}

export const REDIRECT_URI = "https://app.example/callback";

export interface Account {
  id: string;
  email: string;
  accessToken: string;
  refreshToken: string;
}

export interface AppTokens {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  scope: string;
  project_id: string;
  project_url: string;
}

export interface Grant {
  id: string;
  app: { clientId: string; name: string };
  projectId: string;
  scopes: string[];
}

/** RFC 6749 §5.2 error body. */
export interface OAuthErrorBody {
  error: string;
  error_description?: string;
}

function url(api: Api, path: string): string {
  return path.startsWith("http") ? path : `${api.origin}${path}`;
}

async function expectStatus(res: Response, status: number, what: string): Promise<Response> {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${await res.text()}`);
  }
  return res;
}

function json(token: string | null, body: unknown, extra: Record<string, string> = {}): RequestInit {
  const headers: Record<string, string> = { "content-type": "application/json", ...extra };
  if (token) headers.authorization = `Bearer ${token}`;
  return { method: "POST", headers, body: JSON.stringify(body) };
}

let ipCounter = 0;
/** A distinct client IP per sign-up, so the per-IP sign-up limit of one test never spills over. */
function freshIp(): string {
  ipCounter++;
  return `10.${Math.floor(Math.random() * 250)}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

export function uniqueEmail(tag: string): string {
  return `${tag}-${crypto.randomUUID().slice(0, 12)}@example.test`;
}

/** `POST /auth/v1/signup` at the platform root: a new account (and its personal project). */
export async function signup(api: Api, tag: string, password = "correct horse battery"): Promise<Account> {
  const email = uniqueEmail(tag);
  const res = await expectStatus(
    await api.fetch(
      url(api, "/auth/v1/signup"),
      json(null, { email, password }, { "cf-connecting-ip": freshIp() }),
    ),
    200,
    `signup ${email}`,
  );
  const session = (await res.json()) as { access_token: string; refresh_token: string; user: { id: string } };
  return {
    id: session.user.id,
    email,
    accessToken: session.access_token,
    refreshToken: session.refresh_token,
  };
}

export interface CreatedProject {
  id: string;
  url: string;
  anonKey: string;
  serviceKey: string;
}

/** `POST /v1/projects` with an account token: a project owned by that account. */
export async function createOwnedProject(
  api: Api,
  accountToken: string,
  name: string,
): Promise<CreatedProject> {
  const res = await expectStatus(
    await api.fetch(url(api, "/v1/projects"), json(accountToken, { name })),
    201,
    "create project",
  );
  return (await res.json()) as CreatedProject;
}

/** `POST /v1/projects/:id/members` → 201. */
export async function addMember(
  api: Api,
  token: string,
  projectId: string,
  email: string,
  role: "reader" | "writer" | "admin",
): Promise<void> {
  await expectStatus(
    await api.fetch(url(api, `/v1/projects/${projectId}/members`), json(token, { email, role })),
    201,
    `add member ${email}`,
  );
}

/** `POST /v1/apps` (public client unless `confidential`) → its client id. */
export async function registerApp(
  api: Api,
  developerToken: string,
  name: string,
  tables: Record<string, unknown>,
  redirectUris: string[] = [REDIRECT_URI],
): Promise<{ clientId: string; clientSecret?: string }> {
  const res = await expectStatus(
    await api.fetch(
      url(api, "/v1/apps"),
      json(developerToken, { name, redirectUris, confidential: false, schema: { tables } }),
    ),
    201,
    `register app ${name}`,
  );
  return (await res.json()) as { clientId: string; clientSecret?: string };
}

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A PKCE pair (RFC 7636, S256). */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

export interface AuthorizeParams {
  clientId: string;
  scope: string;
  challenge: string;
  redirectUri?: string;
  projectId?: string;
  state?: string;
  decision?: "approve" | "deny";
}

/** `POST /oauth/authorize` as JSON with the account's token; the answer is not followed. */
export function authorize(api: Api, accountToken: string, p: AuthorizeParams): Promise<Response> {
  return api.fetch(url(api, "/oauth/authorize"), {
    ...json(accountToken, {
      response_type: "code",
      client_id: p.clientId,
      redirect_uri: p.redirectUri ?? REDIRECT_URI,
      scope: p.scope,
      state: p.state ?? "state-1",
      code_challenge: p.challenge,
      code_challenge_method: "S256",
      decision: p.decision ?? "approve",
      ...(p.projectId === undefined ? {} : { project_id: p.projectId }),
    }),
    redirect: "manual",
  });
}

/** The `code` of an approving 302, after checking `state` came back. */
export async function codeFrom(res: Response, state = "state-1"): Promise<string> {
  const location = res.headers.get("location");
  if (res.status !== 302 || !location) {
    throw new Error(`authorize: expected a 302 with a location, got ${res.status} ${await res.text()}`);
  }
  const params = new URL(location).searchParams;
  const code = params.get("code");
  if (params.get("state") !== state || !code)
    throw new Error(`authorize: no code or wrong state in ${location}`);
  return code;
}

/** `POST /oauth/token`, form-encoded (RFC 6749). */
export function tokenRequest(api: Api, form: Record<string, string>): Promise<Response> {
  return api.fetch(url(api, "/oauth/token"), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

/** Approve + exchange with PKCE: the whole happy path, as an app would run it. */
export async function connectApp(
  api: Api,
  accountToken: string,
  p: Omit<AuthorizeParams, "challenge" | "decision">,
): Promise<AppTokens> {
  const { verifier, challenge } = await pkce();
  const code = await codeFrom(await authorize(api, accountToken, { ...p, challenge }), p.state);
  const res = await expectStatus(
    await tokenRequest(api, {
      grant_type: "authorization_code",
      code,
      redirect_uri: p.redirectUri ?? REDIRECT_URI,
      client_id: p.clientId,
      code_verifier: verifier,
    }),
    200,
    "token exchange",
  );
  return (await res.json()) as AppTokens;
}

/** `GET /account/grants`. */
export async function listGrants(api: Api, accountToken: string): Promise<Grant[]> {
  const res = await expectStatus(
    await api.fetch(url(api, "/account/grants"), { headers: { authorization: `Bearer ${accountToken}` } }),
    200,
    "list grants",
  );
  return (await res.json()) as Grant[];
}

/** The live grant of app `clientId` on `projectId`. */
export async function grantOf(
  api: Api,
  accountToken: string,
  clientId: string,
  projectId: string,
): Promise<Grant> {
  const grant = (await listGrants(api, accountToken)).find(
    (g) => g.app.clientId === clientId && g.projectId === projectId,
  );
  if (!grant) throw new Error(`no live grant of ${clientId} on ${projectId}`);
  return grant;
}

/** `DELETE /account/grants/:id` → 204. */
export async function revokeGrant(api: Api, accountToken: string, grantId: string): Promise<void> {
  await expectStatus(
    await api.fetch(url(api, `/account/grants/${grantId}`), {
      method: "DELETE",
      headers: { authorization: `Bearer ${accountToken}` },
    }),
    204,
    "revoke grant",
  );
}
