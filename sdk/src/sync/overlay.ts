/**
 * The optimistic view: confirmed rows with the queued mutations of the same table laid over
 * them in id order, as the server will apply them (docs/sync.md, Conflicts): an insert or
 * upsert merges the columns it sends, an update changes only its columns of an existing row
 * (and moves it when it changes the key), a delete removes the row. A row inserted without its
 * key (the server generates it) shows under a local key until its change arrives.
 */
import type { QueuedMutation, Row } from "../replica/types.ts";
import type { TableKeys } from "./tables.ts";

/** The key of a row the server has not keyed yet. */
export const localKey = (id: number): string => `~${id}`;

/** Lays `mutations` (of one table, in id order) over `view` in place. */
export function fold(view: Map<string, Row>, mutations: readonly QueuedMutation[], keys: TableKeys): void {
  for (const m of mutations) {
    switch (m.op) {
      case "insert":
      case "upsert": {
        const key = keys.of(m.row!) ?? localKey(m.id);
        const current = view.get(key);
        view.set(key, current ? { ...current, ...m.row } : { ...m.row });
        break;
      }
      case "update": {
        const key = keys.ofPk(m.pk!);
        const current = view.get(key);
        if (!current) break; // the server answers HEARTH_SYNC_ROW_NOT_FOUND
        const next = { ...current, ...m.values };
        const moved = keys.of(next);
        if (moved !== null && moved !== key) view.delete(key);
        view.set(moved ?? key, next);
        break;
      }
      case "delete":
        view.delete(keys.ofPk(m.pk!));
        break;
    }
  }
}
