/**
 * When a session's access token is refreshed in the background: `marginMs` before it expires
 * (at most half its lifetime, for short-lived tokens), again a few seconds after a transient
 * failure. The timer never keeps a Node process alive.
 */
import type { Session } from "./session.ts";

/** A token this close to expiry is refreshed before use, whatever the timer did (device slept). */
export const USE_MARGIN_MS = 10_000;
/** After a refresh that failed for a transient reason (network, 5xx), try again after this. */
export const RETRY_REFRESH_MS = 5_000;
/** setTimeout's longest delay (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/** Whether `s` expires within `marginMs` from now. */
export function expiresWithin(s: Session, marginMs: number, now = Date.now()): boolean {
  return s.expires_at * 1000 - now <= marginMs;
}

export class RefreshTimer {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly marginMs: number,
    private readonly onDue: () => void,
  ) {}

  /** The margin for `s`: the configured one, or half the token's lifetime if shorter. */
  margin(s: Session): number {
    return Math.min(this.marginMs, (s.expires_in * 1000) / 2);
  }

  /** Whether `s` should be refreshed now. */
  due(s: Session): boolean {
    return expiresWithin(s, this.margin(s));
  }

  /** Arms the timer for `s`'s refresh time (cancelling any other); clears it for no session. */
  scheduleFor(s: Session | null): void {
    if (s === null) this.clear();
    else this.arm(s.expires_at * 1000 - this.margin(s) - Date.now());
  }

  /** Fires once after `RETRY_REFRESH_MS`. */
  retrySoon(): void {
    this.arm(RETRY_REFRESH_MS);
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(delayMs: number): void {
    this.clear();
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.onDue();
      },
      Math.min(Math.max(0, delayMs), MAX_TIMER_MS),
    );
    // In Node, a pending refresh must not keep the process alive.
    (this.timer as { unref?: () => void }).unref?.();
  }
}
