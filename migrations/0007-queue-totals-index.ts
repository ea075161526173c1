/**
 * 0007: an index over the per-device total rows of delivery_queue_usage (sender ALL_SENDERS,
 * migration 0006), so the queue gauge of /metrics sums one row per device through an index
 * instead of counting every waiting envelope. Its columns and predicate are never updated, so the
 * counters' updates stay HOT.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Must equal ALL_SENDERS in src/server/delivery/queue-repository.ts. */
const ALL_SENDERS = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

export class QueueTotalsIndex0000000000007 implements MigrationInterface {
  readonly name = 'QueueTotalsIndex0000000000007';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX delivery_queue_usage_totals ON delivery_queue_usage (account_id, device_id) WHERE sender_account = '${ALL_SENDERS}'::uuid`,
    );
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
