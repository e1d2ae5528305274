/**
 * An in-process server side of `{url}/sync/v1` (docs/sync.md) for the engine's unit tests: a
 * tiny database with a WAL, pulls by cursor (catch-up in `changes` frames, or resync with
 * snapshot pages), the ack window, live delivery, and pushes decided once per (client id,
 * mutation id). Its sockets are what the engine's `WebSocket` option constructs. Tests steer
 * it through hooks (`decide`, `trim`, `drop`) and read what it was sent (`received`).
 * Pages and frames are small on purpose, so that paging and the window are exercised.
 */
import type { Row } from "../src/replica/types.ts";
import type { WebSocketLike } from "../src/sync/connection.ts";
import type { Change, ErrorBody } from "../src/sync/protocol.ts";

type Frame = Record<string, unknown> & { type: string };
type Handler = ((event: never) => void) | null;

export interface Mutation {
  id: number;
  op: "insert" | "upsert" | "update" | "delete";
  table: string;
  row?: Row;
  pk?: Row;
  values?: Row;
}

/** How the server answers one mutation (the default: apply it like the REST write path). */
export type Decision =
  | { kind: "apply" }
  | { kind: "reject"; error: ErrorBody }
  | { kind: "retry" }
  | { kind: "expire" }
  /** applied and recorded, but the socket dies before the answer is sent */
  | { kind: "apply-then-drop" };

interface ServerSocketState {
  phase: "idle" | "snapshot" | "catchup" | "live";
  tables: string[];
  cursor: number;
  seq: number;
  acked: number;
  snapshot: { cursor: number; queue: { table: string; rows: Row[] }[] } | null;
}

const key = (pk: Row) => JSON.stringify(pk.id);

export class FakeSocket implements WebSocketLike {
  readyState = 0;
  /** frames the client sent, parsed */
  readonly received: Frame[] = [];
  readonly url: URL;
  state: ServerSocketState = { phase: "idle", tables: [], cursor: 0, seq: 0, acked: 0, snapshot: null };
  closeCode: number | null = null;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;

  constructor(
    url: string,
    private readonly server: FakeSyncServer,
  ) {
    this.url = new URL(url);
    setTimeout(() => server.accept(this), 0);
  }

  private dispatch(type: "message" | "close", event: unknown): void {
    const handler = type === "message" ? this.onmessage : this.onclose;
    (handler as ((event: unknown) => void) | null)?.(event);
  }

  /** client → server */
  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    const frame = JSON.parse(data) as Frame;
    this.received.push(frame);
    queueMicrotask(() => this.server.handle(this, frame));
  }

  /** the client closes */
  close(code = 1000, reason = ""): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.closeCode = code;
    this.server.changed();
    setTimeout(() => this.dispatch("close", { code, reason }), 0);
  }

  // Server side.

  opened(): void {
    this.readyState = 1;
  }

  emit(frame: Frame): void {
    if (this.readyState !== 1) return;
    this.dispatch("message", { data: JSON.stringify(frame) });
  }

  /** The server (or the network) closes the socket. */
  drop(code: number, reason = ""): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.closeCode = code;
    this.dispatch("close", { code, reason });
    this.server.changed();
  }

  get open(): boolean {
    return this.readyState === 1;
  }
}

export class FakeSyncServer {
  readonly tables = new Map<string, Map<string, Row>>();
  readonly wal: Change[] = [];
  /** the oldest cursor still served from the WAL */
  floor = 0;
  readonly sockets: FakeSocket[] = [];
  readonly ledger = new Map<
    string,
    { status: "applied" | "rejected"; lsn: number | null; error?: ErrorBody }
  >();
  readonly pushes: Mutation[][] = [];
  limits = { frameBytes: 262_144, tablesPerSocket: 100, mutationsPerPush: 500, window: 4 };
  /** pushes longer than this are refused (default: the announced mutationsPerPush) */
  acceptsPerPush: number | null = null;
  snapshotPage = 2;
  changesPerFrame = 3;
  /** refuse new connections (they close at once, as a failed upgrade does) */
  refuse = false;
  decide: (m: Mutation) => Decision = () => ({ kind: "apply" });
  private waiters: (() => void)[] = [];

  /** The constructor to pass as the engine's `WebSocket` option. */
  readonly WebSocket = ((server: FakeSyncServer) =>
    class extends FakeSocket {
      constructor(url: string) {
        super(url, server);
        server.sockets.push(this);
      }
    })(this);

  get lsn(): number {
    return this.wal.at(-1)?.lsn ?? this.floor;
  }

  /** The newest socket. */
  get socket(): FakeSocket {
    const s = this.sockets.at(-1);
    if (!s) throw new Error("no socket yet");
    return s;
  }

  rows(table: string): Row[] {
    return [...(this.tables.get(table)?.values() ?? [])];
  }

  /** Resolves once `check` holds, re-checked whenever the server sees or does something. */
  until(check: () => boolean, what = "condition", ms = 5_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const test = () => {
        if (!check()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!test()) this.waiters.push(test as () => void);
    });
  }

  /** Every open socket is live at the newest LSN and acknowledged every data frame. */
  caughtUp(): boolean {
    const open = this.sockets.filter((s) => s.open);
    return (
      open.length > 0 &&
      open.every(
        (s) => s.state.phase === "live" && s.state.cursor === this.lsn && s.state.acked === s.state.seq,
      )
    );
  }

  changed(): void {
    this.waiters = this.waiters.filter((w) => !(w as unknown as () => boolean)());
  }

  accept(s: FakeSocket): void {
    if (s.readyState !== 0) return;
    if (this.refuse) {
      s.drop(1006, "refused");
      return;
    }
    s.opened();
    s.emit({ type: "hello", protocol: 1, lsn: this.lsn, role: "anon", limits: this.limits });
    this.changed();
  }

  // Writes.

  private table(name: string): Map<string, Row> {
    let t = this.tables.get(name);
    if (!t) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  /**
   * Commits one change (a write by anyone). Live sockets get it a moment later, after the
   * write's answer (as the real change feed pumps after the response left), unless
   * `holdDelivery` keeps it back until `deliver()`.
   */
  commit(table: string, op: Change["op"], pk: Row, row?: Row): number {
    const lsn = this.lsn + 1;
    const t = this.table(table);
    if (op === "delete") t.delete(key(pk));
    else t.set(key(pk), row!);
    this.wal.push({ lsn, ts: Date.now(), table, op, pk, ...(row ? { row } : {}) });
    if (!this.holdDelivery) setTimeout(() => this.deliver(), 0);
    this.changed();
    return lsn;
  }

  holdDelivery = false;

  /** Sends every committed change to the live sockets that lack it. */
  deliver(): void {
    for (const s of this.sockets) {
      const st = s.state;
      if (!s.open || st.phase !== "live" || st.cursor >= this.lsn) continue;
      const mine = this.wal.filter((c) => c.lsn > st.cursor && st.tables.includes(c.table));
      st.cursor = this.lsn;
      if (mine.length === 0) continue; // changes of tables it does not follow: skipped
      st.seq++;
      s.emit({ type: "changes", seq: st.seq, cursor: st.cursor, changes: mine });
    }
    this.changed();
  }

  /** Another client's write, through the same path as an applied mutation. */
  write(m: Omit<Mutation, "id">): number | null {
    const r = this.apply({ ...m, id: -1 });
    if ("error" in r) throw new Error(r.error.message);
    return r.lsn;
  }

  /** Forgets the WAL through `lsn`: older cursors get a resync. */
  trim(lsn: number): void {
    while (this.wal.length > 0 && this.wal[0]!.lsn <= lsn) this.wal.shift();
    this.floor = Math.max(this.floor, lsn);
  }

  private apply(m: Mutation): { lsn: number | null } | { error: ErrorBody } {
    const t = this.table(m.table);
    const err = (code: string, message: string) => ({ error: { code, message, details: null, hint: null } });
    switch (m.op) {
      case "insert":
        if (t.has(key(m.row!))) return err("23505", "duplicate key value violates unique constraint");
        return { lsn: this.commit(m.table, "insert", { id: m.row!.id }, { done: false, ...m.row! }) };
      case "upsert": {
        const current = t.get(key(m.row!));
        return {
          lsn: this.commit(
            m.table,
            current ? "update" : "insert",
            { id: m.row!.id },
            { ...current, ...m.row! },
          ),
        };
      }
      case "update": {
        const current = t.get(key(m.pk!));
        if (!current) return err("HEARTH_SYNC_ROW_NOT_FOUND", `No row of ${m.table} with this key to update`);
        return { lsn: this.commit(m.table, "update", m.pk!, { ...current, ...m.values! }) };
      }
      case "delete":
        if (!t.has(key(m.pk!))) return { lsn: null };
        return { lsn: this.commit(m.table, "delete", m.pk!) };
    }
  }

  // Frames.

  /** ignore every client frame (a server or network that stopped answering) */
  mute = false;
  /** keep pushes unanswered until `releasePushes()` */
  holdPushes = false;
  private held: (() => void)[] = [];

  releasePushes(): void {
    this.holdPushes = false;
    const held = this.held;
    this.held = [];
    for (const run of held) run();
  }

  handle(s: FakeSocket, f: Frame): void {
    if (!s.open || this.mute) return;
    if (f.type === "push") this.pushes.push(f.mutations as Mutation[]);
    if (f.type === "push" && this.holdPushes) {
      this.held.push(() => {
        if (s.open) this.push(s, f.clientId as string, f.mutations as Mutation[], f.ref);
        this.changed();
      });
      this.changed();
      return;
    }
    switch (f.type) {
      case "ping":
        s.emit({
          type: "pong",
          cursor: s.state.phase === "catchup" || s.state.phase === "live" ? s.state.cursor : null,
        });
        break;
      case "pull":
        this.pull(s, f.cursor as number | null, f.tables as string[]);
        break;
      case "ack":
        if ((f.seq as number) > s.state.seq) {
          s.emit({
            type: "error",
            code: "HEARTH_BAD_FRAME",
            message: "ack of a frame never sent",
            details: null,
            hint: null,
          });
        } else {
          s.state.acked = Math.max(s.state.acked, f.seq as number);
          this.stream(s);
        }
        break;
      case "push":
        this.push(s, f.clientId as string, f.mutations as Mutation[], f.ref);
        break;
    }
    this.changed();
  }

  private pull(s: FakeSocket, cursor: number | null, tables: string[]): void {
    const st = s.state;
    st.tables = tables;
    if (cursor === null || cursor < this.floor || cursor > this.lsn) {
      const reason = cursor === null ? "requested" : cursor < this.floor ? "cursor_too_old" : "cursor_ahead";
      const at = this.lsn;
      const queue: { table: string; rows: Row[] }[] = [];
      for (const table of tables) {
        const rows = [...this.table(table).values()];
        for (let i = 0; i < rows.length; i += this.snapshotPage) {
          queue.push({ table, rows: rows.slice(i, i + this.snapshotPage) });
        }
      }
      st.phase = "snapshot";
      st.snapshot = { cursor: at, queue };
      s.emit({ type: "resync", reason, cursor: at });
    } else {
      st.phase = "catchup";
      st.cursor = cursor;
      s.emit({ type: "catchup", cursor });
    }
    this.stream(s);
  }

  /** Sends what the socket lacks while the window allows, then `live`. */
  stream(s: FakeSocket): void {
    const st = s.state;
    while (s.open && (st.phase === "snapshot" || st.phase === "catchup")) {
      if (st.seq - st.acked >= this.limits.window) return;
      if (st.phase === "snapshot") {
        const page = st.snapshot!.queue.shift();
        if (page) {
          st.seq++;
          s.emit({ type: "snapshot", seq: st.seq, table: page.table, rows: page.rows });
        } else {
          st.phase = "catchup";
          st.cursor = st.snapshot!.cursor;
          st.snapshot = null;
          s.emit({ type: "snapshot_end", cursor: st.cursor });
        }
        continue;
      }
      const next = this.wal.filter((c) => c.lsn > st.cursor);
      const mine = next.filter((c) => st.tables.includes(c.table)).slice(0, this.changesPerFrame);
      if (mine.length === 0) {
        st.cursor = this.lsn;
        st.phase = "live";
        s.emit({ type: "live", cursor: st.cursor });
        return;
      }
      st.seq++;
      const through = mine.at(-1)!.lsn;
      st.cursor = through;
      s.emit({ type: "changes", seq: st.seq, cursor: through, changes: mine });
    }
  }

  private push(s: FakeSocket, clientId: string, mutations: Mutation[], ref: unknown): void {
    if (mutations.length > (this.acceptsPerPush ?? this.limits.mutationsPerPush)) {
      s.emit({
        type: "error",
        code: "HEARTH_REALTIME_LIMIT",
        message: "too many",
        details: null,
        hint: null,
        ref,
      });
      return;
    }
    let retry = false;
    for (const m of mutations) {
      const answer = (r: Record<string, unknown>) =>
        s.emit({ type: "push_result", clientId, id: m.id, ...r, ...(ref === undefined ? {} : { ref }) });
      const id = `${clientId}:${m.id}`;
      const prior = this.ledger.get(id);
      if (retry) {
        answer({
          status: "rejected",
          retryable: true,
          error: { code: "HEARTH_STORAGE_UNAVAILABLE", message: "not attempted", details: null, hint: null },
        });
        continue;
      }
      if (prior) {
        answer(
          prior.status === "applied"
            ? { status: "duplicate", lsn: prior.lsn }
            : { status: "rejected", error: prior.error },
        );
        continue;
      }
      const decision = this.decide(m);
      if (decision.kind === "retry") {
        retry = true;
        answer({
          status: "rejected",
          retryable: true,
          error: { code: "HEARTH_STORAGE_UNAVAILABLE", message: "storage down", details: null, hint: null },
        });
      } else if (decision.kind === "expire") {
        answer({
          status: "expired",
          error: {
            code: "HEARTH_SYNC_MUTATION_EXPIRED",
            message: `Mutation ${m.id} was decided before`,
            details: null,
            hint: null,
          },
        });
      } else if (decision.kind === "reject") {
        this.ledger.set(id, { status: "rejected", lsn: null, error: decision.error });
        answer({ status: "rejected", error: decision.error });
      } else {
        const r = this.apply(m);
        if ("error" in r) {
          this.ledger.set(id, { status: "rejected", lsn: null, error: r.error });
          answer({ status: "rejected", error: r.error });
        } else {
          this.ledger.set(id, { status: "applied", lsn: r.lsn });
          if (decision.kind === "apply-then-drop") {
            s.drop(1006, "network");
            return;
          }
          answer({ status: "applied", lsn: r.lsn });
        }
      }
    }
  }
}
