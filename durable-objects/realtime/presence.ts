/**
 * Presence payloads in the Phoenix shape realtime-js expects: a state maps each key to its
 * metas, every meta carrying the `phx_ref` of the track that made it; leaves name the same
 * `phx_ref` so the client can match them.
 */
import type { Tracked } from "./channel.ts";

type Metas = Record<string, { metas: Record<string, unknown>[] }>;

function meta(t: Tracked): Record<string, unknown> {
  return { ...t.meta, phx_ref: t.ref };
}

export function presenceState(tracked: (Tracked | null)[]): Metas {
  const state: Metas = {};
  for (const t of tracked) {
    if (!t) continue;
    const entry = state[t.key] ?? { metas: [] };
    entry.metas.push(meta(t));
    state[t.key] = entry;
  }
  return state;
}

export function trackDiff(t: Tracked): { joins: Metas; leaves: Metas } {
  return { joins: { [t.key]: { metas: [meta(t)] } }, leaves: {} };
}

export function leaveDiff(t: Tracked): { joins: Metas; leaves: Metas } {
  return { joins: {}, leaves: { [t.key]: { metas: [meta(t)] } } };
}
