/**
 * The frames of `{url}/sync/v1` as a client sees them (docs/sync.md). Server frames are checked
 * for the fields the engine reads before it trusts them; a frame that fails is reported, never
 * applied.
 */
import type { MutationOp, Row } from "../replica/types.ts";

export const PROTOCOL_VERSION = 1;

/** The limits the server announces in `hello` (defaults: docs/sync.md, Limits). */
export interface SyncLimits {
  frameBytes: number;
  tablesPerSocket: number;
  mutationsPerPush: number;
  window: number;
}

export const DEFAULT_LIMITS: SyncLimits = {
  frameBytes: 256 * 1024,
  tablesPerSocket: 100,
  mutationsPerPush: 500,
  window: 8,
};

/** The error body of the REST API and of `error` frames. */
export interface ErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

export interface Change {
  lsn: number;
  ts: number;
  table: string;
  op: "insert" | "update" | "delete";
  pk: Row;
  row?: Row;
}

export type PushStatus = "applied" | "duplicate" | "rejected" | "expired";

export type Ref = string | number;

export type ServerFrame =
  | { type: "hello"; protocol: number; lsn: number; role: string; limits?: Partial<SyncLimits> }
  | { type: "catchup"; cursor: number }
  | { type: "changes"; seq: number; cursor: number; changes: Change[] }
  | { type: "live"; cursor: number }
  | { type: "resync"; reason: string; cursor: number }
  | { type: "snapshot"; seq: number; table: string; rows: Row[] }
  | { type: "snapshot_end"; cursor: number }
  | {
      type: "push_result";
      clientId: string;
      id: number;
      status: PushStatus;
      lsn?: number | null;
      error?: ErrorBody;
      retryable?: boolean;
      ref?: Ref;
    }
  | { type: "pong"; cursor: number | null }
  | { type: "auth_ok"; role: string }
  | ({ type: "error"; ref?: Ref } & ErrorBody);

/** A mutation as pushed (docs/sync.md, Push). */
export interface WireMutation {
  id: number;
  op: MutationOp;
  table: string;
  row?: Row;
  pk?: Row;
  values?: Row;
}

export type ClientFrame =
  | { type: "pull"; cursor: number | null; tables: string[]; ref?: Ref }
  | { type: "ack"; seq: number }
  | { type: "push"; clientId: string; mutations: WireMutation[]; ref?: Ref }
  | { type: "ping"; ref?: Ref };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isStr = (v: unknown): v is string => typeof v === "string";

function isChange(c: unknown): c is Change {
  return (
    isObj(c) &&
    isInt(c.lsn) &&
    isStr(c.table) &&
    isObj(c.pk) &&
    (c.op === "delete" || ((c.op === "insert" || c.op === "update") && isObj(c.row)))
  );
}

function isErrorBody(v: unknown): v is ErrorBody {
  return isObj(v) && isStr(v.code) && isStr(v.message);
}

/** Which fields each frame type must have; a frame of an unknown type is passed on as is. */
const CHECKS: Record<string, (f: Obj) => boolean> = {
  hello: (f) => isInt(f.protocol) && (f.limits === undefined || isObj(f.limits)),
  catchup: (f) => isInt(f.cursor),
  changes: (f) => isInt(f.seq) && isInt(f.cursor) && Array.isArray(f.changes) && f.changes.every(isChange),
  live: (f) => isInt(f.cursor),
  resync: (f) => isInt(f.cursor),
  snapshot: (f) => isInt(f.seq) && isStr(f.table) && Array.isArray(f.rows) && f.rows.every(isObj),
  snapshot_end: (f) => isInt(f.cursor),
  push_result: (f) =>
    isStr(f.clientId) &&
    isInt(f.id) &&
    (f.status === "applied" || f.status === "duplicate"
      ? f.lsn === undefined || f.lsn === null || isInt(f.lsn)
      : (f.status === "rejected" || f.status === "expired") && isErrorBody(f.error)),
  pong: (f) => f.cursor === null || f.cursor === undefined || isInt(f.cursor),
  error: (f) => isErrorBody(f),
};

/** A text frame → a server frame; null when it is not one the engine can use. */
export function parseServerFrame(data: unknown): ServerFrame | null {
  if (typeof data !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObj(value) || !isStr(value.type)) return null;
  const check = CHECKS[value.type];
  if (check && !check(value)) return null;
  return value as ServerFrame;
}

/** `{url}/sync/v1?apikey=<token>` as a ws(s) URL, from the project's http(s) URL. */
export function syncUrl(url: string, token: string): string {
  const u = new URL(`${url.replace(/\/+$/, "")}/sync/v1`);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  u.searchParams.set("apikey", token);
  return u.toString();
}
