/**
 * 0002: the delivery model (Server II): per-device queues of sealed envelopes and the send
 * dedup table. No foreign keys to devices: removed devices keep their row (0001), and their
 * queues are deleted by the delivery GC; a key lock per queued envelope would cost more than it
 * protects.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATEMENTS = [
  // Ids only grow (no cache: instances draw from one sequence), so id order is arrival order.
  `CREATE SEQUENCE delivery_envelope_id_seq AS bigint`,
  `CREATE TABLE delivery_envelopes (
    id            bigint   PRIMARY KEY DEFAULT nextval('delivery_envelope_id_seq'),
    -- the recipient device (devices.account_id, devices.device_id)
    account_id    uuid     NOT NULL,
    device_id     bigint   NOT NULL,
    message_id    uuid     NOT NULL,
    -- the sender's username and device id, as the envelope shows them
    sender        text     NOT NULL,
    sender_device bigint   NOT NULL,
    type          smallint NOT NULL CHECK (type BETWEEN 0 AND 255),
    -- the sealed bytes, base64url as the client sent them (the server never decodes them)
    body          text     NOT NULL,
    -- ms since the epoch, from the server's clock when the send was accepted
    server_ts     bigint   NOT NULL
  )`,
  `ALTER SEQUENCE delivery_envelope_id_seq OWNED BY delivery_envelopes.id`,
  `CREATE INDEX delivery_envelopes_queue ON delivery_envelopes (account_id, device_id, id)`,
  `CREATE TABLE delivery_sends (
    sender_account uuid   NOT NULL,
    sender_device  bigint NOT NULL,
    message_id     uuid   NOT NULL,
    -- SHA-256 over the recipient and every copy: a retry must carry the same
    content_hash   bytea  NOT NULL CHECK (octet_length(content_hash) = 32),
    -- the 200 answer, returned again to a retry
    answer         text   NOT NULL,
    -- ms since the epoch; the entry lives as long as the envelopes could
    expires_at     bigint NOT NULL,
    PRIMARY KEY (sender_account, sender_device, message_id)
  )`,
  `CREATE INDEX delivery_sends_expiry ON delivery_sends (expires_at)`,
];

export class DeliveryQueues0000000000002 implements MigrationInterface {
  readonly name = 'DeliveryQueues0000000000002';

  async up(q: QueryRunner): Promise<void> {
    for (const s of STATEMENTS) await q.query(s);
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
