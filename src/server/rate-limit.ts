/**
 * Fixed-window request counters, in memory. Each server instance counts on its own: behind a load
 * balancer with N instances a client gets up to N times the limit (a documented limitation; a
 * shared store would be the fix). Each limiter remembers at most `maxKeys` keys.
 */
import type { RateLimit, RateLimits } from './config.js';
import { ApiError } from './errors.js';

interface Window {
  start: number;
  count: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly name: string,
    private readonly limit: RateLimit,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request for `key`; throws 429 rate_limited when the window is full. */
  hit(key: string): void {
    const now = this.now();
    const span = this.limit.windowSeconds * 1000;
    let w = this.windows.get(key);
    if (!w || now - w.start >= span) {
      if (w) this.windows.delete(key);
      w = { start: now, count: 0 };
      this.evict(now, span);
      this.windows.set(key, w);
    }
    if (w.count >= this.limit.count) {
      const retry = Math.max(1, Math.ceil((w.start + span - now) / 1000));
      throw new ApiError('rate_limited', `too many ${this.name} requests; retry in ${retry} s`, retry);
    }
    w.count++;
  }

  get size(): number {
    return this.windows.size;
  }

  /** Keeps the map under maxKeys: expired windows first, then the oldest (insertion order). */
  private evict(now: number, span: number): void {
    if (this.windows.size < this.maxKeys) return;
    for (const [k, w] of this.windows) if (now - w.start >= span) this.windows.delete(k);
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break;
      this.windows.delete(k);
    }
  }
}

export interface RateLimiters {
  readonly registerPerIp: RateLimiter;
  readonly loginPerIp: RateLimiter;
  readonly loginPerAccount: RateLimiter;
  readonly bundlesPerIp: RateLimiter;
  readonly bundlesPerAccount: RateLimiter;
  readonly lookupsPerIp: RateLimiter;
}

export function createRateLimiters(r: RateLimits, now: () => number = Date.now): RateLimiters {
  const make = (name: string, l: RateLimit) => new RateLimiter(name, l, r.maxKeys, now);
  return {
    registerPerIp: make('registration', r.registerPerIp),
    loginPerIp: make('password', r.loginPerIp),
    loginPerAccount: make('password', r.loginPerAccount),
    bundlesPerIp: make('bundle', r.bundlesPerIp),
    bundlesPerAccount: make('bundle', r.bundlesPerAccount),
    lookupsPerIp: make('lookup', r.lookupsPerIp),
  };
}
