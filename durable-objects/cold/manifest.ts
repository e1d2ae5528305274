/**
 * The shape of a project's cold tier: immutable segments in R2 and the manifests that list
 * them. A manifest version is a snapshot of the whole project as of its last LSN (time
 * travel reads one); the current version is kept in D1 (`projects.manifest_version`) and in
 * the DO's `_hearth_meta`.
 *
 * R2 layout (DESIGN.md):
 *   projects/<id>/tables/<table>/<firstLsn>-<lastLsn>[-<part>].arrow   a segment (Arrow IPC file, LZ4)
 *   projects/<id>/tables/<table>/<...>.bloom                           its primary-key bloom filter
 *   projects/<id>/manifests/<version>.json                             a manifest
 * A forked project's manifests refer to its parent's segment keys: segments are shared by
 * reference and never rewritten.
 */
import type { ColumnStats } from "../../shared/columnar/segment.ts";
import { HearthError } from "../../shared/errors.ts";
import type { ProjectSchema } from "../../shared/schema.ts";

export interface SegmentRef {
  /** R2 key of the Arrow file */
  key: string;
  /** R2 key of the primary-key bloom filter */
  bloomKey: string;
  rows: number;
  bytes: number;
  firstLsn: number;
  lastLsn: number;
  stats: Record<string, ColumnStats>;
  /**
   * Primary keys (see `keyOf`) of this segment's rows that a later change superseded
   * (updated rows now live elsewhere, deleted rows nowhere): the tombstones.
   */
  deleted: string[];
  /** vector column → R2 key of its approximate index (docs/vectors.md); absent when none */
  vectorIndexes?: Record<string, string>;
}

export interface Manifest {
  version: number;
  projectId: string;
  createdAt: string;
  /** every change up to this LSN is in the manifest's segments (nothing after it) */
  lastLsn: number;
  /** the flush that wrote it: a retried flush recognises its own manifest */
  flushId: string;
  schema: ProjectSchema | null;
  schemaVersion: number;
  /** AUTOINCREMENT high-water marks per table, so ids are not reused after a wake */
  sequences: Record<string, number>;
  tables: Record<string, SegmentRef[]>;
}

export function emptyManifest(projectId: string): Manifest {
  return {
    version: 0,
    projectId,
    createdAt: new Date(0).toISOString(),
    lastLsn: 0,
    flushId: "",
    schema: null,
    schemaVersion: 0,
    sequences: {},
    tables: {},
  };
}

export function manifestKey(projectId: string, version: number): string {
  return `projects/${projectId}/manifests/${version}.json`;
}

export function segmentKey(projectId: string, table: string, name: string): string {
  return `projects/${projectId}/tables/${encodeURIComponent(table)}/${name}`;
}

/**
 * A primary key as a Map key: the value itself for a one-column key (numbers and strings
 * never collide because a key column has one type), JSON text for a composite key.
 */
export type KeyOf = string | number;

export function keyOf(values: readonly unknown[]): KeyOf {
  if (values.length === 1) {
    const v = values[0];
    if (typeof v === "number" || typeof v === "string") return v;
  }
  return JSON.stringify(values);
}

/** A key as persisted (manifest `deleted`, `_hearth_shadow.pk`): always JSON of the key array. */
export function keyText(values: readonly unknown[]): string {
  return JSON.stringify(values);
}

export function keyFromText(text: string): KeyOf {
  return keyOf(JSON.parse(text) as unknown[]);
}

const ATTEMPTS = 3;

/** `op` tried a few times (20, 40 and 80 ms apart); the last failure is thrown as it is. */
export async function retried<T>(op: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < ATTEMPTS; i++) {
    try {
      return await op();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 20 * 2 ** i));
    }
  }
  throw last;
}

/** R2 operations retried a few times; the last failure surfaces as a clear 503. */
export async function withRetry<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await retried(op);
  } catch (last) {
    throw new HearthError("HEARTH_STORAGE_UNAVAILABLE", `Object storage failed: ${what}`, {
      details: last instanceof Error ? last.message : String(last),
      hint: "Nothing was lost; retry the request.",
    });
  }
}

export async function readManifest(bucket: R2Bucket, projectId: string, version: number): Promise<Manifest> {
  const obj = await withRetry(`reading manifest ${version}`, () =>
    bucket.get(manifestKey(projectId, version)),
  );
  if (!obj) {
    throw new HearthError("HEARTH_SNAPSHOT_NOT_FOUND", `Manifest version ${version} is not available`, {
      hint: "It may be older than the retention window.",
    });
  }
  return (await obj.json()) as Manifest;
}
