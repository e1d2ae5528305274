/** `usePresence(room, key, state)`: who is in a room, through the provider's realtime connection. */
import { useEffect, useRef, useState } from "react";
import type { Presence } from "../realtime/index.ts";
import { useHearth } from "./context.ts";

export interface PresenceOptions {
  /** a failed join or update (default: `console.error`) */
  onError?: (error: unknown) => void;
}

/**
 * Joins `room` as `key` with `state` on mount and leaves on unmount (or when `room` or `key`
 * change). Returns everyone present, by key (`{}` until joined), and re-renders when someone
 * joins, leaves or changes their state. A new `state` that differs (as JSON) from the last
 * one sent replaces this client's tracked state; an equal object made anew in each render
 * sends nothing.
 *
 * @example
 * ```ts
 * function Online({ me }: { me: string }) {
 *   const present = usePresence("lobby", me, { typing: false });
 *   return `${Object.keys(present).length} online`;
 * }
 * ```
 */
export function usePresence<State extends Record<string, unknown>>(
  room: string,
  key: string,
  state: State,
  options: PresenceOptions = {},
): Record<string, State[]> {
  const { realtime } = useHearth();
  if (realtime === null) {
    throw new Error("Hearth: usePresence needs <HearthProvider realtime={createRealtime(...)}>");
  }
  const [present, setPresent] = useState<Record<string, State[]>>({});
  const channel = useRef<Presence<State> | null>(null);
  const latest = useRef({ state, onError: options.onError });
  latest.current = { state, onError: options.onError };
  /** JSON of the state the room has (or is being sent) */
  const sent = useRef<string | null>(null);
  const stateJson = JSON.stringify(state);

  useEffect(() => {
    let active = true;
    let off: (() => void) | null = null;
    let joined: Presence<State> | null = null;
    const report = (err: unknown) => (latest.current.onError ?? console.error)(err);
    const initial = latest.current.state;
    sent.current = JSON.stringify(initial);
    realtime.presence<State>(room, key, initial).then(
      (p) => {
        if (!active) {
          p.leave().catch(report);
          return;
        }
        joined = p;
        channel.current = p;
        off = p.onChange((s) => {
          if (active) setPresent(s);
        });
        setPresent(p.state());
        // The state may have changed while joining.
        const now = JSON.stringify(latest.current.state);
        if (now !== sent.current) {
          sent.current = now;
          p.update(latest.current.state).catch(report);
        }
      },
      (err: unknown) => {
        if (active) report(err);
      },
    );
    return () => {
      active = false;
      off?.();
      channel.current = null;
      setPresent({});
      joined?.leave().catch(report);
    };
  }, [realtime, room, key]);

  useEffect(() => {
    const p = channel.current;
    if (!p || stateJson === sent.current) return; // not joined yet: the join sends the latest
    sent.current = stateJson;
    p.update(latest.current.state).catch((err: unknown) => (latest.current.onError ?? console.error)(err));
  }, [stateJson]);

  return present;
}
