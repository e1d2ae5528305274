/** The local-first sync engine (sdk/docs/offline.md; protocol: docs/sync.md). */
export { type BackoffOptions, backoffDelay } from "./backoff.ts";
export type { WebSocketConstructor, WebSocketLike } from "./connection.ts";
export { createSync, SyncEngine, type Tables } from "./engine.ts";
export { SyncConfigError, SyncError, SyncMutationError } from "./errors.ts";
export {
  type FileTables,
  READ_ONLY_TABLES,
  type StorageBucketRow,
  type StorageObjectRow,
  type WritableTable,
} from "./files.ts";
export type { LiveOptions } from "./live.ts";
export type { Change, ErrorBody, PushStatus, SyncLimits } from "./protocol.ts";
export type { OrderBy, QueryOptions } from "./query.ts";
export type { TableSpec, TablesOption } from "./tables.ts";
export type {
  MutationPromise,
  MutationResult,
  RowCodec,
  SyncEvents,
  SyncOptions,
  SyncStatus,
} from "./types.ts";
