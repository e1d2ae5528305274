/**
 * `GET {url}/export`: the whole project as one zip, streamed (DESIGN.md "Contracts"):
 * `schema.json` (the stored schema), then `tables/<table>.parquet` per table, or
 * `tables/<table>.arrow` with `?format=arrow`, then `blobs/<bucket>/<path>` per stored file and
 * `storage.json` (buckets and object rows; import-files.ts). `{url}/import` loads such a zip.
 *
 * Memory stays bounded by one batch: each pull of the response stream reads the next
 * BATCH_ROWS rows of a table (fewer when they pass BATCH_BYTES; keyset paging on the rowid),
 * encodes them as one Parquet row group (or Arrow record batch) and hands the bytes to
 * fflate's streaming Zip. A slow client therefore slows the reads instead of filling memory.
 *
 * Not a snapshot: writes that land while a long export is streaming may or may not be in
 * it (each batch is read at its own time; docs/gotchas.md).
 */
import { Zip, ZipDeflate, type ZipInputFile, ZipPassThrough } from "fflate";
import { ArrowTableWriter } from "../shared/columnar/arrow.ts";
import { ParquetTableWriter } from "../shared/columnar/parquet.ts";
import { type ColumnSpec, SEQUENCE_KEY } from "../shared/columnar/wire.ts";
import { HearthError, REQUEST_ID_HEADER } from "../shared/errors.ts";
import type { Principal } from "../shared/principal.ts";
import type { ColdStore } from "./cold/cold-store.ts";
import { bucketEntry, objectEntry, STORAGE_MEMBER } from "./import-files.ts";
import { quoteIdent } from "./migrate.ts";
import type { SchemaIndex, TableInfo } from "./schema-index.ts";
import type { BucketRow } from "./storage/buckets.ts";
import type { ObjectRow } from "./storage/types.ts";

export type ExportFormat = "parquet" | "arrow";

/** Rows per read and per row group (or record batch)... */
const BATCH_ROWS = 10_000;
/** ...unless their values pass this many bytes first (wide rows: long texts, blobs). */
const BATCH_BYTES = 16 * 1024 * 1024;

function sizeOf(v: unknown): number {
  if (typeof v === "string") return v.length;
  if (v instanceof ArrayBuffer) return v.byteLength;
  return 8;
}

export interface ExportContext {
  sql: SqlStorage;
  /** the cold tier: each table's live segment rows follow its hot rows */
  cold: ColdStore;
  schema: SchemaIndex | null;
  projectId: string;
  requestId: string;
  /** stored files: the buckets, the object rows a page at a time, and the R2 bucket holding their bytes */
  blobs?: { buckets: () => BucketRow[]; pages: () => Iterable<ObjectRow[]>; r2: R2Bucket };
}

/** The service key, or an account token of the project's owner. */
export function requireExportAccess(principal: Principal): void {
  if (principal.role === "service") return;
  if (principal.role === "authenticated" && principal.membership === "owner") return;
  throw new HearthError("HEARTH_FORBIDDEN", "Exporting needs the project's service key or its owner.", {
    hint: "Use the serviceKey returned when the project was created, or the owner's access token.",
  });
}

export function exportFormat(url: URL): ExportFormat {
  const format = url.searchParams.get("format") ?? "parquet";
  if (format === "parquet" || format === "arrow") return format;
  throw new HearthError("HEARTH_BAD_REQUEST", `Unknown export format "${format}"`, {
    hint: "Use ?format=parquet (the default) or ?format=arrow.",
  });
}

/** The table's columns in storage order (the server-managed owner_id included). */
export function columnSpecs(table: TableInfo): ColumnSpec[] {
  return [...table.columns.values()].map((c) => ({ name: c.name, type: c.type }));
}

/** Whether the table's key is AUTOINCREMENT (an `increment` default): its counter is in sqlite_sequence. */
export function hasSequence(table: TableInfo): boolean {
  const pk = table.primaryKey.length === 1 ? table.columns.get(table.primaryKey[0]!) : undefined;
  return pk?.def.default === "increment";
}

/** AUTOINCREMENT's high-water mark, or null for a table without one. */
function sequenceOf(sql: SqlStorage, table: TableInfo): number | null {
  if (!hasSequence(table)) return null;
  const row = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = ?", table.name).toArray()[0];
  return row ? Number(row.seq) : null;
}

/** Yields the zip's bytes as they are produced, one batch of rows per step. */
async function* zipChunks(ctx: ExportContext, format: ExportFormat): AsyncGenerator<Uint8Array[]> {
  // The segments of this manifest are exported; a flush while the export streams would move
  // hot rows not yet read into segments it does not list, so it stops the export instead.
  const manifest = await ctx.cold.current();
  let out: Uint8Array[] = [];
  let failure: Error | null = null;
  const zip = new Zip((err, chunk) => {
    if (err) failure = err;
    else out.push(chunk);
  });
  const drain = (): Uint8Array[] => {
    if (failure) throw failure;
    const ready = out;
    out = [];
    return ready;
  };
  const add = (file: ZipInputFile & { push(chunk: Uint8Array, final?: boolean): void }) => {
    zip.add(file);
    return file;
  };

  const schemaJson = JSON.stringify(ctx.schema?.schema ?? { tables: {} }, null, 2);
  add(new ZipDeflate("schema.json", { level: 6 })).push(new TextEncoder().encode(schemaJson), true);
  yield drain();

  for (const table of ctx.schema?.tables.values() ?? []) {
    if (ctx.cold.manifestVersion !== manifest.version) {
      throw new Error("a flush committed while the export was streaming; export again");
    }
    const columns = columnSpecs(table);
    const seq = sequenceOf(ctx.sql, table);
    const metadata: Record<string, string> = seq === null ? {} : { [SEQUENCE_KEY]: String(seq) };
    // Parquet pages are already compressed (SNAPPY): store them. Arrow IPC is not: deflate,
    // at the fastest level, which already shrinks typical tables several times.
    const entry = add(
      format === "parquet"
        ? new ZipPassThrough(`tables/${table.name}.parquet`)
        : new ZipDeflate(`tables/${table.name}.arrow`, { level: 1 }),
    );
    const sink = (bytes: Uint8Array) => entry.push(bytes, false);
    const writer =
      format === "parquet"
        ? new ParquetTableWriter(columns, sink, metadata)
        : new ArrowTableWriter(columns, sink, metadata);
    const select =
      `SELECT _rowid_, ${columns.map((c) => quoteIdent(c.name)).join(", ")} FROM ${quoteIdent(table.name)} ` +
      "WHERE _rowid_ > ? ORDER BY _rowid_ LIMIT ?";
    let after = -1e19; // below every rowid (a REAL compares with INTEGER rowids as expected)
    for (;;) {
      const data: unknown[][] = columns.map(() => []);
      let n = 0;
      let bytes = 0;
      for (const row of ctx.sql.exec(select, after, BATCH_ROWS).raw()) {
        after = Number(row[0]);
        for (let j = 0; j < columns.length; j++) {
          data[j]!.push(row[j + 1]);
          bytes += sizeOf(row[j + 1]);
        }
        n++;
        if (bytes > BATCH_BYTES) break; // the next batch starts after this row
      }
      if (n === 0) break;
      if (writer instanceof ParquetTableWriter) writer.writeRowGroup(data);
      else writer.writeBatch(data);
      yield drain();
      if (n < BATCH_ROWS && bytes <= BATCH_BYTES) break;
    }
    // Then the table's live rows in segments, a segment at a time (the cache bound holds).
    for (const ref of manifest.tables[table.name] ?? []) {
      const seg = await ctx.cold.segment(ref, table);
      const layout = seg.columnsFor(table);
      let data: unknown[][] = columns.map(() => []);
      let n = 0;
      const flushBatch = () => {
        if (n === 0) return;
        if (writer instanceof ParquetTableWriter) writer.writeRowGroup(data);
        else writer.writeBatch(data);
        data = columns.map(() => []);
        n = 0;
      };
      for (let i = 0; i < seg.data.rows; i++) {
        if (!ctx.cold.isLive(table.name, seg, i)) continue;
        for (let j = 0; j < columns.length; j++) {
          const source = layout[j]!;
          data[j]!.push(Array.isArray(source) ? source[i] : source.value);
        }
        n++;
        if (n >= BATCH_ROWS) {
          flushBatch();
          yield drain();
        }
      }
      flushBatch();
      yield drain();
    }
    writer.finish();
    entry.push(new Uint8Array(0), true);
    yield drain();
  }
  // Stored files, stored as they are (most are compressed already), streamed from R2; then
  // storage.json: the buckets and the rows of exactly the files written (import-files.ts).
  const written: string[] = [];
  for (const page of ctx.blobs?.pages() ?? []) {
    for (const file of page) {
      const obj = await ctx.blobs!.r2.get(file.key);
      if (!obj) continue; // removed while the export streamed
      written.push(JSON.stringify(objectEntry(file)));
      const entry = add(new ZipPassThrough(`blobs/${file.bucket}/${file.name}`));
      const reader = obj.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        entry.push(value, false);
        yield drain();
      }
      entry.push(new Uint8Array(0), true);
      yield drain();
    }
  }
  // Read after the files, so that a bucket created while they streamed is in. (A bucket
  // emptied and deleted meanwhile leaves files without their bucket: import refuses that
  // zip; export again. Exports are not snapshots.)
  const buckets = ctx.blobs?.buckets() ?? [];
  if (buckets.length > 0 || written.length > 0) {
    const meta = add(new ZipDeflate(STORAGE_MEMBER, { level: 6 }));
    const encoder = new TextEncoder();
    const head = `{"version":1,"buckets":${JSON.stringify(buckets.map(bucketEntry))},"objects":[`;
    meta.push(encoder.encode(head), false);
    for (let i = 0; i < written.length; i += 1000) {
      const rows = written.slice(i, i + 1000).join(",");
      meta.push(encoder.encode(i === 0 ? rows : `,${rows}`), false);
      yield drain();
    }
    meta.push(encoder.encode("]}"), true);
    yield drain();
  }
  zip.end();
  yield drain();
}

export function exportProject(ctx: ExportContext, format: ExportFormat): Response {
  const steps = zipChunks(ctx, format);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next = await steps.next();
          if (next.done) {
            controller.close();
            return;
          }
          if (next.value.length > 0) {
            for (const chunk of next.value) controller.enqueue(chunk);
            return;
          }
        }
      } catch (err) {
        // Headers are gone already: all the client can see is a cut-off body.
        console.error(`[${ctx.requestId}] export failed`, err);
        controller.error(err);
      }
    },
    async cancel() {
      await steps.return(undefined);
    },
  });
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "application/zip",
      "content-disposition": `attachment; filename="hearth-${ctx.projectId}.zip"`,
      "cache-control": "no-store",
      [REQUEST_ID_HEADER]: ctx.requestId,
    },
  });
}
