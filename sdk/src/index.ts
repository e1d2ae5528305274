/**
 * @hearth/sdk: the Hearth client. See sdk/README.md.
 *
 * The SDK imports no server code (workers/, durable-objects/); wire types it shares with the
 * server come from shared/ only.
 */
export const SDK_VERSION = "0.1.0";

export type { AppSignIn } from "./auth/app-sign-in.ts";
export type { AuthEvent, AuthListener, HearthAuth } from "./auth/auth-client.ts";
export type { AccountSession, AppSession, Session, User } from "./auth/session.ts";
export { type AuthStorage, memoryStorage } from "./auth/storage.ts";
export { type AuthOptions, type ClientOptions, createClient, HearthClient } from "./client/client.ts";
export type { RetryOptions } from "./client/retry.ts";
export { CLIENT_ERROR_CODES, HearthError, type HearthErrorCode } from "./errors.ts";
export { schemaToTypeScript, type TypesOptions } from "./types/generate.ts";
export type { ColumnType, HearthColumn, HearthSchema, HearthTable } from "./types/schema.ts";
