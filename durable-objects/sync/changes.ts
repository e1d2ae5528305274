/**
 * Changes as a sync client receives them, `{"lsn","ts","table","op","pk","row"?}`, cut to
 * what the subscriber may read: the same rule as realtime (realtime/changes.ts
 * `visibleChange`): a row it may not read never reaches it; an UPDATE that moves a row
 * into its view arrives as an insert, out of it as a delete. An UPDATE that changes the
 * primary key arrives as a delete of the old key and an insert of the new row, so a client
 * applying changes by primary key converges.
 *
 * Two paths build the same text: `readChanges` for catching up reads the WAL with SQL
 * (table filter and owner ids extracted by SQLite) and splices the stored row JSON in
 * without parsing it, which is what makes catch-up fast; `liveChanges` turns the parsed
 * entries the change feed delivers into the same frames.
 */
import type { Principal } from "../../shared/principal.ts";
import { OWNER_COLUMN } from "../../shared/schema.ts";
import type { Access } from "../policy.ts";
import { type VisibleChange, visibleChange } from "../realtime/changes.ts";
import type { TableInfo } from "../schema-index.ts";
import type { FileVisibility } from "../storage/changes.ts";
import { STORAGE_WAL_TABLES } from "../storage/tables.ts";
import type { WalEntry, WalOp } from "../wal.ts";

export interface Followed {
  info: TableInfo;
  access: Access;
  /** the table name as a JSON string */
  nameJson: string;
  /**
   * storage.objects / storage.buckets (storage/changes.ts): rows in Supabase's columns,
   * keyed by `id`, visible row by row by bucket policy (`access` unused)
   */
  file: boolean;
}

export function followed(info: TableInfo, access: Access): Followed {
  return { info, access, nameJson: JSON.stringify(info.name), file: false };
}

export function followedFiles(info: TableInfo): Followed {
  return { info, access: { kind: "all" }, nameJson: JSON.stringify(info.name), file: true };
}

/** Who reads file entries: the socket's principal and the batch's bucket policies. */
export interface FileReader {
  principal: Principal;
  visibility: FileVisibility;
}

type Op = "insert" | "update" | "delete";

function change(lsn: number, ts: number, t: Followed, op: Op, pkJson: string, row: string | null): string {
  const tail = row === null ? "}" : `,"row":${row}}`;
  return `{"lsn":${lsn},"ts":${ts},"table":${t.nameJson},"op":"${op}","pk":${pkJson}${tail}`;
}

/** `[v1, v2]` (the WAL's key text) → `{"c1":v1,"c2":v2}`. */
function pkObject(t: Followed, pkText: string): string {
  const cols = t.info.primaryKey;
  if (cols.length === 1) return `{${JSON.stringify(cols[0])}:${pkText.slice(1, -1)}}`;
  const values = JSON.parse(pkText) as unknown[];
  const out: Record<string, unknown> = {};
  cols.forEach((c, i) => {
    out[c] = values[i];
  });
  return JSON.stringify(out);
}

/** Appends the change(s) one WAL entry makes for a subscriber with access `t.access`. */
function emit(
  out: string[],
  t: Followed,
  e: { lsn: number; ts: number; op: string; pk: string; row: string | null; oldPk: string | null },
  seesNew: boolean,
  seesOld: boolean,
): void {
  const pk = () => pkObject(t, e.pk);
  if (e.op === "INSERT") {
    if (seesNew) out.push(change(e.lsn, e.ts, t, "insert", pk(), e.row));
  } else if (e.op === "DELETE") {
    if (seesOld) out.push(change(e.lsn, e.ts, t, "delete", pk(), null));
  } else {
    const moved = e.oldPk !== null && e.oldPk !== e.pk;
    if (seesOld && (moved || !seesNew))
      out.push(change(e.lsn, e.ts, t, "delete", pkObject(t, e.oldPk ?? e.pk), null));
    if (seesNew) out.push(change(e.lsn, e.ts, t, seesOld && !moved ? "update" : "insert", pk(), e.row));
  }
}

/** The changes a file entry makes for a subscriber, from what it sees of it (keyed by `id`). */
function fileChanges(out: string[], t: Followed, lsn: number, ts: number, v: VisibleChange | null): void {
  if (!v) return;
  const pk = (r: Record<string, unknown>) => JSON.stringify({ id: r.id });
  if (v.type === "DELETE") {
    out.push(change(lsn, ts, t, "delete", pk(v.old!), null));
    return;
  }
  const row = v.record!;
  if (v.type === "UPDATE" && v.old && v.old.id !== row.id) {
    out.push(change(lsn, ts, t, "delete", pk(v.old), null));
    out.push(change(lsn, ts, t, "insert", pk(row), JSON.stringify(row)));
    return;
  }
  out.push(change(lsn, ts, t, v.type === "INSERT" ? "insert" : "update", pk(row), JSON.stringify(row)));
}

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** SQL giving an UPDATE's old primary key text in the WAL's form, per followed table. */
function oldPkSql(tables: Map<string, Followed>): string {
  const arms = [...tables.values()]
    .filter((t) => !t.file)
    .map(
      (t) =>
        `WHEN ${sqlString(t.info.name)} THEN json_array(${t.info.primaryKey.map((c) => `json_extract(old, ${sqlString(`$."${c}"`)})`).join(", ")})`,
    );
  return arms.length === 0 ? "NULL" : `CASE WHEN op = 'UPDATE' THEN CASE tbl ${arms.join(" ")} END END`;
}

export interface ChangeBatch {
  /** one JSON text per change */
  parts: string[];
  bytes: number;
  /** every entry up to this LSN was considered */
  through: number;
}

const READ_ROWS = 2000;

/**
 * The visible changes of the followed tables after `after`, up to `upto` (the WAL's end
 * when the read began), until `maxChanges` or `maxBytes` is reached.
 */
export function readChanges(
  sql: SqlStorage,
  tables: Map<string, Followed>,
  after: number,
  upto: number,
  maxChanges: number,
  maxBytes: number,
  files: FileReader | null,
): ChangeBatch {
  const names = JSON.stringify([...tables.keys()]);
  const own = [...tables.values()].some((t) => t.access.kind === "own");
  // File entries are turned into Supabase's rows in JS: they need the old row too.
  const fileOld = [...tables.values()].some((t) => t.file)
    ? `CASE WHEN tbl IN (${STORAGE_WAL_TABLES.map(sqlString).join(", ")}) THEN old END`
    : "NULL";
  const owners = own
    ? `json_extract(new, '$.${OWNER_COLUMN}') AS no, json_extract(old, '$.${OWNER_COLUMN}') AS oo`
    : "NULL AS no, NULL AS oo";
  const query = `SELECT lsn, ts, tbl, op, pk, new, ${owners}, ${oldPkSql(tables)} AS opk, ${fileOld} AS fo FROM _hearth_wal
     WHERE lsn > ? AND lsn <= ? AND tbl IN (SELECT value FROM json_each(?)) ORDER BY lsn LIMIT ?`;
  const parts: string[] = [];
  let bytes = 0;
  let through = after;
  for (;;) {
    let n = 0;
    for (const r of sql.exec(query, through, upto, names, READ_ROWS).raw()) {
      n++;
      const lsn = Number(r[0]);
      const t = tables.get(String(r[2]))!;
      const row = r[5] === null ? null : String(r[5]);
      if (t.file) {
        const before = parts.length;
        if (files) {
          const e: WalEntry = {
            lsn,
            tx: 0,
            ts: Number(r[1]),
            table: String(r[2]),
            op: String(r[3]) as WalOp,
            pk: [],
            new: row === null ? null : JSON.parse(row),
            old: r[9] === null ? null : JSON.parse(String(r[9])),
          };
          fileChanges(parts, t, lsn, e.ts, files.visibility.visible(files.principal, e));
        }
        for (let i = before; i < parts.length; i++) bytes += parts[i]!.length;
        through = lsn;
        if (parts.length >= maxChanges || bytes >= maxBytes) return { parts, bytes, through };
        continue;
      }
      const access = t.access;
      const seesNew = row !== null && (access.kind === "all" || r[6] === access.ownerId);
      const seesOld = r[3] !== "INSERT" && (access.kind === "all" || r[7] === access.ownerId);
      const before = parts.length;
      const entry = {
        lsn,
        ts: Number(r[1]),
        op: String(r[3]),
        pk: String(r[4]),
        row,
        oldPk: r[8] === null ? null : String(r[8]),
      };
      emit(parts, t, entry, seesNew, seesOld);
      for (let i = before; i < parts.length; i++) bytes += parts[i]!.length;
      through = lsn;
      if (parts.length >= maxChanges || bytes >= maxBytes) return { parts, bytes, through };
    }
    if (n < READ_ROWS) return { parts, bytes, through: upto };
  }
}

/** The same changes from the parsed entries the change feed delivers (live sockets). */
export function liveChanges(t: Followed, principal: Principal, e: WalEntry, files: FileVisibility): string[] {
  const out: string[] = [];
  if (t.file) {
    fileChanges(out, t, e.lsn, e.ts, files.visible(principal, e));
    return out;
  }
  const v = visibleChange(principal, t.info, e);
  if (!v) return out;
  const pk = JSON.stringify(e.pk);
  const oldPk =
    e.op === "UPDATE" && e.old ? JSON.stringify(t.info.primaryKey.map((c) => e.old![c] ?? null)) : null;
  const entry = {
    lsn: e.lsn,
    ts: e.ts,
    op: e.op,
    pk,
    row: v.record ? JSON.stringify(v.record) : null,
    oldPk,
  };
  // visibleChange already decided what the subscriber sees; replay that decision.
  const seesNew = v.type !== "DELETE";
  const seesOld = v.type !== "INSERT" || (e.op === "UPDATE" && v.old !== null);
  emit(out, t, entry, seesNew, seesOld);
  return out;
}
