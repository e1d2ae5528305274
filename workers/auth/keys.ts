/**
 * Project API keys and token verification. Keys are HS256 JWTs signed with the server
 * secret (jose): `{iss:"hearth", ref:<projectId>, role:"anon"|"service", jti:<keyId>, iat}`.
 * A key is deterministic in its claims, so the catalog stores only its SHA-256 hash and
 * can re-derive the key for its owner. Verified tokens are cached per isolate until expiry,
 * which keeps the per-request cost of "check the token on every request" to a Map lookup
 * after the first use; revocation is still checked on every request by the project's DO.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";

export const KeyClaimsSchema = z.object({
  iss: z.literal("hearth"),
  ref: z.string().min(1),
  role: z.enum(["anon", "service"]),
  jti: z.string().min(1),
  iat: z.number().int(),
});
export type KeyClaims = z.infer<typeof KeyClaimsSchema>;

/** Access tokens of accounts (issued by the accounts/auth module). */
export const AccessClaimsSchema = z.object({
  iss: z.literal("hearth"),
  role: z.literal("authenticated"),
  sub: z.string().min(1),
  exp: z.number().int(),
  iat: z.number().int(),
  session_id: z.string().optional(),
  // Set by workers/auth/sessions.ts (GoTrue's claims); older tokens may lack them.
  aud: z.string().optional(),
  email: z.string().optional(),
});
export type AccessClaims = z.infer<typeof AccessClaimsSchema>;

/** Access tokens of apps (OAuth, workers/oauth/): act for `sub` under grant `grant_id` on project `ref`. */
export const AppClaimsSchema = z.object({
  iss: z.literal("hearth"),
  typ: z.literal("app"),
  sub: z.string().min(1),
  client_id: z.string().min(1),
  grant_id: z.string().min(1),
  scope: z.string(),
  ref: z.string().min(1),
  exp: z.number().int(),
  iat: z.number().int(),
});
export type AppClaims = z.infer<typeof AppClaimsSchema>;

export type VerifiedToken =
  | { kind: "key"; claims: KeyClaims }
  | { kind: "access"; claims: AccessClaims }
  | { kind: "app"; claims: AppClaims };

const encoder = new TextEncoder();
const secretCache = new Map<string, Uint8Array>();
function secretBytes(secret: string): Uint8Array {
  let bytes = secretCache.get(secret);
  if (!bytes) {
    bytes = encoder.encode(secret);
    secretCache.set(secret, bytes);
  }
  return bytes;
}

export async function signKey(secret: string, claims: Omit<KeyClaims, "iss">): Promise<string> {
  return new SignJWT({ ref: claims.ref, role: claims.role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("hearth")
    .setJti(claims.jti)
    .setIssuedAt(claims.iat)
    .sign(secretBytes(secret));
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const VERIFIED_CACHE_MAX = 2048;
const verifiedCache = new Map<string, { token: VerifiedToken; expiresAtMs: number }>();

function invalidToken(message: string): HearthError {
  return new HearthError("PGRST301", message, {
    hint: "Send a project key or access token as `Authorization: Bearer <jwt>` or `apikey: <jwt>`.",
  });
}

/** Verifies signature, issuer and claims shape; throws PGRST301 (401) otherwise. */
export async function verifyToken(secret: string, token: string): Promise<VerifiedToken> {
  const cached = verifiedCache.get(token);
  if (cached && cached.expiresAtMs > Date.now()) return cached.token;
  if (token.split(".").length !== 3) {
    throw invalidToken(`Expected 3 parts in JWT; got ${token.split(".").length}`);
  }
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, secretBytes(secret), { issuer: "hearth", algorithms: ["HS256"] }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw invalidToken("JWT expired");
    throw invalidToken("JWT cryptographic operation failed: the token is not signed by this server");
  }
  const asKey = KeyClaimsSchema.safeParse(payload);
  let verified: VerifiedToken;
  if (asKey.success) verified = { kind: "key", claims: asKey.data };
  else {
    const asAccess = AccessClaimsSchema.safeParse(payload);
    const asApp = asAccess.success ? null : AppClaimsSchema.safeParse(payload);
    if (asAccess.success) verified = { kind: "access", claims: asAccess.data };
    else if (asApp?.success) verified = { kind: "app", claims: asApp.data };
    else throw invalidToken("JWT claims are not those of a Hearth key or access token");
  }
  const expiresAtMs = verified.kind === "key" ? Date.now() + 10 * 60 * 1000 : verified.claims.exp * 1000;
  if (verifiedCache.size >= VERIFIED_CACHE_MAX) verifiedCache.clear();
  verifiedCache.set(token, { token: verified, expiresAtMs });
  return verified;
}

/** `Authorization: Bearer x` wins over `apikey: x`, as in PostgREST behind Supabase's gateway. */
export function bearerToken(headers: Headers): string | null {
  const auth = headers.get("authorization");
  if (auth) {
    const m = /^bearer\s+(.*)$/i.exec(auth.trim());
    if (m) {
      const token = m[1]!.trim();
      if (token === "") throw invalidToken("Empty JWT is sent in Authorization header");
      return token;
    }
  }
  const apikey = headers.get("apikey");
  return apikey ? apikey.trim() : null;
}
