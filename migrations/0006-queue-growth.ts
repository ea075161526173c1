/**
 * 0006: delivery costs that do not grow with the data (issue 13).
 * - delivery_removed_queues: the removed devices whose queue GC has yet to collect, filled in
 *   the removal's transaction and emptied by GC, so the orphan step looks at this small table
 *   instead of joining every envelope with devices.
 * - per-device totals: one more delivery_queue_usage row per device, under the sender
 *   ALL_SENDERS (a UUID no account can have: gen_random_uuid() makes version 4), kept in the same
 *   upsert as the per-sender rows, so a send reads one row per device instead of summing one per
 *   sender, and both kinds of counter are locked in one key order.
 * - autovacuum settings of their own for the delivery tables: they are rewritten continuously
 *   (every envelope is inserted and deleted, every counter updated per send and ack), far from the
 *   default 20%-of-the-table trigger; the counters get free space on each page so that their
 *   updates stay HOT (no index entry per update).
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Must equal ALL_SENDERS in src/server/delivery/queue-repository.ts. */
const ALL_SENDERS = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/** Vacuum after ~1% of a churning table changed (at least 1,000 rows), and let it work faster. */
const CHURN = `autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_insert_threshold = 1000,
  autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_limit = 2000`;

const STATEMENTS = [
  `CREATE TABLE delivery_removed_queues (
    account_id uuid   NOT NULL,
    device_id  bigint NOT NULL,
    -- ms since the epoch; the entry stays while the queue has envelopes, and for a grace period
    -- after (a send that read the device list before the removal may still be writing)
    removed_at bigint NOT NULL,
    PRIMARY KEY (account_id, device_id)
  )`,
  `INSERT INTO delivery_removed_queues (account_id, device_id, removed_at)
   SELECT d.account_id, d.device_id, (extract(epoch FROM d.removed_at) * 1000)::bigint FROM devices d
    WHERE d.removed_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM delivery_envelopes e WHERE e.account_id = d.account_id AND e.device_id = d.device_id)`,
  `INSERT INTO delivery_queue_usage (account_id, device_id, sender_account, envelopes, bytes)
   SELECT account_id, device_id, '${ALL_SENDERS}'::uuid, sum(envelopes), sum(bytes) FROM delivery_queue_usage
    GROUP BY account_id, device_id
   ON CONFLICT DO NOTHING`,
  `ALTER TABLE delivery_envelopes SET (${CHURN})`,
  `ALTER TABLE delivery_sends SET (${CHURN})`,
  `ALTER TABLE delivery_queue_usage SET (fillfactor = 50, ${CHURN})`,
  `ALTER TABLE delivery_removed_queues SET (${CHURN})`,
];

export class QueueGrowth0000000000006 implements MigrationInterface {
  readonly name = 'QueueGrowth0000000000006';

  async up(q: QueryRunner): Promise<void> {
    for (const s of STATEMENTS) await q.query(s);
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
