/**
 * Signed URLs: an HS256 JWT naming the project, the object (`bucket/path`) and the right
 * (read or upload), with an expiry. The key is derived from the JWT secret with its own
 * label, so a signed-URL token is never a valid API key or access token, and an API key is
 * never a valid signed-URL token.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";

const keys = new Map<string, Uint8Array>();

async function signingKey(secret: string): Promise<Uint8Array> {
  let k = keys.get(secret);
  if (!k) {
    const bytes = new TextEncoder().encode(`hearth-storage-url\u0000${secret}`);
    k = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    keys.set(secret, k);
  }
  return k;
}

const ClaimsSchema = z.object({
  ref: z.string(),
  url: z.string(),
  right: z.enum(["read", "upload"]),
  owner: z.string().nullable().optional(),
  upsert: z.boolean().optional(),
  exp: z.number(),
});
export type SignedClaims = z.infer<typeof ClaimsSchema>;

export async function signUrlToken(
  secret: string,
  claims: { ref: string; url: string; right: "read" | "upload"; owner?: string | null; upsert?: boolean },
  expiresInSeconds: number,
): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(await signingKey(secret));
}

/** Checks signature, expiry, project, object and right; 403 for a forged or altered token, 400 expired. */
export async function verifyUrlToken(
  secret: string,
  token: string | null,
  expect: { ref: string; url: string; right: "read" | "upload" },
): Promise<SignedClaims> {
  if (!token) {
    throw new HearthError("HEARTH_STORAGE_SIGNATURE_INVALID", "The signed URL has no token", {
      hint: "Create one with createSignedUrl / createSignedUploadUrl.",
    });
  }
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, await signingKey(secret), { algorithms: ["HS256"] }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) {
      throw new HearthError("HEARTH_STORAGE_URL_EXPIRED", "The signed URL has expired", {
        hint: "Create a new signed URL.",
      });
    }
    throw new HearthError("HEARTH_STORAGE_SIGNATURE_INVALID", "The signed URL's signature does not match", {
      hint: "The token was altered, or was not issued by this server.",
    });
  }
  const claims = ClaimsSchema.safeParse(payload);
  if (
    !claims.success ||
    claims.data.ref !== expect.ref ||
    claims.data.url !== expect.url ||
    claims.data.right !== expect.right
  ) {
    throw new HearthError(
      "HEARTH_STORAGE_SIGNATURE_INVALID",
      "The signed URL was issued for another object",
      {
        hint: "Use the URL exactly as createSignedUrl returned it.",
      },
    );
  }
  return claims.data;
}
