import type { Context } from "hono";
import { HearthError } from "../../shared/errors.ts";
import { readConfig } from "../config.ts";
import type { AppEnv } from "../env.ts";
import { bearerToken, sha256Hex, type VerifiedToken, verifyToken } from "./keys.ts";
import { sessionIsLive } from "./sessions.ts";

export type Caller = { kind: "admin" } | { kind: "account"; accountId: string };

async function sameSecret(a: string, b: string): Promise<boolean> {
  // Compare digests of equal length so the comparison time says nothing about the key.
  const [da, db] = await Promise.all([sha256Hex(a), sha256Hex(b)]);
  const ea = new TextEncoder().encode(da);
  const eb = new TextEncoder().encode(db);
  return crypto.subtle.timingSafeEqual(ea, eb);
}

/** The admin key, or an account's access token, for the platform API (`/v1/...`). */
export async function platformCaller(c: Context<AppEnv>): Promise<Caller> {
  const config = readConfig(c.env);
  const token = bearerToken(c.req.raw.headers);
  if (!token) {
    throw new HearthError(
      "HEARTH_UNAUTHORIZED",
      "Missing credentials: send `Authorization: Bearer <admin key>`.",
    );
  }
  if (await sameSecret(token, config.adminKey)) return { kind: "admin" };
  let verified: VerifiedToken;
  try {
    verified = await verifyToken(config.jwtSecret, token);
  } catch {
    throw new HearthError(
      "HEARTH_UNAUTHORIZED",
      "Invalid credentials: not the admin key nor a valid access token.",
    );
  }
  if (verified.kind !== "access") {
    throw new HearthError(
      "HEARTH_FORBIDDEN",
      "A project key cannot manage projects: use the admin key or an account access token.",
    );
  }
  if (!(await sessionIsLive(c.env.CATALOG, verified.claims))) {
    throw new HearthError(
      "HEARTH_UNAUTHORIZED",
      "The session of this access token has ended: sign in again.",
    );
  }
  return { kind: "account", accountId: verified.claims.sub };
}
