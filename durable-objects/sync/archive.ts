/**
 * The WAL tail across a freeze. A freeze empties the object's storage; before it does,
 * `saveArchive` writes what sync needs to go on as if nothing happened to one R2 object,
 * `projects/<id>/wal/tail.json.gz`: the LSN high-water mark and the last transaction id,
 * the newest WAL entries and the exactly-once ledger (records and writers). A wake reads it
 * back (`loadArchive`) and `restoreArchive` puts it in place, so a client whose cursor was
 * within what the archive kept catches up after it, a mutation pushed again is still
 * answered from its record (or "expired"), and LSNs never repeat.
 * Bounded (ARCHIVE_BUDGET): the archive is gzip'd JSON lines, written and read a line at a
 * time, never one string; it keeps the newest WAL entries that fit in `walBytes` (a suffix:
 * older cursors resync after the wake) and the newest ledger records that fit in
 * `ledgerBytes` (older ones fold into their writer's `pruned_through`: answered "expired");
 * writers (small, needed for exactly-once) are all kept, and a freeze with more than
 * `clientBytes` of them does not happen.
 * The object is overwritten by each freeze (one per project); a freeze whose put fails
 * does not happen. It is read back through zod, like every R2 object.
 */
import { z } from "zod";
import { withRetry } from "../cold/manifest.ts";
import { LEGACY_OWNER } from "./ledger.ts";
import {
  clientPage,
  type Fold,
  insertClientRows,
  insertLedgerRows,
  ledgerFoldPoint,
  ledgerPage,
} from "./ledger-archive.ts";

export function archiveKey(projectId: string): string {
  return `projects/${projectId}/wal/tail.json.gz`;
}

/** Uncompressed bytes of JSON lines an archive may hold, per part. */
export interface ArchiveBudget {
  walBytes: number;
  ledgerBytes: number;
  clientBytes: number;
}

export const ARCHIVE_BUDGET: ArchiveBudget = {
  walBytes: 8 * 1024 * 1024,
  ledgerBytes: 2 * 1024 * 1024,
  clientBytes: 2 * 1024 * 1024,
};

const Cell = z.union([z.string(), z.number(), z.null()]);

const HeaderSchema = z.object({
  format: z.literal(2),
  projectId: z.string(),
  /** the WAL's LSN high-water mark at the freeze */
  lastLsn: z.number().int().min(0),
  /** the highest transaction id (`_hearth_state.tx`) */
  tx: z.number().int().min(0),
});

/** Cells after the tag of each kind of line: a WAL entry, a ledger record, a writer. */
const LINE_CELLS: Record<string, number> = {
  /** lsn, tx, ts, tbl, op, pk, new, old */
  w: 8,
  /** ledger.ts LEDGER_COLUMNS */
  m: 8,
  /** ledger.ts CLIENT_COLUMNS */
  c: 5,
};

const LineSchema = z
  .array(Cell)
  .min(1)
  .refine((l) => LINE_CELLS[String(l[0])] === l.length - 1, "unknown tag or wrong number of cells");

/** The first format: one JSON object, the ledger keyed by client id alone. */
const V1Schema = z.object({
  format: z.literal(1),
  projectId: z.string(),
  lastLsn: z.number().int().min(0),
  tx: z.number().int().min(0),
  wal: z.array(z.array(Cell).length(8)),
  /** client_id, mutation_id, status, lsn, error, ts, at_lsn */
  mutations: z.array(z.array(Cell).length(7)),
});

type Row = z.infer<typeof Cell>[];

export interface WalArchive {
  projectId: string;
  lastLsn: number;
  tx: number;
  /** [lsn, tx, ts, tbl, op, pk, new, old], in LSN order */
  wal: Row[];
  /** ledger records (LEDGER_COLUMNS) */
  mutations: Row[];
  /** writers (CLIENT_COLUMNS) */
  clients: Row[];
}

const PAGE = 500;
const CHUNK = 64 * 1024;
const lineSize = (tag: string, row: unknown[]) => JSON.stringify([tag, ...row]).length + 1;

/** The first LSN kept: the newest entries whose lines fit in `bytes` (one pass, newest first). */
function walStart(sql: SqlStorage, bytes: number): number {
  let total = 0;
  let start = 0;
  for (const row of sql
    .exec("SELECT lsn, tx, ts, tbl, op, pk, new, old FROM _hearth_wal ORDER BY lsn DESC")
    .raw()) {
    total += lineSize("w", row);
    if (total > bytes) break;
    start = Number(row[0]);
  }
  return start === 0 ? Number.MAX_SAFE_INTEGER : start;
}

/** Gzip'd text written in chunks of about CHUNK characters; `done` gives the compressed bytes. */
class GzipLines {
  private readonly gz = new CompressionStream("gzip");
  private readonly writer = this.gz.writable.getWriter();
  private readonly out = new Response(this.gz.readable).arrayBuffer();
  private readonly encoder = new TextEncoder();
  private parts: string[] = [];
  private size = 0;

  constructor() {
    this.out.catch(() => {}); // awaited in done(); an abort must not be an unhandled rejection
  }

  async line(value: unknown): Promise<void> {
    const text = `${JSON.stringify(value)}\n`;
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= CHUNK) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const text = this.parts.join("");
    this.parts = [];
    this.size = 0;
    await this.writer.write(this.encoder.encode(text));
  }

  async done(): Promise<ArrayBuffer> {
    await this.flush();
    await this.writer.close();
    return this.out;
  }

  abort(err: unknown): void {
    this.writer.abort(err).catch(() => {});
  }
}

/**
 * Writes the tail (freeze, before `deleteAll`); throws (HEARTH_STORAGE_UNAVAILABLE when R2
 * fails, a plain error when the writers are over budget) and then nothing was written.
 */
export async function saveArchive(
  bucket: R2Bucket,
  sql: SqlStorage,
  projectId: string,
  budget: ArchiveBudget = ARCHIVE_BUDGET,
): Promise<void> {
  const seq = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = '_hearth_wal'").toArray()[0];
  const state = sql.exec("SELECT tx FROM _hearth_state WHERE id = 1").toArray()[0];
  const start = walStart(sql, budget.walBytes);
  const fold: Fold | null = ledgerFoldPoint(sql, budget.ledgerBytes, (row) => lineSize("m", row));
  const out = new GzipLines();
  try {
    await out.line({
      format: 2,
      projectId,
      lastLsn: seq ? Number(seq.seq) : 0,
      tx: state ? Number(state.tx) : 0,
    } satisfies z.infer<typeof HeaderSchema>);
    for (let after = start - 1; ; ) {
      const rows = [
        ...sql
          .exec(
            `SELECT lsn, tx, ts, tbl, op, pk, new, old FROM _hearth_wal WHERE lsn > ? ORDER BY lsn LIMIT ${PAGE}`,
            after,
          )
          .raw(),
      ];
      for (const row of rows) await out.line(["w", ...row]);
      if (rows.length < PAGE) break;
      after = Number(rows[rows.length - 1]![0]);
    }
    for (let after: unknown[] | null = null; ; ) {
      const rows = ledgerPage(sql, fold, after, PAGE);
      for (const row of rows) await out.line(["m", ...row]);
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.slice(0, 3);
    }
    let clientBytes = 0;
    for (let after: unknown[] | null = null; ; ) {
      const rows = clientPage(sql, fold, after, PAGE);
      for (const row of rows) {
        clientBytes += lineSize("c", row);
        if (clientBytes > budget.clientBytes) {
          throw new Error(
            `the sync ledger's writers are over the archive budget of ${budget.clientBytes} bytes`,
          );
        }
        await out.line(["c", ...row]);
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.slice(0, 2);
    }
  } catch (err) {
    out.abort(err);
    throw err;
  }
  const body = await out.done();
  const key = archiveKey(projectId);
  await withRetry(`writing ${key}`, () =>
    bucket.put(key, body, { httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" } }),
  );
}

/** The lines of a text stream, one at a time (a line is never split). */
async function* lines(stream: ReadableStream<string>): AsyncGenerator<string> {
  let pending: string[] = [];
  for await (const chunk of stream) {
    let from = 0;
    for (let at = chunk.indexOf("\n"); at >= 0; at = chunk.indexOf("\n", from)) {
      pending.push(chunk.slice(from, at));
      yield pending.join("");
      pending = [];
      from = at + 1;
    }
    if (from < chunk.length) pending.push(chunk.slice(from));
  }
  if (pending.length > 0) yield pending.join("");
}

/** A first-format archive: its ledger becomes legacy writers (every id up to the newest "expired"). */
function fromV1(v1: z.infer<typeof V1Schema>): WalArchive {
  const newest = new Map<string, { id: number; ts: number }>();
  for (const [clientId, id, , , , ts] of v1.mutations) {
    const key = String(clientId);
    const prev = newest.get(key);
    newest.set(key, { id: Math.max(Number(id), prev?.id ?? -1), ts: Math.max(Number(ts), prev?.ts ?? 0) });
  }
  return {
    projectId: v1.projectId,
    lastLsn: v1.lastLsn,
    tx: v1.tx,
    wal: v1.wal,
    mutations: [],
    clients: [...newest].map(([clientId, n]) => [LEGACY_OWNER, clientId, n.id, n.id, n.ts]),
  };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The tail saved by the last freeze, or null (never frozen, a fork, or unreadable). */
export async function loadArchive(bucket: R2Bucket, projectId: string): Promise<WalArchive | null> {
  const key = archiveKey(projectId);
  const obj = await withRetry(`reading ${key}`, () => bucket.get(key));
  if (!obj) return null;
  const malformed = (why: string) => {
    console.error(`ignoring a malformed WAL tail at ${key}: ${why}`);
    return null;
  };
  const text = obj.body.pipeThrough(new DecompressionStream("gzip")).pipeThrough(new TextDecoderStream());
  let archive: WalArchive | null = null;
  let n = 0;
  for await (const line of lines(text)) {
    n++;
    const value = parse(line);
    if (archive === null) {
      const v1 = V1Schema.safeParse(value);
      if (v1.success) {
        // The first format is one line (JSON.stringify writes no newline).
        archive = fromV1(v1.data);
        continue;
      }
      const header = HeaderSchema.safeParse(value);
      if (!header.success) return malformed("no header");
      const { projectId: id, lastLsn, tx } = header.data;
      archive = { projectId: id, lastLsn, tx, wal: [], mutations: [], clients: [] };
      continue;
    }
    const row = LineSchema.safeParse(value);
    if (!row.success) return malformed(`line ${n}`);
    const [tag, ...cells] = row.data;
    (tag === "w" ? archive.wal : tag === "m" ? archive.mutations : archive.clients).push(cells);
  }
  if (archive === null) return malformed("empty");
  if (archive.projectId !== projectId) return malformed(`it belongs to ${archive.projectId}`);
  return archive;
}

/** JSON arrays of rows, each under ~1 MiB (a DO SQL bound value must stay under ~2 MB). */
function* chunks(rows: unknown[][]): Generator<string> {
  let parts: string[] = [];
  let size = 0;
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (parts.length > 0 && size + json.length > 1024 * 1024) {
      yield `[${parts.join(",")}]`;
      parts = [];
      size = 0;
    }
    parts.push(json);
    size += json.length + 1;
  }
  if (parts.length > 0) yield `[${parts.join(",")}]`;
}

/**
 * Puts an archive back into a freshly adopted object (inside the caller's transaction,
 * after `_hearth_wal` and `_hearth_state` exist). Explicit LSNs keep their values.
 */
export function restoreArchive(sql: SqlStorage, archive: WalArchive): void {
  for (const json of chunks(archive.wal)) {
    sql.exec(
      `INSERT OR IGNORE INTO _hearth_wal (lsn, tx, ts, tbl, op, pk, new, old)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
       FROM json_each(?)`,
      json,
    );
  }
  for (const json of chunks(archive.mutations)) insertLedgerRows(sql, json);
  for (const json of chunks(archive.clients)) insertClientRows(sql, json);
  // New transactions must not reuse an archived entry's id (sync tells its own writes by it).
  sql.exec("UPDATE _hearth_state SET tx = max(tx, ?) WHERE id = 1", archive.tx);
}
