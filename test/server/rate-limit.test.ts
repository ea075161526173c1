import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/server/errors.js';
import { RateLimiter } from '../../src/server/rate-limit.js';

describe('rate limiter', () => {
  it('allows count requests per window and key, then 429 with the seconds left', () => {
    let now = 0;
    const l = new RateLimiter('test', { count: 2, windowSeconds: 10 }, 100, () => now);
    l.hit('a');
    l.hit('a');
    l.hit('b');
    now = 4000;
    let err: unknown;
    try {
      l.hit('a');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);
    expect((err as ApiError).retryAfterSeconds).toBe(6);
    now = 10_000;
    expect(() => l.hit('a')).not.toThrow();
  });

  it('remembers at most maxKeys keys', () => {
    let now = 0;
    const l = new RateLimiter('test', { count: 1, windowSeconds: 60 }, 100, () => now);
    for (let i = 0; i < 1000; i++) {
      now = i;
      l.hit(`k${i}`);
    }
    expect(l.size).toBeLessThanOrEqual(100);
    // The newest keys are still counted.
    expect(() => l.hit('k999')).toThrow();
  });
});
