/**
 * Server configuration read from the Worker's env, with the local defaults of `npm start`.
 * A deployed Worker (HEARTH_ENV=production, the wrangler.toml default) refuses to run with
 * the local default admin key or JWT secret, or without them.
 */
import { HearthError } from "../shared/errors.ts";
import { DEV_ADMIN_KEY, DEV_JWT_SECRET, type Env } from "./env.ts";

export interface Config {
  adminKey: string;
  jwtSecret: string;
  maxBodyBytes: number;
  /** `POST {url}/import`: the zip is staged in R2, so it may be far larger than a body */
  maxImportBytes: number;
  production: boolean;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_IMPORT_BYTES = 10 * 1024 ** 3;

export function readConfig(env: Env): Config {
  const production = (env.HEARTH_ENV ?? "production") === "production";
  const adminKey = env.HEARTH_ADMIN_KEY || (production ? "" : DEV_ADMIN_KEY);
  const jwtSecret = env.HEARTH_JWT_SECRET || (production ? "" : DEV_JWT_SECRET);
  if (production) {
    if (!adminKey || adminKey === DEV_ADMIN_KEY) {
      throw new HearthError(
        "HEARTH_MISCONFIGURED",
        "This deployment has no admin key of its own: set the HEARTH_ADMIN_KEY secret (wrangler secret put HEARTH_ADMIN_KEY).",
      );
    }
    if (!jwtSecret || jwtSecret === DEV_JWT_SECRET || jwtSecret.length < 32) {
      throw new HearthError(
        "HEARTH_MISCONFIGURED",
        "This deployment has no JWT secret of its own: set HEARTH_JWT_SECRET (32+ random characters) with wrangler secret put.",
      );
    }
  }
  const parsed = Number(env.HEARTH_MAX_BODY_BYTES);
  const maxBodyBytes = Number.isFinite(parsed) && parsed > 0 ? parsed : DEFAULT_MAX_BODY_BYTES;
  const importParsed = Number(env.HEARTH_MAX_IMPORT_BYTES);
  const maxImportBytes =
    Number.isFinite(importParsed) && importParsed > 0 ? importParsed : DEFAULT_MAX_IMPORT_BYTES;
  return { adminKey, jwtSecret, maxBodyBytes, maxImportBytes, production };
}
