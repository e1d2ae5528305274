/**
 * Building a push (docs/sync.md, Push): the oldest pending mutations, in id order, as many as
 * the server's `mutationsPerPush` allows and fit in its frame size. A mutation goes out as it
 * was queued: with a codec, its `wire` form (encrypted when it was written).
 */
import type { QueuedMutation } from "../replica/types.ts";
import type { SyncLimits, WireMutation } from "./protocol.ts";

/** Room left in a push frame for its envelope (type, clientId, ref). */
const ENVELOPE = 512;

export function toWire(m: QueuedMutation): WireMutation {
  const { id, op, table } = m;
  switch (op) {
    case "insert":
    case "upsert":
      return { id, op, table, row: m.wire ?? m.row! };
    case "update":
      return { id, op, table, pk: m.pk!, values: m.wire ?? m.values! };
    case "delete":
      return { id, op, table, pk: m.pk! };
  }
}

export interface PushBatch {
  mutations: WireMutation[];
  /** the first pending mutation, alone over the frame size: it can never be pushed */
  tooLarge: QueuedMutation | null;
}

export function nextBatch(pending: QueuedMutation[], limits: SyncLimits, max: number): PushBatch {
  const mutations: WireMutation[] = [];
  let size = ENVELOPE;
  for (const m of pending.slice(0, Math.min(max, limits.mutationsPerPush))) {
    const wire = toWire(m);
    // The server counts a frame's length in UTF-16 units (string length), as JSON.stringify makes it.
    const bytes = JSON.stringify(wire).length + 1;
    if (size + bytes > limits.frameBytes) {
      return { mutations, tooLarge: mutations.length === 0 ? m : null };
    }
    size += bytes;
    mutations.push(wire);
  }
  return { mutations, tooLarge: null };
}
