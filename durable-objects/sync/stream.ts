/**
 * What a pulling socket is sent, in order: a snapshot (keyset pages through the REST read
 * path) when its cursor cannot be served from the WAL, then WAL batches until nothing
 * committed is unread (`live`), then what the change feed delivers. One stream loop per
 * socket runs while the ack window allows and stops at `live`; an ack, a new pull or a
 * restore after hibernation starts it again. A loop of an older generation (a pull since)
 * stops at its next step and sends nothing more.
 */
import { HearthError } from "../../shared/errors.ts";
import { lastLsn } from "../cold/flush.ts";
import { tableAccess } from "../realtime/changes.ts";
import { principalKey } from "../realtime/fanout.ts";
import { CLOSE } from "../realtime/sockets.ts";
import {
  type FileTableName,
  FileVisibility,
  fileSnapshotPage,
  fileTable,
  readPolicyChanged,
  readPolicyChangedIn,
  walNameOf,
} from "../storage/changes.ts";
import type { WalEntry } from "../wal.ts";
import { type Followed, followed, followedFiles, liveChanges, readChanges } from "./changes.ts";
import type { SyncHost } from "./hub.ts";
import { walFloor } from "./retention.ts";
import { type Limits, type SyncSocket, savePosition, sendData, windowOpen } from "./session.ts";
import { readPage, rowGroups } from "./snapshot.ts";

export type Ref = string | number | undefined;

const OBJECTS_WAL = walNameOf("storage.objects");
export const withRef = (ref: Ref) => (ref === undefined ? {} : { ref });

export interface StreamDeps {
  host: SyncHost;
  limits: Limits;
  send(s: SyncSocket, frame: Record<string, unknown>): void;
  drop(s: SyncSocket, code: number, reason: string): void;
  report(s: SyncSocket, err: unknown, ref: Ref): void;
  /** token checks; false when the socket was closed for them */
  authorize(s: SyncSocket): Promise<boolean>;
}

const changesFrame = (seq: number, through: number, parts: string[]) =>
  `{"type":"changes","seq":${seq},"cursor":${through},"changes":[${parts.join(",")}]}`;

export class Streamer {
  constructor(private readonly d: StreamDeps) {}

  /** A pull with `cursor` (null: the client holds nothing): catch up, or resync first. */
  start(s: SyncSocket, cursor: number | null, ref: Ref): void {
    const sql = this.d.host.sql;
    if (cursor === null) this.startSnapshot(s, "requested", ref);
    else if (cursor < walFloor(sql)) this.startSnapshot(s, "cursor_too_old", ref);
    else if (cursor > lastLsn(sql)) this.startSnapshot(s, "cursor_ahead", ref);
    else {
      s.phase = "catchup";
      s.cursor = cursor;
      s.snap = null;
      savePosition(s);
      this.d.send(s, { type: "catchup", cursor, ...withRef(ref) });
    }
  }

  /** A running pull starts over with a snapshot (a loop of the old generation stops). */
  restart(s: SyncSocket, reason: string): void {
    s.generation++;
    this.startSnapshot(s, reason);
    void this.stream(s);
  }

  startSnapshot(s: SyncSocket, reason: string, ref?: Ref): void {
    const cursor = lastLsn(this.d.host.sql);
    s.phase = "snapshot";
    s.cursor = cursor;
    s.snap = { cursor, table: 0, after: null };
    savePosition(s);
    this.d.send(s, { type: "resync", reason, cursor, ...withRef(ref) });
  }

  /**
   * The followed tables as the socket's principal reads them now, by WAL name; null (closed)
   * when access ended. File tables are checked row by row instead (storage/changes.ts).
   */
  followedTables(s: SyncSocket): Map<string, Followed> | null {
    const schema = this.d.host.schema();
    const out = new Map<string, Followed>();
    for (const name of s.tables) {
      const file = fileTable(name);
      if (file) {
        out.set(walNameOf(name as FileTableName), followedFiles(file));
        continue;
      }
      const info = schema?.tables.get(name);
      if (!info) continue; // dropped: nothing more to send
      const access = tableAccess(s.auth.principal, info);
      if (access === null) {
        this.d.drop(s, CLOSE.unauthorized, `read access to ${name} ended`);
        return null;
      }
      out.set(name, followed(info, access));
    }
    return out;
  }

  private sendFrame(s: SyncSocket, frame: string): boolean {
    const why = sendData(s, frame, this.d.limits);
    if (why === null) return true;
    this.d.drop(s, CLOSE.slowConsumer, why);
    return false;
  }

  /** Sends what the socket still lacks while the ack window allows, until it is live. */
  async stream(s: SyncSocket): Promise<void> {
    if (s.loop === s.generation) return;
    const gen = s.generation;
    s.loop = gen;
    try {
      while (!s.closed && s.generation === gen && (s.phase === "snapshot" || s.phase === "catchup")) {
        if (!windowOpen(s, this.d.limits)) return;
        if (!(await this.d.authorize(s)) || s.generation !== gen) return;
        if (s.phase === "snapshot") await this.snapshotStep(s, gen);
        else this.catchupStep(s);
      }
    } catch (err) {
      if (s.closed || s.generation !== gen) return;
      if (err instanceof HearthError && (err.status === 401 || err.status === 403)) {
        this.d.drop(s, CLOSE.unauthorized, err.message);
        return;
      }
      s.phase = "idle";
      s.generation++;
      savePosition(s);
      this.d.report(s, err, undefined);
    } finally {
      if (s.loop === gen) s.loop = null;
    }
  }

  private async snapshotStep(s: SyncSocket, gen: number): Promise<void> {
    const snap = s.snap!;
    const name = s.tables[snap.table];
    if (name === undefined) {
      s.phase = "catchup";
      s.cursor = snap.cursor;
      s.snap = null;
      savePosition(s);
      this.d.send(s, { type: "snapshot_end", cursor: snap.cursor });
      return;
    }
    const { host, limits } = this.d;
    const info = host.schema()?.tables.get(name);
    const page = fileTable(name)
      ? fileSnapshotPage(host.sql, s.auth.principal, name as FileTableName, snap.after, limits.snapshotPage)
      : info
        ? await readPage((p, r) => host.rest(p, r), s.auth.principal, info, snap.after, limits.snapshotPage)
        : { rows: [], next: null };
    if (s.closed || s.generation !== gen) return;
    const table = JSON.stringify(name);
    for (const group of rowGroups(page.rows, limits.batchBytes)) {
      s.seq++;
      const frame = `{"type":"snapshot","seq":${s.seq},"table":${table},"rows":[${group.join(",")}]}`;
      if (!this.sendFrame(s, frame)) return;
    }
    if (page.next === null) {
      snap.table++;
      snap.after = null;
    } else snap.after = page.next;
  }

  private catchupStep(s: SyncSocket): void {
    const sql = this.d.host.sql;
    const last = lastLsn(sql);
    // A flush may have trimmed the WAL while this socket waited for acks.
    if (s.cursor < walFloor(sql) || s.cursor > last) {
      this.startSnapshot(s, s.cursor > last ? "cursor_ahead" : "cursor_too_old");
      return;
    }
    const tables = this.followedTables(s);
    if (!tables) return;
    const l = this.d.limits;
    const files = { principal: s.auth.principal, visibility: new FileVisibility(sql) };
    const batch = readChanges(sql, tables, s.cursor, last, l.batchChanges, l.batchBytes, files);
    if (tables.has(OBJECTS_WAL) && readPolicyChangedIn(sql, s.cursor, batch.through)) {
      // Which objects the principal may read changed with a bucket's policy: cut again.
      this.startSnapshot(s, "access_changed");
      return;
    }
    if (batch.parts.length > 0) {
      s.seq++;
      s.cursor = batch.through;
      if (!this.sendFrame(s, changesFrame(s.seq, batch.through, batch.parts))) return;
    } else s.cursor = batch.through;
    if (batch.through >= last) {
      // Nothing committed is unread (no await since the read): the change feed takes over.
      s.phase = "live";
      savePosition(s);
      this.d.send(s, { type: "live", cursor: s.cursor });
    }
  }

  /** Committed WAL entries, in LSN order, to the live sockets (catching-up ones read the WAL). */
  deliver(sockets: SyncSocket[], entries: WalEntry[], files: FileVisibility): void {
    if (entries.length === 0) return;
    const { host, limits } = this.d;
    const now = Date.now();
    const first = entries[0]!.lsn;
    const last = entries[entries.length - 1]!.lsn;
    // One visibility answer per principal and entry.
    const cache = new Map<string, string[]>();
    for (const s of sockets) {
      if (s.closed || s.phase !== "live" || s.cursor >= last) continue;
      const why = host.auth.invalidNow(s.auth, now);
      if (why !== null) {
        this.d.drop(s, CLOSE.unauthorized, why);
        continue;
      }
      if (s.cursor < first - 1) {
        // Entries went by while this socket was not listening: read them from the WAL.
        s.phase = "catchup";
        void this.stream(s);
        continue;
      }
      const tables = this.followedTables(s);
      if (!tables) continue;
      if (tables.has(OBJECTS_WAL) && entries.some((e) => e.lsn > s.cursor && readPolicyChanged(e))) {
        // As in catch-up: a bucket's read policy changed, the replica of its objects is cut again.
        this.restart(s, "access_changed");
        continue;
      }
      const pkey = principalKey(s.auth);
      let parts: string[] = [];
      let bytes = 0;
      for (const e of entries) {
        if (e.lsn <= s.cursor) continue;
        const t = tables.get(e.table);
        if (t) {
          const key = `${e.lsn}\n${pkey}`;
          let out = cache.get(key);
          if (!out) {
            out = liveChanges(t, s.auth.principal, e, files);
            cache.set(key, out);
          }
          for (const p of out) {
            parts.push(p);
            bytes += p.length;
          }
        }
        if (parts.length >= limits.batchChanges || bytes >= limits.batchBytes || e.lsn === last) {
          // The position saved with the frame must include it.
          s.cursor = e.lsn;
          if (parts.length > 0) {
            s.seq++;
            if (!this.sendFrame(s, changesFrame(s.seq, e.lsn, parts))) break;
          }
          parts = [];
          bytes = 0;
        }
      }
    }
  }
}
