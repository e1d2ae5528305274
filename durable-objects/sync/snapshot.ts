/**
 * Snapshots for `resync`: each followed table read in primary-key order by keyset pages
 * (`order=<pk>.asc&<pk>=gt.<last>&limit=N`) through the REST read path, which merges hot
 * and flushed rows and applies the table's policy and the app's scopes exactly as an HTTP
 * read does. Keyset pages (not offsets) never skip a row that exists throughout, however
 * the table changes between pages.
 *
 * Consistency: the snapshot's cursor C is the WAL's last LSN taken before the first page.
 * Every page reflects the table at some moment after C, so each row holds its state at C
 * or a later one; the client then applies every change after C in order, as an upsert or
 * delete by primary key, and ends with the state at the last change it applied (docs/sync.md).
 */
import { HearthError } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";
import type { TableInfo } from "../schema-index.ts";

export interface SnapshotState {
  /** the snapshot's cursor C */
  cursor: number;
  /** index into the socket's tables */
  table: number;
  /** primary key of the last row sent, null before the first page of a table */
  after: unknown[] | null;
}

type Rest = (principal: Principal, request: Request) => Promise<Response>;

/** A filter value inside a logic tree: double-quoted, `\` and `"` escaped. */
function quoted(v: unknown): string {
  return `"${String(v).replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** Rows with a primary key after `after`, in key order: a filter in the PostgREST dialect. */
function keysetFilter(params: URLSearchParams, cols: string[], after: unknown[]): void {
  if (cols.length === 1) {
    params.set(cols[0]!, `gt.${String(after[0])}`);
    return;
  }
  const terms = cols.map((c, i) => {
    const eqs = cols.slice(0, i).map((p, j) => `${p}.eq.${quoted(after[j])}`);
    const gt = `${c}.gt.${quoted(after[i])}`;
    return eqs.length === 0 ? gt : `and(${[...eqs, gt].join(",")})`;
  });
  params.set("or", `(${terms.join(",")})`);
}

export interface Page {
  rows: Record<string, unknown>[];
  /** the key to continue after, or null when the table is done */
  next: unknown[] | null;
}

/** One keyset page of `table` as `principal` sees it. */
export async function readPage(
  rest: Rest,
  principal: Principal,
  table: TableInfo,
  after: unknown[] | null,
  limit: number,
): Promise<Page> {
  const params = new URLSearchParams();
  params.set("order", table.primaryKey.map((c) => `${c}.asc`).join(","));
  params.set("limit", String(limit));
  if (after) keysetFilter(params, table.primaryKey, after);
  const url = `http://hearth/p/${principal.projectId}/rest/v1/${encodeURIComponent(table.name)}?${params}`;
  const res = await rest(principal, new Request(url, { method: "GET" }));
  if (!res.ok) {
    throw new HearthError("HEARTH_INTERNAL", `Snapshot read of ${table.name} answered ${res.status}`);
  }
  const rows = (await res.json()) as Record<string, unknown>[];
  const last = rows[rows.length - 1];
  const next = rows.length < limit || !last ? null : table.primaryKey.map((c) => last[c]);
  return { rows, next };
}

/** Rows as JSON texts in groups of about `maxBytes` (a single large row goes alone). */
export function rowGroups(rows: Record<string, unknown>[], maxBytes: number): string[][] {
  const groups: string[][] = [];
  let group: string[] = [];
  let size = 0;
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (group.length > 0 && size + json.length > maxBytes) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push(json);
    size += json.length + 1;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
