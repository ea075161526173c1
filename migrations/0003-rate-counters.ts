/**
 * 0003: rate-limit counters shared by every instance (src/server/rate-limit.ts). One row per
 * limiter and key, holding the current fixed window: a hit is one upsert, a window that ended is
 * restarted by the next hit, and rows whose window ended are deleted by a periodic job.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATEMENTS = [
  `CREATE TABLE rate_counters (
    -- "<limiter>:<key>", e.g. "login-ip:192.0.2.7" (long keys are hashed)
    bucket  text    PRIMARY KEY,
    hits    integer NOT NULL CHECK (hits >= 0),
    -- ms since the epoch, from the server clock: when the current window ends
    ends_at bigint  NOT NULL
  )`,
  `CREATE INDEX rate_counters_ends ON rate_counters (ends_at)`,
];

export class RateCounters0000000000003 implements MigrationInterface {
  readonly name = 'RateCounters0000000000003';

  async up(q: QueryRunner): Promise<void> {
    for (const s of STATEMENTS) await q.query(s);
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
