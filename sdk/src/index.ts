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
export {
  assertNoEncryptedFilter,
  CIPHERTEXT_PREFIX,
  type CipherContext,
  type CiphertextFormat,
  CRYPTO_ERROR_CODES,
  type CryptoErrorCode,
  changePassphrase,
  decryptRow,
  decryptValue,
  type EncryptionColumn,
  type EncryptionSchema,
  type EncryptOptions,
  encryptedColumns,
  encryptRow,
  encryptValue,
  exportRawDataKey,
  exportRecoveryPhrase,
  generateDataKey,
  HearthCryptoError,
  importRawDataKey,
  importRecoveryPhrase,
  isCiphertext,
  type KeyEnvelope,
  type KeyImportOptions,
  PBKDF2_MIN_ITERATIONS,
  parseKeyEnvelope,
  type RowCryptoOptions,
  toNonExtractable,
  unwrapDataKey,
  type WrapOptions,
  wrapDataKey,
} from "./crypto/index.ts";
export { CLIENT_ERROR_CODES, HearthError, type HearthErrorCode } from "./errors.ts";
export {
  type ChangeEvent,
  createRealtime,
  type Presence,
  type Realtime,
  type RealtimeOptions,
  type TableChange,
} from "./realtime/index.ts";
export {
  IndexedDbReplica,
  type IndexedDbReplicaOptions,
  MemoryReplica,
  type QueuedMutation,
  type Replica,
  type ReplicaMeta,
  type ReplicaPersistence,
} from "./replica/index.ts";
export { ReplicaInUseError, type ReplicaLocks } from "./replica/indexeddb.ts";
export {
  type BackoffOptions,
  backoffDelay,
  createSync,
  type FileTables,
  type LiveOptions,
  type MutationPromise,
  type MutationResult,
  type OrderBy,
  type QueryOptions,
  READ_ONLY_TABLES,
  type RowCodec,
  type StorageBucketRow,
  type StorageObjectRow,
  SyncConfigError,
  SyncEngine,
  SyncError,
  type SyncEvents,
  SyncMutationError,
  type SyncOptions,
  type SyncStatus,
  type TableSpec,
  type Tables as SyncTables,
  type TablesOption,
  type WebSocketConstructor,
  type WebSocketLike,
  type WritableTable,
} from "./sync/index.ts";
export { schemaToTypeScript, type TypesOptions } from "./types/generate.ts";
export type { ColumnType, HearthColumn, HearthSchema, HearthTable } from "./types/schema.ts";
