/**
 * Sessions as the SDK keeps them: an account's (GoTrue `/auth/v1`) or an app's (OAuth
 * `/oauth/token`). `expires_at` is computed on receipt from `expires_in`, so a client whose
 * clock is off still refreshes on time.
 */
import { HearthError } from "../errors.ts";

/** An account, as GoTrue's `/user` describes it (docs/api.md "Sessions"). */
export interface User {
  id: string;
  email?: string;
  aud?: string;
  role?: string;
  user_metadata?: Record<string, unknown>;
  app_metadata?: Record<string, unknown>;
  created_at?: string;
  updated_at?: string;
  [field: string]: unknown;
}

interface BaseSession {
  access_token: string;
  refresh_token: string;
  token_type: "bearer";
  /** Lifetime of the access token in seconds, as issued. */
  expires_in: number;
  /** When the access token expires, in unix seconds (local clock). */
  expires_at: number;
}

/** An account signed in with a password (or sign-up): its token works on every project it may use. */
export interface AccountSession extends BaseSession {
  kind: "account";
  user: User;
}

/** An app signed in with OAuth: its token works on one project, for the granted tables. */
export interface AppSession extends BaseSession {
  kind: "app";
  client_id: string;
  /** Granted scopes, space-separated: `db:<table>:read` / `db:<table>:write`. */
  scope: string;
  project_id: string;
  /** The project the grant is on; the client sends its queries there. */
  project_url: string;
  /** The account that granted access; an app token cannot read the account's profile. */
  user: { id: string };
}

export type Session = AccountSession | AppSession;

function bad(what: string, body: unknown): HearthError {
  return new HearthError("HEARTH_BAD_RESPONSE", `The ${what} answer is not a session`, {
    status: 200,
    details: JSON.stringify(body).slice(0, 500),
  });
}

function field(body: Record<string, unknown>, name: string): string | null {
  const v = body[name];
  return typeof v === "string" && v !== "" ? v : null;
}

function lifetime(body: Record<string, unknown>): number {
  const v = body.expires_in;
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 3600;
}

/** A GoTrue session answer (`/signup`, `/token`) → `AccountSession`. */
export function accountSessionFrom(body: unknown, now = Date.now()): AccountSession {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const access = field(b, "access_token");
  const refresh = field(b, "refresh_token");
  const user = b.user as User | undefined;
  if (!access || !refresh || typeof user?.id !== "string") throw bad("sign-in", body);
  const expiresIn = lifetime(b);
  return {
    kind: "account",
    access_token: access,
    refresh_token: refresh,
    token_type: "bearer",
    expires_in: expiresIn,
    expires_at: Math.floor(now / 1000) + expiresIn,
    user,
  };
}

/** The claims of a JWT, unverified (the server verifies; the client only reads `sub`). */
export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const b64 = part.replaceAll("-", "+").replaceAll("_", "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof claims === "object" && claims !== null ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** An OAuth token answer (`/oauth/token`) → `AppSession`. */
export function appSessionFrom(body: unknown, clientId: string, now = Date.now()): AppSession {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const access = field(b, "access_token");
  const refresh = field(b, "refresh_token");
  const projectId = field(b, "project_id");
  const projectUrl = field(b, "project_url");
  if (!access || !refresh || !projectId || !projectUrl) throw bad("token", body);
  const expiresIn = lifetime(b);
  const sub = jwtClaims(access).sub;
  return {
    kind: "app",
    access_token: access,
    refresh_token: refresh,
    token_type: "bearer",
    expires_in: expiresIn,
    expires_at: Math.floor(now / 1000) + expiresIn,
    client_id: clientId,
    scope: field(b, "scope") ?? "",
    project_id: projectId,
    project_url: projectUrl.replace(/\/+$/, ""),
    user: { id: typeof sub === "string" ? sub : "" },
  };
}

/** A stored session read back; null when absent or not one of ours (another version, tampering). */
export function parseStoredSession(text: string | null): Session | null {
  if (text === null) return null;
  try {
    const s = JSON.parse(text) as Partial<Session> | null;
    if (
      !s ||
      (s.kind !== "account" && s.kind !== "app") ||
      typeof s.access_token !== "string" ||
      typeof s.refresh_token !== "string" ||
      typeof s.expires_at !== "number" ||
      typeof s.expires_in !== "number"
    ) {
      return null;
    }
    if (s.kind === "app" && (typeof s.project_url !== "string" || typeof s.client_id !== "string"))
      return null;
    return s as Session;
  } catch {
    return null;
  }
}
