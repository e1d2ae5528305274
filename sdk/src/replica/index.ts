/** Local replicas for the sync engine (sdk/docs/offline.md). */
export { IndexedDbReplica, type IndexedDbReplicaOptions } from "./indexeddb.ts";
export { MemoryReplica, type MemoryReplicaOptions, type ReplicaPersistence } from "./memory.ts";
export type {
  MutationOp,
  QueuedMutation,
  Replica,
  ReplicaBatch,
  ReplicaContents,
  ReplicaMeta,
  Row,
  RowWrite,
} from "./types.ts";
