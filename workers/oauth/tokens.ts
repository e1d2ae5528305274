/**
 * Secrets of the OAuth flow: random opaque tokens (codes, refresh tokens, client secrets),
 * PKCE S256, and the app access token (a JWT, so the gateway verifies it without a D1 read;
 * revocation is still checked per request, see grant-check.ts).
 */
import { SignJWT } from "jose";

export const ACCESS_TOKEN_TTL_S = 60 * 60;
export const REFRESH_TOKEN_TTL_MS = 30 * 24 * 60 * 60 * 1000;
export const CODE_TTL_MS = 60 * 1000;

const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** 32 random bytes, base64url, with a readable prefix so leaked secrets are recognisable. */
export function randomToken(prefix: string): string {
  return `${prefix}${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** PKCE S256: BASE64URL(SHA-256(ASCII(verifier))) (RFC 7636 §4.2). */
export async function s256(verifier: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(verifier))));
}

/** RFC 7636 §4.1: 43–128 unreserved characters. */
export const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** An S256 challenge is the base64url of 32 bytes: exactly 43 characters. */
export const CODE_CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;

export interface AppTokenClaims {
  accountId: string;
  clientId: string;
  grantId: string;
  scopes: string[];
  projectId: string;
}

export async function signAppToken(secret: string, claims: AppTokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    typ: "app",
    client_id: claims.clientId,
    grant_id: claims.grantId,
    scope: claims.scopes.join(" "),
    ref: claims.projectId,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("hearth")
    .setSubject(claims.accountId)
    .setIssuedAt(now)
    .setExpirationTime(now + ACCESS_TOKEN_TTL_S)
    .sign(encoder.encode(secret));
}

/** Constant-time comparison of two strings through their SHA-256 digests. */
export async function sameHash(aHex: string, bHex: string): Promise<boolean> {
  const a = encoder.encode(aHex);
  const b = encoder.encode(bHex);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}
