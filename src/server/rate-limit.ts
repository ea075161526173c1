/**
 * Rate limits, counted in the database (rate_counters, migration 0003) so that every instance on
 * one PostgreSQL shares one budget: N instances behind a load balancer do not give a client N
 * times the limit. PostgreSQL rather than Redis because every deployment already runs the one
 * PostgreSQL all instances share (and backs it up); PGlite runs the same SQL for one instance.
 * Each check is one autocommitted upsert; ended windows are deleted by a periodic job.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { RateLimit, RateLimits } from './config.js';
import { deleteEndedCounters, hitCounters, type Queryable } from './data/rate-counters.js';
import type { Database } from './db.js';
import { ApiError, loggableError } from './errors.js';
import { PasswordGuard } from './password-guard.js';

/** A bucket name for a limiter and a key; keys that are long or not plain ASCII are hashed. */
export function bucketOf(limiter: string, key: string): string {
  const plain = key.length <= 128 && /^[\x21-\x7e]*$/.test(key);
  return `${limiter}:${plain ? key : `sha256=${createHash('sha256').update(key, 'utf8').digest('base64url')}`}`;
}

/** Seconds until `endsAt`, at least 1 (for Retry-After). */
export function retryAfter(endsAt: number, now: number): number {
  return Math.max(1, Math.ceil((endsAt - now) / 1000));
}

export class RateLimiter {
  constructor(
    /** Bucket prefix, e.g. "login-ip". */
    readonly id: string,
    /** What is limited, for the error message, e.g. "password". */
    readonly what: string,
    readonly limit: RateLimit,
    private readonly db: Queryable,
    private readonly now: () => number,
  ) {}

  /** Counts one request for `key`; throws 429 rate_limited when its window is full. */
  async hit(key: string): Promise<void> {
    const now = this.now();
    const bucket = bucketOf(this.id, key);
    const s = (await hitCounters(this.db, [{ bucket, windowMs: this.limit.windowSeconds * 1000 }], now)).get(bucket);
    if (s && s.hits > this.limit.count) {
      const retry = retryAfter(s.endsAt, now);
      throw new ApiError('rate_limited', `too many ${this.what} requests; retry in ${retry} s`, retry);
    }
  }
}

export interface RateLimiters {
  readonly registerPerIp: RateLimiter;
  /** Every password check, per client address. */
  readonly loginPerIp: RateLimiter;
  /** Wrong passwords per (account, address) and per account. */
  readonly passwords: PasswordGuard;
  readonly bundlesPerIp: RateLimiter;
  readonly bundlesPerAccount: RateLimiter;
  readonly lookupsPerIp: RateLimiter;
  /** Bundles with one-time keys one requesting account may take from one device per window (services/prekeys.ts). */
  readonly oneTimePrekeyClaims: RateLimit;
}

export function createRateLimiters(r: RateLimits, db: Database, now: () => number = Date.now): RateLimiters {
  const make = (id: string, what: string, l: RateLimit) => new RateLimiter(id, what, l, db, now);
  return {
    registerPerIp: make('register-ip', 'registration', r.registerPerIp),
    loginPerIp: make('login-ip', 'password', r.loginPerIp),
    passwords: new PasswordGuard({ perAccountAddress: r.loginPerAccountIp, perAccount: r.loginPerAccount }, db, now),
    bundlesPerIp: make('bundles-ip', 'bundle', r.bundlesPerIp),
    bundlesPerAccount: make('bundles-account', 'bundle', r.bundlesPerAccount),
    lookupsPerIp: make('lookup-ip', 'lookup', r.lookupsPerIp),
    oneTimePrekeyClaims: r.oneTimePrekeyClaims,
  };
}

/** Rows one GC statement deletes at most. */
const GC_BATCH = 5000;
/** Statements one GC run issues at most (then it waits for the next run). */
const GC_MAX_BATCHES = 20;

/** Deletes counters whose window has ended; answers how many. */
export async function collectRateCounters(db: Queryable, now: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < GC_MAX_BATCHES; i++) {
    const n = await deleteEndedCounters(db, now, GC_BATCH);
    total += n;
    if (n < GC_BATCH) break;
  }
  return total;
}

/** Runs the counter GC every `intervalMs` on this instance; the returned function stops it. */
export function scheduleRateCounterGc(deps: { db: Database; clock: () => Date; log: Logger }, intervalMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    collectRateCounters(deps.db, deps.clock().getTime())
      .catch((err: unknown) => deps.log.error({ error: loggableError(err) }, 'rate counter GC failed'))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
