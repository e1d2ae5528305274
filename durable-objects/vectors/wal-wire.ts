/**
 * The WAL's triggers write a vector column as `\x` + hex of its float32 bytes (SQLite cannot
 * print floats from a BLOB); change events (realtime, sync) carry the same JSON arrays as
 * REST. This converts the vector columns of WAL entries in place, once per entry, before the
 * feed hands them to its listeners.
 */
import { hexToBytes } from "../../shared/values.ts";
import { vectorFromStorage } from "../../shared/vector.ts";
import type { SchemaIndex } from "../schema-index.ts";
import type { WalEntry } from "../wal.ts";

function convert(record: Record<string, unknown> | null, columns: string[]): void {
  if (!record) return;
  for (const c of columns) {
    const v = record[c];
    if (typeof v !== "string" || !v.startsWith("\\x")) continue;
    const bytes = hexToBytes(v.slice(2));
    if (bytes && bytes.byteLength % 4 === 0) record[c] = vectorFromStorage(bytes);
  }
}

export function vectorsToWire(entries: WalEntry[], schema: SchemaIndex | null): void {
  if (!schema) return;
  const vectorColumns = new Map<string, string[]>();
  for (const entry of entries) {
    let columns = vectorColumns.get(entry.table);
    if (!columns) {
      const table = schema.tables.get(entry.table);
      columns = table
        ? [...table.columns.values()].filter((c) => c.type === "vector").map((c) => c.name)
        : [];
      vectorColumns.set(entry.table, columns);
    }
    if (columns.length === 0) continue;
    convert(entry.new, columns);
    convert(entry.old, columns);
  }
}
