/**
 * 0004: what each sender holds in each device's queue, so a send can check a sender's share and
 * the device's byte cap with an index lookup instead of a scan. delivery_envelopes learns its
 * sender's account; delivery_queue_usage keeps, per (recipient device, sender account), the
 * envelopes and decoded body bytes waiting. Every statement that queues or deletes envelopes
 * updates it in the same statement (src/server/delivery/queue-repository.ts).
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATEMENTS = [
  `ALTER TABLE delivery_envelopes ADD COLUMN sender_account uuid`,
  `UPDATE delivery_envelopes e SET sender_account = a.id FROM accounts a WHERE a.username = e.sender`,
  // (Cannot happen: every sender is an account. Kept countable under one nil sender rather than lost.)
  `UPDATE delivery_envelopes SET sender_account = '00000000-0000-0000-0000-000000000000' WHERE sender_account IS NULL`,
  `ALTER TABLE delivery_envelopes ALTER COLUMN sender_account SET NOT NULL`,
  `CREATE TABLE delivery_queue_usage (
    -- the recipient device
    account_id     uuid   NOT NULL,
    device_id      bigint NOT NULL,
    sender_account uuid   NOT NULL,
    envelopes      bigint NOT NULL,
    -- decoded body bytes: octet_length(body) * 3 / 4 of each base64url body
    bytes          bigint NOT NULL,
    PRIMARY KEY (account_id, device_id, sender_account)
  )`,
  `INSERT INTO delivery_queue_usage (account_id, device_id, sender_account, envelopes, bytes)
   SELECT account_id, device_id, sender_account, count(*), sum(octet_length(body) * 3 / 4)
     FROM delivery_envelopes GROUP BY account_id, device_id, sender_account`,
];

export class QueueUsage0000000000004 implements MigrationInterface {
  readonly name = 'QueueUsage0000000000004';

  async up(q: QueryRunner): Promise<void> {
    for (const s of STATEMENTS) await q.query(s);
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
