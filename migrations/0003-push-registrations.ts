/**
 * 0003: push registrations (one per device and kind) and the server's own key pairs (the VAPID
 * keys, generated at first start and shared by every instance on this database).
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATEMENTS = [
  `CREATE TABLE push_registrations (
    account_id   uuid        NOT NULL,
    device_id    bigint      NOT NULL,
    -- webpush: a browser's subscription; apns / apns-voip: an iOS token (regular / PushKit);
    -- fcm: an Android registration token
    kind         text        NOT NULL CHECK (kind IN ('webpush', 'apns', 'apns-voip', 'fcm')),
    -- the Web Push endpoint URL, or the APNs / FCM token
    address      text        NOT NULL CHECK (length(address) BETWEEN 1 AND 4096),
    -- webpush only: the subscription's P-256 public key and auth secret (base64url)
    p256dh       text,
    auth         text,
    -- apns only: the app's bundle id (the APNs topic)
    bundle       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- ms since the epoch of the last non-urgent wake-up sent (coalescing, across instances)
    last_push_ms bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, device_id, kind),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE,
    CHECK ((kind = 'webpush') = (p256dh IS NOT NULL AND auth IS NOT NULL)),
    CHECK ((kind IN ('apns', 'apns-voip')) = (bundle IS NOT NULL))
  )`,
  `CREATE TABLE server_keys (
    name       text        PRIMARY KEY,
    -- JSON; never sent to a client except the public half
    value      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
];

export class PushRegistrations0000000000003 implements MigrationInterface {
  readonly name = 'PushRegistrations0000000000003';

  async up(q: QueryRunner): Promise<void> {
    for (const s of STATEMENTS) await q.query(s);
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
