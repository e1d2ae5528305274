/**
 * Waiting on supabase-js realtime in e2e tests, by promise on its callbacks, never by
 * sleeping: a channel's SUBSCRIBED, and payloads collected until n have arrived.
 */
import type { RealtimeChannel } from "@supabase/supabase-js";

/** Resolves when `channel` reports SUBSCRIBED; rejects on CHANNEL_ERROR or TIMED_OUT. */
export function subscribed(channel: RealtimeChannel): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === "SUBSCRIBED") resolve();
      else if (status === "CHANNEL_ERROR" || status === "TIMED_OUT")
        reject(new Error(`${status}: ${err?.message}`));
    });
  });
}

/** Collects callback payloads; `until(n)` resolves once n have arrived. */
export function collector<T>() {
  const items: T[] = [];
  let waiters: (() => void)[] = [];
  return {
    items,
    push: (x: T) => {
      items.push(x);
      // Swap before calling: a waiter that is not yet satisfied re-registers itself, and it
      // must land in the next list, not in the one being walked (that loops forever).
      const ready = waiters;
      waiters = [];
      for (const w of ready) w();
    },
    until: (n: number, ms = 10_000) =>
      new Promise<T[]>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`got ${items.length} of ${n}: ${JSON.stringify(items)}`)),
          ms,
        );
        const check = () => {
          if (items.length >= n) {
            clearTimeout(t);
            resolve(items);
          } else waiters.push(check);
        };
        check();
      }),
  };
}
