/** The rate limiter on its database counters (rate_counters), on PGlite and PostgreSQL. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiError } from '../../src/server/errors.js';
import { bucketOf, collectRateCounters, RateLimiter } from '../../src/server/rate-limit.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';

async function refusal(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

await describeEachDatabase('rate limiter', (kind) => {
  let t: TestDatabase;
  let now = 1_000_000;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('allows count requests per window and key, then 429 with the seconds left; a new window starts after', async () => {
    const l = new RateLimiter('t1', 'test', { count: 2, windowSeconds: 10 }, t.db, () => now);
    await l.hit('a');
    await l.hit('a');
    await l.hit('b');
    now += 4000;
    const err = await refusal(l.hit('a'));
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limited');
    expect(err.retryAfterSeconds).toBe(6);
    now += 6000;
    await l.hit('a');
    await l.hit('a');
    expect((await refusal(l.hit('a'))).status).toBe(429);
  });

  it('counts concurrent hits exactly once each', async () => {
    const l = new RateLimiter('t2', 'test', { count: 25, windowSeconds: 60 }, t.db, () => now);
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => l.hit('k')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(25);
  });

  it('hashes keys that are long or not plain ASCII into a bounded bucket', async () => {
    const long = 'x'.repeat(20_000);
    expect(bucketOf('p', long).length).toBeLessThan(64);
    expect(bucketOf('p', 'a\u0000b')).not.toContain('\u0000');
    expect(bucketOf('p', '192.0.2.1')).toBe('p:192.0.2.1');
    const l = new RateLimiter('t3', 'test', { count: 1, windowSeconds: 60 }, t.db, () => now);
    await l.hit(long);
    expect((await refusal(l.hit(long))).status).toBe(429);
  });

  it('deletes the counters of ended windows and only those', async () => {
    const l = new RateLimiter('t4', 'test', { count: 5, windowSeconds: 1 }, t.db, () => now);
    for (let i = 0; i < 30; i++) await l.hit(`gc${i}`);
    const live = new RateLimiter('t5', 'test', { count: 5, windowSeconds: 3600 }, t.db, () => now);
    await live.hit('stays');
    now += 2000;
    expect(await collectRateCounters(t.db, now)).toBeGreaterThanOrEqual(30);
    const left = await t.db.query<{ bucket: string }>(`SELECT bucket FROM rate_counters WHERE bucket LIKE 't4:%' OR bucket LIKE 't5:%'`);
    expect(left.rows.map((r) => r.bucket)).toEqual(['t5:stays']);
  });
});
