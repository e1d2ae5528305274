/**
 * The frames of the sync protocol (docs/sync.md): what a client may send (validated with
 * zod at the socket, the trust boundary) and the limits a socket lives under. Server frames
 * are built as JSON text where they are sent (hub.ts, changes.ts): rows from the WAL are
 * already JSON and are spliced in without being parsed again.
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";

export const PROTOCOL_VERSION = 1;

export interface SyncLimits {
  /** largest frame a client may send (bytes) */
  frameBytes: number;
  /** tables one pull may follow */
  tablesPerSocket?: number;
  /** mutations in one push frame */
  mutationsPerPush?: number;
  /** changes in one `changes` frame */
  batchChanges?: number;
  /** bytes of changes or rows after which a frame is closed (one large row still goes alone) */
  batchBytes?: number;
  /** data frames in flight (sent, not acknowledged) while catching up or sending a snapshot */
  window?: number;
  /** a live socket with more frames or bytes than this unacknowledged is dropped (4008) */
  maxUnackedFrames?: number;
  maxUnackedBytes?: number;
  /** rows per snapshot page (one keyset read through the REST path) */
  snapshotPage?: number;
  /** a socket that sends nothing (not even a ping) for this long is closed (4000) */
  heartbeatTimeoutMs?: number;
}

export const DEFAULT_SYNC_LIMITS: Required<SyncLimits> = {
  frameBytes: 256 * 1024,
  tablesPerSocket: 100,
  mutationsPerPush: 500,
  batchChanges: 1000,
  batchBytes: 512 * 1024,
  window: 8,
  maxUnackedFrames: 256,
  maxUnackedBytes: 16 * 1024 * 1024,
  snapshotPage: 1000,
  heartbeatTimeoutMs: 60_000,
};

const Ref = z.union([z.string().max(128), z.number()]).optional();
const Lsn = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const TableName = z.string().min(1).max(512);

const PullSchema = z.object({
  type: z.literal("pull"),
  ref: Ref,
  /** null or absent: the client holds nothing and wants a snapshot */
  cursor: Lsn.nullish(),
  tables: z.array(TableName).min(1),
});

const AckSchema = z.object({ type: z.literal("ack"), ref: Ref, seq: z.number().int().min(0) });

const PushSchema = z.object({
  type: z.literal("push"),
  ref: Ref,
  clientId: z.string().min(1).max(128),
  /** each checked on its own (mutation.ts), so one bad mutation is rejected alone */
  mutations: z.array(z.unknown()).min(1),
});

const AuthSchema = z.object({ type: z.literal("auth"), ref: Ref, access_token: z.string().min(1).max(8192) });

const PingSchema = z.object({ type: z.literal("ping"), ref: Ref });

const ClientFrameSchema = z.discriminatedUnion("type", [
  PullSchema,
  AckSchema,
  PushSchema,
  AuthSchema,
  PingSchema,
]);

export type ClientFrame = z.infer<typeof ClientFrameSchema>;
export type PullFrame = z.infer<typeof PullSchema>;
export type PushFrame = z.infer<typeof PushSchema>;

function badFrame(message: string, details: string | null = null): HearthError {
  return new HearthError("HEARTH_BAD_FRAME", message, {
    details,
    hint: 'Sync frames are JSON objects with a "type": pull, ack, push, auth or ping (docs/sync.md).',
  });
}

/** A text frame → a validated client frame; a HearthError (HEARTH_BAD_FRAME) otherwise. */
export function decodeClientFrame(data: string | ArrayBuffer): ClientFrame {
  if (typeof data !== "string") throw badFrame("Binary frames are not part of the sync protocol");
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw badFrame("The frame is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badFrame("A frame must be a JSON object");
  }
  const parsed = ClientFrameSchema.safeParse(value);
  if (!parsed.success) {
    const type = (value as { type?: unknown }).type;
    throw badFrame(
      typeof type === "string" ? `Malformed "${type.slice(0, 40)}" frame` : 'A frame needs a "type"',
      parsed.error.issues.map((i) => `${i.path.join(".") || "frame"}: ${i.message}`).join("; "),
    );
  }
  return parsed.data;
}

/** `ref` of a frame that may not have parsed, to echo in its error frame. */
export function refOf(data: string | ArrayBuffer): string | number | undefined {
  if (typeof data !== "string" || data.length > 1024 * 1024) return undefined;
  try {
    const ref = (JSON.parse(data) as { ref?: unknown })?.ref;
    return typeof ref === "string" || typeof ref === "number" ? ref : undefined;
  } catch {
    return undefined;
  }
}

/** `{"type":"error",...}`: the socket stays open. */
export function errorFrame(err: HearthError, ref?: string | number): string {
  return JSON.stringify({ type: "error", ...err.toBody(), ...(ref === undefined ? {} : { ref }) });
}
