/**
 * The cold tier as the DO sees it: the current manifest, the decoded-segment cache, and the
 * shadow set (keys of segment rows superseded since the last flush).
 *
 * Invariant: every live row is in exactly one place, either the hot tier (SQLite) or one
 * segment of the current manifest (not in its `deleted` list, not shadowed). A write that
 * touches a row living in a segment first *promotes* it: the row is copied into the hot
 * tier with the WAL muted (nothing changed logically) and its key is shadowed; the write
 * then runs on SQLite as usual, with its WAL entries, triggers, constraints and cascades.
 * A flush turns shadows into the segments' `deleted` lists. So a read is simply hot rows ∪
 * live segment rows, with no per-key version merge.
 *
 * Segment data is loaded asynchronously (`prepare`) before the synchronous SQL part of a
 * request runs against a `ColdView`, which pins the segments it needs.
 */
import { compareValues } from "../../shared/collate.ts";
import { bloomMayContain, SegmentData } from "../../shared/columnar/segment.ts";
import { bytesToHex, type StorageValue, toStorage } from "../../shared/values.ts";
import { quoteIdent } from "../migrate.ts";
import type { SchemaIndex, TableInfo } from "../schema-index.ts";
import {
  emptyManifest,
  type KeyOf,
  keyFromText,
  keyOf,
  keyText,
  type Manifest,
  readManifest,
  type SegmentRef,
  withRetry,
} from "./manifest.ts";
import { valueSql } from "./overlay.ts";

export const COLD_DDL = [
  "CREATE TABLE IF NOT EXISTS _hearth_shadow (tbl TEXT NOT NULL, pk TEXT NOT NULL, seg TEXT NOT NULL, PRIMARY KEY (tbl, pk)) WITHOUT ROWID",
];

/** A segment row superseded since the last flush: the segment, and the key as persisted. */
export interface Shadow {
  seg: string;
  text: string;
}

const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** One segment ready for synchronous reads: its data, tombstones and key index. */
export class LoadedSegment {
  private index: Map<KeyOf, number> | null = null;
  readonly deleted: Set<KeyOf>;

  constructor(
    readonly ref: SegmentRef,
    readonly data: SegmentData,
    readonly pk: string[],
  ) {
    this.deleted = new Set(ref.deleted.map(keyFromText));
  }

  private layout: { table: TableInfo; columns: (unknown[] | { value: unknown })[] } | null = null;

  /** Per column of the table: the segment's values, or the constant for a column it lacks. */
  columnsFor(table: TableInfo): (unknown[] | { value: unknown })[] {
    if (this.layout?.table !== table) {
      const present = new Set(this.data.columns.map((c) => c.name));
      this.layout = {
        table,
        columns: [...table.columns.values()].map((c) =>
          present.has(c.name) ? this.data.column(c.name) : { value: missingValue(table, c.name) },
        ),
      };
    }
    return this.layout.columns;
  }

  keyAt(i: number): KeyOf {
    if (this.pk.length === 1) {
      const v = this.data.column(this.pk[0]!)[i];
      if (typeof v === "number" || typeof v === "string") return v;
      return keyOf([v]);
    }
    return keyOf(this.pk.map((c) => this.data.column(c)[i]));
  }

  /** Whether row i is live: not tombstoned here, not shadowed (superseded since the last flush). */
  isLive(i: number, shadows: Map<KeyOf, Shadow> | undefined): boolean {
    if (this.deleted.size === 0 && (shadows?.size ?? 0) === 0) return true;
    const k = this.keyAt(i);
    return !this.deleted.has(k) && !(shadows?.has(k) ?? false);
  }

  private sorted: boolean | null = null;

  /**
   * Whether the rows are in ascending primary-key order (a flush writes rowid order, which is
   * key order for an integer key): then the first rows of the segment that pass a filter are
   * its first in key order, and a key-ordered read with a limit can stop early. Checked once.
   */
  sortedByKey(): boolean {
    if (this.sorted === null) {
      const cols = this.pk.map((c) => this.data.column(c));
      let sorted = true;
      for (let i = 1; i < this.data.rows && sorted; i++) {
        let c = 0;
        for (const col of cols) {
          c = compareValues(col[i - 1], col[i]);
          if (c !== 0) break;
        }
        sorted = c < 0;
      }
      this.sorted = sorted;
    }
    return this.sorted;
  }

  /** Row index of a key, or -1 (tombstoned rows are still found: callers check `deleted`). */
  find(key: KeyOf): number {
    if (!this.index) {
      const index = new Map<KeyOf, number>();
      for (let i = 0; i < this.data.rows; i++) index.set(this.keyAt(i), i);
      this.index = index;
    }
    return this.index.get(key) ?? -1;
  }
}

/** Bytes of a json-safe storage value for SQL: bytes travel as hex and are unhex()-ed. */
export function sqlSafe(v: unknown): unknown {
  if (v instanceof Uint8Array) return bytesToHex(v);
  return v;
}

/** A column's value for rows of a segment written before the column existed. */
export function missingValue(table: TableInfo, column: string): StorageValue {
  const col = table.columns.get(column)!;
  const d = col.def.default;
  // As migrate-ddl.ts addColumnSql gives hot rows: a literal default, except on references.
  if (d === undefined || d === "increment" || d === "random" || d === "now" || col.def.references)
    return null;
  return toStorage(col.type, d, col.name);
}

/** The segments of a manifest that a request needs, loaded and pinned. */
export class ColdView {
  constructor(
    readonly manifest: Manifest,
    readonly schema: SchemaIndex,
    /** table → its loaded segments (only the ones the request may need) */
    readonly segments: Map<string, LoadedSegment[]>,
    /** table → shadowed keys; empty for a snapshot read */
    readonly shadows: Map<string, Map<KeyOf, Shadow>>,
    /** false for time travel: the hot tier is not part of the snapshot */
    readonly includeHot: boolean,
  ) {}

  hasCold(table: string): boolean {
    return (this.segments.get(table) ?? []).length > 0;
  }

  isLive(table: string, seg: LoadedSegment, i: number): boolean {
    return seg.isLive(i, this.shadows.get(table));
  }

  /** Storage values of row i of a segment, in the table's column order. */
  rowValues(table: TableInfo, seg: LoadedSegment, i: number): unknown[] {
    return seg.columnsFor(table).map((c) => (Array.isArray(c) ? c[i] : c.value));
  }

  /** Where a live key of `table` is in the cold tier, if it is. */
  locate(table: TableInfo, key: KeyOf): { seg: LoadedSegment; index: number } | null {
    if (this.shadows.get(table.name)?.has(key)) return null;
    for (const seg of this.segments.get(table.name) ?? []) {
      const i = seg.find(key);
      if (i >= 0 && !seg.deleted.has(key)) return { seg, index: i };
    }
    return null;
  }

  /**
   * Live cold rows of a table (storage values, column order), optionally only those
   * `keep` accepts. Rows are visited segment by segment.
   */
  rows(table: TableInfo, keep?: (seg: LoadedSegment, i: number) => boolean): unknown[][] {
    const out: unknown[][] = [];
    for (const seg of this.segments.get(table.name) ?? []) {
      for (let i = 0; i < seg.data.rows; i++) {
        if (!this.isLive(table.name, seg, i)) continue;
        if (keep && !keep(seg, i)) continue;
        out.push(this.rowValues(table, seg, i).map(sqlSafe));
      }
    }
    return out;
  }
}

export interface PrepareOptions {
  /** tables to load */
  tables: Iterable<string>;
  /** per table: whether a segment may hold matching rows (statistics pruning) */
  prune?: (table: string, ref: SegmentRef) => boolean;
  /** per table: primary keys (value arrays) of a point lookup: segments are chosen by bloom filter */
  keys?: Map<string, unknown[][]>;
  /** read this manifest version instead of the current one (time travel) */
  manifest?: Manifest;
  /** per table: columns left out of its loaded segments (they read as nulls; vector search) */
  without?: Map<string, ReadonlySet<string>>;
}

interface CacheEntry {
  seg: LoadedSegment;
  bytes: number;
}

export class ColdStore {
  manifest: Manifest;
  /** whether `manifest` is loaded (after a restart only its version is known) */
  private loaded = false;
  private version: number;
  private readonly shadows = new Map<string, Map<KeyOf, Shadow>>();
  private readonly cache = new Map<string, CacheEntry>();
  private cacheBytes = 0;
  private readonly blooms = new Map<string, Uint8Array>();
  private readonly snapshots = new Map<number, Manifest>();
  readonly maxCacheBytes: number;

  constructor(
    private readonly sql: SqlStorage,
    readonly projectId: () => string,
    readonly bucket: () => R2Bucket,
    maxCacheBytes?: number,
  ) {
    this.maxCacheBytes = maxCacheBytes ?? DEFAULT_CACHE_BYTES;
    this.manifest = emptyManifest("");
    this.version = 0;
    // An empty (new or frozen) object has no tables yet: ProjectState.init creates them.
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE name = '_hearth_shadow'").toArray().length === 0) {
      this.loaded = true;
      return;
    }
    const row = sql.exec("SELECT value FROM _hearth_meta WHERE key = 'manifest_version'").toArray()[0];
    this.version = row ? Number(row.value) : 0;
    if (this.version === 0) this.loaded = true;
    for (const r of sql.exec("SELECT tbl, pk, seg FROM _hearth_shadow")) {
      this.shadowMap(String(r.tbl)).set(keyFromText(String(r.pk)), {
        seg: String(r.seg),
        text: String(r.pk),
      });
    }
  }

  get manifestVersion(): number {
    return this.version;
  }

  get shadowCount(): number {
    let n = 0;
    for (const m of this.shadows.values()) n += m.size;
    return n;
  }

  private shadowMap(table: string): Map<KeyOf, Shadow> {
    let m = this.shadows.get(table);
    if (!m) {
      m = new Map();
      this.shadows.set(table, m);
    }
    return m;
  }

  /** Shadowed keys of a table with the segment each one hides (for the next flush). */
  shadowsOf(table: string): Map<KeyOf, Shadow> {
    return this.shadows.get(table) ?? new Map();
  }

  async current(): Promise<Manifest> {
    if (!this.loaded) {
      this.manifest = await readManifest(this.bucket(), this.projectId(), this.version);
      this.loaded = true;
    }
    return this.manifest;
  }

  /** Whether any table has segments (a request on a never-flushed project skips all of this). */
  get isEmpty(): boolean {
    return this.version === 0;
  }

  /** A kept manifest version (time travel); cached, they are immutable. */
  async snapshot(version: number): Promise<Manifest> {
    if (version === this.version) return this.current();
    let m = this.snapshots.get(version);
    if (!m) {
      m = await readManifest(this.bucket(), this.projectId(), version);
      if (this.snapshots.size > 16) this.snapshots.clear();
      this.snapshots.set(version, m);
    }
    return m;
  }

  /** Installs a newly committed manifest (after a flush or a wake). */
  install(manifest: Manifest): void {
    this.manifest = manifest;
    this.version = manifest.version;
    this.loaded = true;
    this.shadows.clear();
    // Tombstone sets of cached segments change with the manifest: rebuild entries lazily.
    const live = new Set<string>();
    for (const refs of Object.values(manifest.tables)) for (const r of refs) live.add(r.key);
    for (const [key, e] of [...this.cache]) {
      if (!live.has(e.seg.ref.key)) this.evict(key);
    }
  }

  /** Forgets everything in memory (freeze). */
  dropCaches(): void {
    for (const key of [...this.cache.keys()]) this.evict(key);
    this.blooms.clear();
    this.snapshots.clear();
  }

  private evict(key: string): void {
    const e = this.cache.get(key);
    if (!e) return;
    this.cache.delete(key);
    this.cacheBytes -= e.bytes;
  }

  get cachedBytes(): number {
    return this.cacheBytes;
  }

  private async bloom(ref: SegmentRef): Promise<Uint8Array> {
    let b = this.blooms.get(ref.bloomKey);
    if (!b) {
      const obj = await withRetry(`reading ${ref.bloomKey}`, () => this.bucket().get(ref.bloomKey));
      if (!obj) throw new Error(`bloom filter ${ref.bloomKey} is missing`);
      b = new Uint8Array(await obj.arrayBuffer());
      this.blooms.set(ref.bloomKey, b);
    }
    return b;
  }

  /** A segment through the cache; `without` columns dropped (cached apart from the whole segment). */
  private async load(ref: SegmentRef, pk: string[], without?: ReadonlySet<string>): Promise<LoadedSegment> {
    const cacheKey = without && without.size > 0 ? `${ref.key}#without:${[...without].join(",")}` : ref.key;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.seg.ref === ref) {
      // LRU: re-insert at the end
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, hit);
      return hit.seg;
    }
    let data: SegmentData;
    if (hit) data = hit.seg.data;
    else {
      const obj = await withRetry(`reading segment ${ref.key}`, () => this.bucket().get(ref.key));
      if (!obj) throw new Error(`segment ${ref.key} is missing from the bucket`);
      data = SegmentData.decode(new Uint8Array(await obj.arrayBuffer()), without);
    }
    const seg = new LoadedSegment(ref, data, pk);
    this.evict(cacheKey);
    const bytes = data.approxBytes();
    this.cache.set(cacheKey, { seg, bytes });
    this.cacheBytes += bytes;
    for (const key of this.cache.keys()) {
      if (this.cacheBytes <= this.maxCacheBytes || key === cacheKey) break;
      this.evict(key);
    }
    return seg;
  }

  /** One segment of a table, through the cache (export reads a table a segment at a time). */
  segment(ref: SegmentRef, table: TableInfo): Promise<LoadedSegment> {
    return this.load(ref, table.primaryKey);
  }

  /** Whether row i of a segment is live in the current state (not tombstoned, not shadowed). */
  isLive(table: string, seg: LoadedSegment, i: number): boolean {
    return seg.isLive(i, this.shadows.get(table));
  }

  /** Live rows in the current manifest (shadowed keys are counted as gone). */
  async coldRowCount(): Promise<number> {
    const m = await this.current();
    const refs = Object.values(m.tables).flat();
    return refs.reduce((s, r) => s + r.rows - r.deleted.length, 0) - this.shadowCount;
  }

  /** Loads what a request needs; the returned view is used synchronously afterwards. */
  async prepare(schema: SchemaIndex, opts: PrepareOptions): Promise<ColdView> {
    // A flush (or compaction) may commit while segments load: then load again, so that the
    // caller's synchronous part never mixes an old manifest with the new hot tier.
    for (let attempt = 0; ; attempt++) {
      const view = await this.prepareOnce(schema, opts);
      if (opts.manifest !== undefined || view.manifest.version === this.version || attempt >= 5) return view;
    }
  }

  private async prepareOnce(schema: SchemaIndex, opts: PrepareOptions): Promise<ColdView> {
    const snapshot = opts.manifest !== undefined;
    const manifest = opts.manifest ?? (await this.current());
    const segments = new Map<string, LoadedSegment[]>();
    for (const name of new Set(opts.tables)) {
      const table = schema.tables.get(name);
      const refs = manifest.tables[name] ?? [];
      if (!table || refs.length === 0) continue;
      const wanted = opts.keys?.get(name);
      const list: LoadedSegment[] = [];
      for (const ref of refs) {
        if (opts.prune && !opts.prune(name, ref)) continue;
        if (wanted) {
          const bloom = await this.bloom(ref);
          if (!wanted.some((k) => bloomMayContain(bloom, keyText(k)))) continue;
        }
        list.push(await this.load(ref, table.primaryKey, opts.without?.get(name)));
      }
      segments.set(name, list);
    }
    return new ColdView(manifest, schema, segments, snapshot ? new Map() : this.shadows, !snapshot);
  }

  /**
   * Copies live cold rows into the hot tier without WAL entries and shadows their keys.
   * Runs inside the caller's transaction. Foreign-key parents of promoted rows that are
   * themselves cold are promoted too, so SQLite's checks see them.
   */
  promote(view: ColdView, table: TableInfo, keys: Iterable<KeyOf>): KeyOf[] {
    const found: { seg: LoadedSegment; index: number; key: KeyOf }[] = [];
    for (const key of keys) {
      const at = view.locate(table, key);
      if (at) found.push({ ...at, key });
    }
    if (found.length === 0) return [];
    const columns = [...table.columns.values()];
    const rows = found.map((f) => view.rowValues(table, f.seg, f.index).map(sqlSafe));
    // Shadow first: a reference cycle back to these rows must not promote them twice.
    const shadows = this.shadowMap(table.name);
    for (const f of found) {
      const text = keyText(table.primaryKey.map((c) => f.seg.data.column(c)[f.index]));
      this.sql.exec(
        "INSERT OR REPLACE INTO _hearth_shadow (tbl, pk, seg) VALUES (?, ?, ?)",
        table.name,
        text,
        f.seg.ref.key,
      );
      shadows.set(f.key, { seg: f.seg.ref.key, text });
    }
    // Parents before children, so SQLite's foreign-key checks find them; a cycle is
    // settled by the end of the promotion (deferred checks).
    this.sql.exec("PRAGMA defer_foreign_keys = ON");
    for (const rel of view.schema.relationshipsOf(table.name)) {
      if (rel.kind !== "many-to-one") continue;
      const parent = view.schema.tables.get(rel.foreignTable)!;
      const at = columns.findIndex((c) => c.name === rel.columns[0]);
      const values = new Set(rows.map((r) => r[at]).filter((v) => v !== null && v !== undefined));
      if (values.size > 0) this.promoteWhere(view, parent, rel.foreignColumns[0]!, values);
    }
    const exprs = columns.map((c, j) => valueSql(c.type, `value ->> ${j}`)).join(", ");
    this.sql.exec("UPDATE _hearth_state SET muted = 1 WHERE id = 1");
    try {
      for (let i = 0; i < rows.length; i += 1000) {
        this.sql.exec(
          `INSERT INTO ${quoteIdent(table.name)} (${columns.map((c) => quoteIdent(c.name)).join(", ")}) SELECT ${exprs} FROM json_each(?1)`,
          JSON.stringify(rows.slice(i, i + 1000)),
        );
      }
    } finally {
      this.sql.exec("UPDATE _hearth_state SET muted = 0 WHERE id = 1");
      this.sql.exec("PRAGMA defer_foreign_keys = OFF");
    }
    return found.map((f) => f.key);
  }

  /** Promotes the live cold rows of `table` whose `column` holds one of `values`. */
  promoteWhere(view: ColdView, table: TableInfo, column: string, values: Set<unknown>): KeyOf[] {
    if (!view.hasCold(table.name) || values.size === 0) return [];
    if (table.primaryKey.length === 1 && table.primaryKey[0] === column) {
      return this.promote(
        view,
        table,
        [...values].map((v) => keyOf([v])),
      );
    }
    const keys: KeyOf[] = [];
    for (const seg of view.segments.get(table.name) ?? []) {
      const col = seg.data.column(column);
      for (let i = 0; i < seg.data.rows; i++) {
        if (values.has(col[i]) && view.isLive(table.name, seg, i)) keys.push(seg.keyAt(i));
      }
    }
    return this.promote(view, table, keys);
  }

  /** Promotes every live cold row of a table (before a migration rewrites it). */
  promoteAll(view: ColdView, table: TableInfo): KeyOf[] {
    const keys: KeyOf[] = [];
    for (const seg of view.segments.get(table.name) ?? []) {
      for (let i = 0; i < seg.data.rows; i++) {
        if (view.isLive(table.name, seg, i)) keys.push(seg.keyAt(i));
      }
    }
    return this.promote(view, table, keys);
  }

  /**
   * Re-reads the shadow set from SQLite: after a write transaction rolled back, the
   * promotions it made in memory never happened.
   */
  reloadShadows(): void {
    this.shadows.clear();
    for (const r of this.sql.exec("SELECT tbl, pk, seg FROM _hearth_shadow")) {
      this.shadowMap(String(r.tbl)).set(keyFromText(String(r.pk)), {
        seg: String(r.seg),
        text: String(r.pk),
      });
    }
  }

  /** Runs a write transaction; the in-memory shadow set follows a rollback. */
  transaction<T>(storage: DurableObjectStorage, fn: () => T): T {
    try {
      return storage.transactionSync(fn);
    } catch (err) {
      this.reloadShadows();
      throw err;
    }
  }

  /** Called by a flush once its manifest is committed: shadows are now tombstones. */
  clearShadows(): void {
    this.sql.exec("DELETE FROM _hearth_shadow");
    this.shadows.clear();
  }

  setVersion(version: number): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO _hearth_meta (key, value) VALUES ('manifest_version', ?)",
      String(version),
    );
  }
}
