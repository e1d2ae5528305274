/**
 * The zip side of `POST {url}/import`: the body read within the size limit, its members
 * listed from the central directory and checked by name, one member inflated at a time
 * (stored files: a batch of members at a time, import-files.ts).
 * Every problem is a HEARTH_IMPORT_INVALID that names the member.
 */
import { type UnzipFileInfo, unzipSync } from "fflate";
import { HearthError } from "../shared/errors.ts";

export interface TableMember {
  name: string;
  format: "parquet" | "arrow";
}

const TABLE_MEMBER = /^tables\/(.+)\.(parquet|arrow)$/;

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

/** The zip's members by name, without inflating any (fflate reads the central directory). */
export function listMembers(zip: Uint8Array): ZipMembers {
  const seen = new Set<string>();
  const tables = new Map<string, TableMember>();
  const blobs = new Map<string, BlobMember>();
  const files: UnzipFileInfo[] = [];
  try {
    unzipSync(zip, {
      filter: (f) => {
        files.push(f);
        return false;
      },
    });
  } catch (err) {
    throw invalid("The body is not a zip archive", problemOf(err).message);
  }
  for (const f of files) {
    if (f.name.endsWith("/") || f.name.startsWith("__MACOSX/")) continue; // folders, macOS resource forks
    if (seen.has(f.name)) throw invalid(`${f.name}: the zip holds this member twice`);
    seen.add(f.name);
    if (f.name === "schema.json" || f.name === "storage.json") continue;
    const m = TABLE_MEMBER.exec(f.name);
    if (m) {
      const table = m[1]!;
      if (tables.has(table)) throw invalid(`${f.name}: table "${table}" has two files in the zip`);
      tables.set(table, { name: f.name, format: m[2] as TableMember["format"] });
      continue;
    }
    if (f.name.startsWith("blobs/")) {
      blobs.set(f.name, { member: f.name, size: f.originalSize });
      continue;
    }
    throw invalid(
      `${f.name}: unexpected member`,
      "A zip holds schema.json, tables/, blobs/ and storage.json only.",
    );
  }
  if (!seen.has("schema.json")) throw invalid("schema.json is missing from the zip");
  return { tables, blobs, storage: seen.has("storage.json") };
}

export function extract(zip: Uint8Array, name: string): Uint8Array {
  try {
    const file = unzipSync(zip, { filter: (f) => f.name === name })[name];
    if (!file) throw new Error("member not found");
    return file;
  } catch (err) {
    throw invalid(`${name}: cannot be extracted from the zip`, problemOf(err).message);
  }
}
