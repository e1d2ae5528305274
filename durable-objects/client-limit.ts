/**
 * The per-client request rate limit of a project: one token bucket per client inside the
 * project's Durable Object, checked before the project's own limit (request-meter.ts), so one
 * client over its share is refused without spending the project's budget.
 *
 * The client is who a request acts for: an account (its access token), an app for one user
 * (the grant), an anonymous caller (the anon key) by its IP (`cf-connecting-ip`, set by
 * Cloudflare). The service key is the project's own backend: only the project limit applies
 * to it. Held in memory like the project's meter: an evicted object starts with full buckets.
 */
import { HearthError } from "../shared/errors.ts";
import type { Principal } from "../shared/principal.ts";
import { type RateLimit, readRateLimit } from "./request-meter.ts";
import type { StorageCaller } from "./storage/types.ts";

/** Clients tracked at most; past it, full buckets are forgotten first (forgetting one only refills it). */
const MAX_CLIENTS = 10_000;

/** `HEARTH_CLIENT_RATE_LIMIT` (per second, default 0: off) and `HEARTH_CLIENT_RATE_BURST` (default 2 × the rate). */
export function readClientRateLimit(env: {
  HEARTH_CLIENT_RATE_LIMIT?: string;
  HEARTH_CLIENT_RATE_BURST?: string;
}): RateLimit {
  // the same parsing as the project's limit, read from the client's variables
  const { HEARTH_CLIENT_RATE_LIMIT: rate, HEARTH_CLIENT_RATE_BURST: burst } = env;
  return readRateLimit({
    ...(rate === undefined ? {} : { HEARTH_PROJECT_RATE_LIMIT: rate }),
    ...(burst === undefined ? {} : { HEARTH_PROJECT_RATE_BURST: burst }),
  });
}

/** The client a request is counted against, or null for the service key (not limited per client). */
export function clientOf(principal: Principal, headers: Headers): string | null {
  return clientKey(principal, headers.get("cf-connecting-ip"));
}

/**
 * The client of a storage call: as `clientOf` for a token; a public or signed URL is
 * anonymous, counted by its IP.
 */
export function storageClientOf(caller: StorageCaller): string | null {
  if (caller.kind === "principal") return clientKey(caller.principal, caller.ip ?? null);
  return `ip:${caller.ip ?? "unknown"}`;
}

function clientKey(principal: Principal, ip: string | null): string | null {
  switch (principal.role) {
    case "service":
      return null;
    case "authenticated":
      return `user:${principal.userId}`;
    case "app":
      return `grant:${principal.grantId}`;
    case "anon":
      return `ip:${ip ?? "unknown"}`;
  }
}

export interface ClientFigures {
  limit: RateLimit;
  /** clients with a bucket now */
  tracked: number;
  /** requests refused by the per-client limit since the object started */
  limited: number;
}

export class ClientLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private current: RateLimit;
  private limited = 0;

  constructor(
    limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    this.current = limit;
  }

  get limit(): RateLimit {
    return this.current;
  }

  /** A new limit starts every client with a full bucket. */
  set limit(limit: RateLimit) {
    this.current = limit;
    this.buckets.clear();
  }

  /** Takes one of `client`'s tokens, or throws 429 HEARTH_RATE_LIMITED with the seconds until one is back. */
  admit(client: string | null): void {
    const { perSecond, burst } = this.current;
    if (perSecond <= 0 || client === null) return;
    const now = this.now();
    let b = this.buckets.get(client);
    if (b) {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
      b.at = now;
    } else {
      if (this.buckets.size >= MAX_CLIENTS) this.forgetFull(now);
      b = { tokens: burst, at: now };
      this.buckets.set(client, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    this.limited++;
    throw new ClientRateLimitedError(perSecond, Math.max(1, Math.ceil((1 - b.tokens) / perSecond)));
  }

  figures(): ClientFigures {
    return { limit: this.current, tracked: this.buckets.size, limited: this.limited };
  }

  private forgetFull(now: number): void {
    const { perSecond, burst } = this.current;
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) this.buckets.delete(k);
    }
    // Still full of busy clients: the oldest goes (it comes back with a full bucket).
    if (this.buckets.size >= MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

/** 429 with the `retry-after` the answer carries (errorResponse reads `retryAfterSeconds`). */
export class ClientRateLimitedError extends HearthError {
  constructor(
    perSecond: number,
    readonly retryAfterSeconds: number,
  ) {
    super("HEARTH_RATE_LIMITED", `Too many requests from this client: its limit is ${perSecond} per second`, {
      details: `Retry in ${retryAfterSeconds} s; each user, app grant or anonymous IP has its own share of the project's requests.`,
      hint: "Spread the requests out, batch writes (bulk inserts, upserts), or ask the operator for a higher HEARTH_CLIENT_RATE_LIMIT.",
    });
  }
}
