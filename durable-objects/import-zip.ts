/**
 * The zip side of `POST {url}/import`: the zip staged in R2 by the gateway
 * (workers/project/import.ts), read with ranged gets: its central directory (zip-directory.ts),
 * its members listed and checked by name, then one member at a time, either whole in memory
 * (schema.json, storage.json, table files) or as a stream (stored files, import-files.ts).
 * Every problem is a HEARTH_IMPORT_INVALID that names the member.
 */
import { HearthError } from "../shared/errors.ts";
import {
  dataRange,
  emptyStream,
  type RangeReader,
  readDirectory,
  type ZipEntry,
  ZipFormatError,
} from "./zip-directory.ts";

export interface TableMember {
  name: string;
  format: "parquet" | "arrow";
}

const TABLE_MEMBER = /^tables\/(.+)\.(parquet|arrow)$/;
/** The central directory is read at once: ~100 bytes per member, so this is millions of members. */
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;

export function invalid(message: string, details?: string | null, hint?: string): HearthError {
  return new HearthError("HEARTH_IMPORT_INVALID", message, {
    details: details ?? null,
    hint: hint ?? "Send a zip made by GET {url}/export: schema.json and tables/<table>.parquet (or .arrow).",
  });
}

export function problemOf(err: unknown): { message: string; details: string | null } {
  if (err instanceof HearthError) return { message: err.message, details: err.details };
  return { message: err instanceof Error ? err.message : String(err), details: null };
}

/** A stored file's member, `blobs/<bucket>/<path>`, with its inflated size. */
export interface BlobMember {
  member: string;
  size: number;
}

export interface ZipMembers {
  tables: Map<string, TableMember>;
  /** by member name */
  blobs: Map<string, BlobMember>;
  /** whether `storage.json` (buckets and object rows) is in the zip */
  storage: boolean;
}

/** A zip read through ranges: its members by name, from the central directory. */
export interface ZipArchive {
  src: RangeReader;
  entries: Map<string, ZipEntry>;
}

/** A RangeReader over an R2 object (the staged zip); null when there is no such object. */
export async function r2Reader(r2: R2Bucket, key: string): Promise<RangeReader | null> {
  const head = await r2.head(key);
  if (!head) return null;
  return {
    size: head.size,
    read: async (offset, length) => {
      const obj = await r2.get(key, { range: { offset, length } });
      if (!obj) throw new Error("the staged zip is gone");
      return new Uint8Array(await obj.arrayBuffer());
    },
    stream: async (offset, length) => {
      if (length === 0) return emptyStream();
      const obj = await r2.get(key, { range: { offset, length } });
      if (!obj) throw new Error("the staged zip is gone");
      return obj.body;
    },
  };
}

/** Reads the central directory; HEARTH_IMPORT_INVALID when the bytes are not a (whole) zip. */
export async function openZip(src: RangeReader): Promise<ZipArchive> {
  let list: ZipEntry[];
  try {
    list = await readDirectory(src, MAX_DIRECTORY_BYTES);
  } catch (err) {
    if (err instanceof ZipFormatError) throw invalid("The body is not a zip archive", err.message);
    throw err;
  }
  const entries = new Map<string, ZipEntry>();
  for (const e of list) {
    if (entries.has(e.name)) throw invalid(`${e.name}: the zip holds this member twice`);
    entries.set(e.name, e);
  }
  return { src, entries };
}

/** The zip's members by name, checked, without reading any. */
export function listMembers(zip: ZipArchive): ZipMembers {
  const tables = new Map<string, TableMember>();
  const blobs = new Map<string, BlobMember>();
  for (const f of zip.entries.values()) {
    if (f.name.endsWith("/") || f.name.startsWith("__MACOSX/")) continue; // folders, macOS resource forks
    if (f.name === "schema.json" || f.name === "storage.json") continue;
    const m = TABLE_MEMBER.exec(f.name);
    if (m) {
      const table = m[1]!;
      if (tables.has(table)) throw invalid(`${f.name}: table "${table}" has two files in the zip`);
      tables.set(table, { name: f.name, format: m[2] as TableMember["format"] });
      continue;
    }
    if (f.name.startsWith("blobs/")) {
      blobs.set(f.name, { member: f.name, size: f.size });
      continue;
    }
    throw invalid(
      `${f.name}: unexpected member`,
      "A zip holds schema.json, tables/, blobs/ and storage.json only.",
    );
  }
  if (!zip.entries.has("schema.json")) throw invalid("schema.json is missing from the zip");
  return { tables, blobs, storage: zip.entries.has("storage.json") };
}

/** A member's bytes as memberStream gives them. */
export interface MemberStream {
  stream: ReadableStream<Uint8Array>;
  /** A stream's error may reach its reader wrapped: the member's HEARTH_IMPORT_INVALID, if that is why. */
  problem: () => HearthError | null;
  /**
   * A stored member: the ranged get's own body, of known length (R2 takes it in a put as it
   * is, with no JavaScript per chunk); else an inflating stream of unknown length.
   */
  exact: boolean;
}

/** The member's inflated bytes as a stream, checked against its size. */
export async function memberStream(zip: ZipArchive, name: string): Promise<MemberStream> {
  const e = zip.entries.get(name);
  if (!e) throw invalid(`${name}: cannot be extracted from the zip`, "member not found");
  if (e.flags & 1) throw invalid(`${name}: the member is encrypted`);
  if (e.method !== 0 && e.method !== 8) {
    throw invalid(
      `${name}: compression method ${e.method} is not supported`,
      null,
      "Use deflate or no compression.",
    );
  }
  let range: { offset: number; length: number };
  try {
    range = await dataRange(zip.src, e);
  } catch (err) {
    if (err instanceof ZipFormatError)
      throw invalid(`${name}: cannot be extracted from the zip`, err.message);
    throw err;
  }
  if (e.method === 0 && e.compressedSize !== e.size) {
    throw invalid(`${name}: stored with ${e.compressedSize} bytes, but its size says ${e.size}`);
  }
  const raw = await zip.src.stream(range.offset, range.length);
  if (e.method === 0) return { stream: raw, problem: () => null, exact: true };
  let problem: HearthError | null = null;
  const fail = (p: HearthError): never => {
    problem = p;
    throw p;
  };
  const inflated = raw.pipeThrough(new DecompressionStream("deflate-raw"));
  const reader = inflated.getReader();
  let n = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(out) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        if (cancelled) throw err;
        // a damaged deflate stream errors in the decompressor
        return fail(invalid(`${name}: cannot be extracted from the zip`, problemOf(err).message));
      }
      if (r.done) {
        if (n !== e.size) fail(invalid(`${name}: ${n} bytes inflated, ${e.size} expected`));
        out.close();
        return;
      }
      n += r.value.byteLength;
      if (n > e.size) fail(invalid(`${name}: more than the ${e.size} bytes the zip's directory says`));
      out.enqueue(r.value);
    },
    cancel: (reason) => {
      cancelled = true;
      return reader.cancel(reason);
    },
  });
  return { stream, problem: () => problem, exact: false };
}

/** A whole member in memory (it must fit: schema.json, storage.json, one table file). */
export async function extract(zip: ZipArchive, name: string): Promise<Uint8Array> {
  const { stream, problem } = await memberStream(zip, name);
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    const p = problem();
    if (p) throw p;
    throw invalid(`${name}: cannot be extracted from the zip`, problemOf(err).message);
  }
}
