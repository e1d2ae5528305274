/**
 * Fixed-window rate limits stored in D1 (`rate_limits`): one row per key, counted with one
 * upsert that restarts the count when a new window begins. D1 is the one store every isolate
 * of the gateway shares, so a limit holds across isolates and locations; the cost is one
 * batched write per limited request (sign-in, OTP, verify, signup), which only those
 * endpoints pay.
 */
import { lt, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { rateLimits } from "../catalog/schema.ts";
import { AuthError } from "./gotrue.ts";

const WINDOW_MS = 60_000;

/** Requests per minute: per email address and per client IP. */
export const LIMITS = {
  signin: { email: 10, ip: 30 },
  otp: { email: 10, ip: 30 },
  verify: { email: 10, ip: 30 },
  signup: { email: 10, ip: 30 },
} as const;
export type LimitedAction = keyof typeof LIMITS;

/**
 * Counts one request of `action` for `email` (when known) and `ip`; throws 429
 * `over_request_rate_limit` with `retry-after` when either is over its limit this window.
 * Every attempt counts, refused ones included, so hammering does not reopen a window early.
 */
export async function checkRateLimit(
  db: D1Database,
  action: LimitedAction,
  subject: { email?: string; ip: string },
): Promise<void> {
  const orm = drizzle(db);
  const now = Date.now();
  const windowStart = now - (now % WINDOW_MS);
  const checks: { key: string; limit: number }[] = [
    { key: `${action}:ip:${subject.ip}`, limit: LIMITS[action].ip },
  ];
  if (subject.email !== undefined) {
    checks.push({ key: `${action}:email:${subject.email}`, limit: LIMITS[action].email });
  }
  const bump = (key: string) =>
    orm
      .insert(rateLimits)
      .values({ key, windowStart, count: 1 })
      .onConflictDoUpdate({
        target: rateLimits.key,
        // SQLite evaluates every SET expression against the old row, so both see the old window.
        set: {
          count: sql`CASE WHEN ${rateLimits.windowStart} = excluded.window_start THEN ${rateLimits.count} + 1 ELSE 1 END`,
          windowStart: sql`excluded.window_start`,
        },
      })
      .returning({ count: rateLimits.count });
  const [first, ...rest] = checks.map((c) => bump(c.key));
  const results = await orm.batch([first!, ...rest]);
  // Old windows are dead weight: sweep them now and then instead of on every request.
  if (Math.random() < 0.01) {
    await orm.delete(rateLimits).where(lt(rateLimits.windowStart, windowStart - WINDOW_MS));
  }
  const over = checks.some((c, i) => (results[i]?.[0]?.count ?? 0) > c.limit);
  if (over) {
    const retryAfter = Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / 1000));
    throw new AuthError(
      "over_request_rate_limit",
      `Request rate limit reached: try again in ${retryAfter} seconds`,
      {},
      { "retry-after": String(retryAfter) },
    );
  }
}
