/**
 * Phoenix channel frames as realtime-js 2.x speaks them (vsn 2.0.0, shared/reference
 * supabase-js-wire.md §3): text frames are JSON arrays `[join_ref, ref, topic, event,
 * payload]`; the one binary frame a client sends is kind 3 (a broadcast), and the server
 * only ever sends text.
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";

export interface Frame {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

const Ref = z.union([z.string(), z.number().transform(String), z.null()]);
const FrameSchema = z.tuple([Ref, Ref, z.string().min(1).max(512), z.string().min(1).max(256), z.unknown()]);

function badFrame(why: string): HearthError {
  return new HearthError("HEARTH_BAD_FRAME", `Malformed frame: ${why}`, {
    hint: "Frames are JSON arrays [join_ref, ref, topic, event, payload] (Phoenix serializer 2.0.0).",
  });
}

function asPayload(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw badFrame("the payload must be a JSON object");
  return value as Record<string, unknown>;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Kind 3: `u8 3 | u8 len(join_ref) | u8 len(ref) | u8 len(topic) | u8 len(event) | u8 len(meta) | u8 enc | ...`. */
function decodeBinary(buffer: ArrayBuffer): Frame {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 7 || bytes[0] !== 3) throw badFrame("the only binary frame a client may send is kind 3");
  const lens = [bytes[1]!, bytes[2]!, bytes[3]!, bytes[4]!, bytes[5]!];
  const encoding = bytes[6]!;
  let at = 7;
  const parts: string[] = [];
  try {
    for (const len of lens) {
      if (at + len > bytes.length) throw badFrame("a length runs past the end of the frame");
      parts.push(decoder.decode(bytes.subarray(at, at + len)));
      at += len;
    }
    const rest = bytes.subarray(at);
    const [joinRef, ref, topic, event] = parts as [string, string, string, string];
    if (!topic || !event) throw badFrame("kind 3 needs a topic and an event");
    let payload: unknown;
    if (encoding === 1) payload = rest.length === 0 ? null : JSON.parse(decoder.decode(rest));
    else payload = { base64: base64(rest) };
    return {
      joinRef: joinRef || null,
      ref: ref || null,
      topic,
      event: "broadcast",
      payload: { type: "broadcast", event, payload },
    };
  } catch (err) {
    if (err instanceof HearthError) throw err;
    throw badFrame("the frame is not valid UTF-8 or JSON");
  }
}

/** Base64 of any length (spreading a large array into fromCharCode overflows the stack). */
function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(text);
}

export function decodeFrame(data: string | ArrayBuffer): Frame {
  if (typeof data !== "string") return decodeBinary(data);
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    throw badFrame("not JSON");
  }
  const parsed = FrameSchema.safeParse(raw);
  if (!parsed.success) throw badFrame("expected [join_ref, ref, topic, event, payload]");
  const [joinRef, ref, topic, event, payload] = parsed.data;
  return { joinRef, ref, topic, event, payload: asPayload(payload) };
}

export function encodeFrame(
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payload: unknown,
): string {
  return JSON.stringify([joinRef, ref, topic, event, payload]);
}

export function replyFrame(frame: Frame, status: "ok" | "error", response: unknown): string {
  return encodeFrame(frame.joinRef, frame.ref, frame.topic, "phx_reply", { status, response });
}
