/**
 * `POST /object/list/<bucket>`: the entries directly under a folder, as Supabase lists them:
 * files with their metadata, sub-folders with nulls. One SQL statement over the primary key
 * range of the folder; the sort column comes from a fixed list, every value is bound.
 */
import type { Access } from "../policy.ts";
import { listMetadata } from "./objects.ts";
import type { ObjectRow, SortColumn } from "./types.ts";

const ORDER_COLUMN: Record<SortColumn, string> = {
  name: "entry",
  created_at: "created_at",
  updated_at: "updated_at",
  last_accessed_at: "last_accessed_at",
};

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function listFolder(
  sql: SqlStorage,
  bucket: string,
  access: Access,
  req: {
    prefix: string;
    limit: number;
    offset: number;
    sortColumn: SortColumn;
    sortOrder: "asc" | "desc";
    search: string;
  },
): Record<string, unknown>[] {
  const col = ORDER_COLUMN[req.sortColumn];
  const dir = req.sortOrder === "desc" ? "DESC" : "ASC";
  // PostgreSQL's placement of NULLs (folders' timestamps): last ascending, first descending.
  const order =
    col === "entry"
      ? `entry ${dir}`
      : `(${col} IS NULL) ${dir === "ASC" ? "ASC" : "DESC"}, ${col} ${dir}, entry ASC`;
  const own = access.kind === "own";
  const query = `
    WITH rest AS (
      SELECT substr(name, length(?1) + 1) AS r, * FROM _hearth_storage_objects
      WHERE bucket = ?2 AND name >= ?1 AND name < ?3 ${own ? "AND owner = ?4" : ""}
    ),
    entries AS (
      SELECT r AS entry, 0 AS folder, name, id, version, key, size, content_type, cache_control, checksum,
             owner, metadata, created_at, updated_at, last_accessed_at
      FROM rest WHERE instr(r, '/') = 0
      UNION ALL
      SELECT DISTINCT substr(r, 1, instr(r, '/') - 1) AS entry, 1 AS folder, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM rest WHERE instr(r, '/') > 0
    )
    SELECT * FROM entries WHERE lower(entry) LIKE ?5 ESCAPE '\\'
    ORDER BY ${order} LIMIT ?6 OFFSET ?7`;
  const rows = sql.exec(
    query,
    req.prefix,
    bucket,
    `${req.prefix}\u{10FFFF}`,
    own ? access.ownerId : null,
    `${likeEscape(req.search.toLowerCase())}%`,
    req.limit,
    req.offset,
  );
  const out: Record<string, unknown>[] = [];
  for (const r of rows) {
    if (Number(r.folder) === 1) {
      out.push({
        name: r.entry,
        id: null,
        updated_at: null,
        created_at: null,
        last_accessed_at: null,
        metadata: null,
      });
      continue;
    }
    const row = r as unknown as ObjectRow;
    out.push({
      name: r.entry,
      id: row.id,
      updated_at: row.updated_at,
      created_at: row.created_at,
      last_accessed_at: row.last_accessed_at,
      metadata: listMetadata(row),
    });
  }
  return out;
}
