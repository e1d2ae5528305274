/**
 * Reconnect delays: exponential from `initialMs` up to `maxMs`, with "equal jitter" (half the
 * delay fixed, half random) so that clients dropped together by one server restart do not
 * come back together, while each still waits at least half its step.
 */
export interface BackoffOptions {
  /** the first delay's ceiling (default 500 ms) */
  initialMs?: number;
  /** the largest delay (default 30 s) */
  maxMs?: number;
  /** a number in [0, 1) (default Math.random) */
  random?: () => number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialMs: 500,
  maxMs: 30_000,
  random: Math.random,
};

/** The delay before reconnect attempt `attempt` (0 for the first after a drop). */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>): number {
  const step = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (options.random() * step) / 2);
}
