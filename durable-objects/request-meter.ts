/**
 * A project's request meter: the per-project rate limit (a token bucket, enforced in the
 * project's Durable Object, so one count per project whatever isolate or colo the requests
 * came through) and the request figures `GET {url}/admin/v1/stats` reports. Held in memory:
 * an evicted or frozen object starts a full bucket and new counts (docs/operations.md).
 */
import { HearthError } from "../shared/errors.ts";

export interface RateLimit {
  /** requests per second refilled; 0 turns the limit off */
  perSecond: number;
  /** the bucket's size: how many requests may arrive at once */
  burst: number;
}

/** `HEARTH_PROJECT_RATE_LIMIT` (per second, default 0: off) and `HEARTH_PROJECT_RATE_BURST` (default 2 × the rate). */
export function readRateLimit(env: {
  HEARTH_PROJECT_RATE_LIMIT?: string;
  HEARTH_PROJECT_RATE_BURST?: string;
}): RateLimit {
  const number = (v: string | undefined) => {
    const n = Number(v);
    return v !== undefined && v.trim() !== "" && Number.isFinite(n) && n >= 0 ? n : null;
  };
  const perSecond = number(env.HEARTH_PROJECT_RATE_LIMIT) ?? 0;
  const burst = number(env.HEARTH_PROJECT_RATE_BURST) ?? perSecond * 2;
  return { perSecond, burst: Math.max(1, burst) };
}

export interface RequestFigures {
  /** when these counts started (the object's start or wake) */
  since: string;
  total: number;
  /** refused with 429 HEARTH_RATE_LIMITED */
  limited: number;
  byStatus: { "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  limit: RateLimit;
}

export class RequestMeter {
  private tokens: number;
  private refilledAt: number;
  private readonly since = new Date().toISOString();
  private total = 0;
  private limited = 0;
  private readonly byStatus = { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 };

  private current: RateLimit;

  constructor(
    limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    this.current = limit;
    this.tokens = limit.burst;
    this.refilledAt = now();
  }

  get limit(): RateLimit {
    return this.current;
  }

  /** A new limit starts with a full bucket. */
  set limit(limit: RateLimit) {
    this.current = limit;
    this.tokens = limit.burst;
    this.refilledAt = this.now();
  }

  /** Takes one token, or throws 429 HEARTH_RATE_LIMITED with the seconds until one is back. */
  admit(): void {
    this.total++;
    const { perSecond, burst } = this.limit;
    if (perSecond <= 0) return;
    const now = this.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * perSecond);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return;
    }
    this.limited++;
    throw new RateLimitedError(perSecond, Math.max(1, Math.ceil((1 - this.tokens) / perSecond)));
  }

  /** Counts an answer by its status class. */
  answered(status: number): void {
    const cls = status >= 500 ? "5xx" : status >= 400 ? "4xx" : status >= 300 ? "3xx" : "2xx";
    this.byStatus[cls]++;
  }

  figures(): RequestFigures {
    return {
      since: this.since,
      total: this.total,
      limited: this.limited,
      byStatus: { ...this.byStatus },
      limit: this.limit,
    };
  }
}

/** 429 with the `retry-after` the answer carries. */
export class RateLimitedError extends HearthError {
  constructor(
    perSecond: number,
    readonly retryAfterSeconds: number,
  ) {
    super("HEARTH_RATE_LIMITED", `Too many requests for this project: its limit is ${perSecond} per second`, {
      details: `Retry in ${retryAfterSeconds} s; the limit counts every request to the project, whoever sends it.`,
      hint: "Spread the requests out, batch writes (bulk inserts, upserts), or ask the operator for a higher HEARTH_PROJECT_RATE_LIMIT.",
    });
  }
}
