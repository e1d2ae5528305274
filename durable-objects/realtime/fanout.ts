/**
 * postgres_changes frames for one committed WAL entry: which channels hear it, with which
 * binding ids, and the frame each receives. Visibility (policy, scopes) is decided once per
 * distinct principal and the payload serialized once per principal, not once per socket.
 */
import { HearthError } from "../../shared/errors.ts";
import { matches } from "../../shared/rest/evaluate.ts";
import type { SchemaIndex } from "../schema-index.ts";
import { type FileVisibility, fileTable, fileTableOfWal } from "../storage/changes.ts";
import type { WalEntry } from "../wal.ts";
import { columnLookup, pgColumns, type VisibleChange, visibleChange } from "./changes.ts";
import type { Channel } from "./channel.ts";
import type { SocketAuth } from "./sockets.ts";

const principalKeys = new WeakMap<SocketAuth, string>();

/** Subscribers with equal principals see the same rows: one visibility answer per key. */
export function principalKey(auth: SocketAuth): string {
  let key = principalKeys.get(auth);
  if (key === undefined) {
    key = JSON.stringify(auth.principal);
    principalKeys.set(auth, key);
  }
  return key;
}

export interface FanoutSink<S> {
  send(socket: S, channel: Channel, frame: string): void;
  /** a binding's filter failed on this row (a column dropped or retyped since the join) */
  broken(socket: S, channel: Channel, err: HearthError): void;
}

/**
 * File entries (`_storage.objects`, `_storage.buckets`) go to bindings on schema "storage",
 * as `storage.objects` / `storage.buckets` rows, to subscribers `files` says may see them.
 */
export function fanOutChange<S>(
  entry: WalEntry,
  schema: SchemaIndex | null,
  subscribers: Iterable<[S, Channel]>,
  sink: FanoutSink<S>,
  files: FileVisibility,
): void {
  const fileName = fileTableOfWal(entry.table);
  const table = fileName ? fileTable(fileName) : (schema?.tables.get(entry.table) ?? null);
  if (!table) return;
  const pgSchema = fileName ? "storage" : "public";
  const pgTable = fileName ? fileName.slice("storage.".length) : table.name;
  const lookup = columnLookup(table);
  const byPrincipal = new Map<string, { change: VisibleChange | null; data: string | null }>();
  let columns: string | null = null;
  for (const [socket, ch] of subscribers) {
    if (ch.compiled.length === 0) continue;
    const candidates = ch.compiled.filter(
      (b) => b.schema === pgSchema && (b.table === null || b.table === table.name),
    );
    if (candidates.length === 0) continue;
    const pkey = principalKey(ch.auth);
    let seen = byPrincipal.get(pkey);
    if (!seen) {
      const change = fileName
        ? files.visible(ch.auth.principal, entry)
        : visibleChange(ch.auth.principal, table, entry);
      seen = { change, data: null };
      byPrincipal.set(pkey, seen);
    }
    const change = seen.change;
    if (!change) continue;
    const row = change.type === "DELETE" ? change.old! : change.record!;
    const ids: number[] = [];
    try {
      for (const b of candidates) {
        if (b.event !== "*" && b.event !== change.type) continue;
        if (b.conditions.length > 0 && !matches(b.conditions, row, lookup)) continue;
        ids.push(b.id);
      }
    } catch (err) {
      if (!(err instanceof HearthError)) throw err;
      sink.broken(socket, ch, err);
      continue;
    }
    if (ids.length === 0) continue;
    columns ??= JSON.stringify(pgColumns(table));
    seen.data ??= JSON.stringify({
      schema: pgSchema,
      table: pgTable,
      commit_timestamp: new Date(entry.ts).toISOString(),
      type: change.type,
      record: change.record ?? {},
      old_record: change.old ?? {},
      errors: null,
      lsn: entry.lsn,
    });
    const data = `${seen.data.slice(0, -1)},"columns":${columns}}`;
    sink.send(
      socket,
      ch,
      `[null,null,${JSON.stringify(ch.topic)},"postgres_changes",{"ids":${JSON.stringify(ids)},"data":${data}}]`,
    );
  }
}
