/**
 * 0001: accounts, devices and the key directory (Server I).
 *
 * TypeORM wants each migration class name to end in a 13-digit timestamp; GChat puts the
 * migration's sequence number there instead, so they run in number order.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATEMENTS = [
  `CREATE TABLE accounts (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    username          text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._-]{3,32}$'),
    password_hash     text        NOT NULL,
    ak_pub            bytea       NOT NULL CHECK (octet_length(ak_pub) = 32),
    -- the device id the next added device must use; ids are never reused within an account
    next_device_id    bigint      NOT NULL DEFAULT 1 CHECK (next_device_id BETWEEN 1 AND 4294967296),
    backup            bytea,
    backup_updated_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE devices (
    account_id  uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id   bigint      NOT NULL CHECK (device_id BETWEEN 1 AND 4294967295),
    ik_pub      bytea       NOT NULL CHECK (octet_length(ik_pub) = 32),
    device_cert bytea       NOT NULL CHECK (octet_length(device_cert) = 64),
    -- SHA-256 of the device token; NULL once the device is removed
    token_hash  bytea       UNIQUE CHECK (octet_length(token_hash) = 32),
    -- the highest prekey id of each kind this device ever uploaded (-1: none); new ids must exceed it
    max_spk_id  bigint      NOT NULL DEFAULT -1,
    max_opk_id  bigint      NOT NULL DEFAULT -1,
    max_pqpk_id bigint      NOT NULL DEFAULT -1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz,
    PRIMARY KEY (account_id, device_id),
    CHECK ((removed_at IS NULL) = (token_hash IS NOT NULL))
  )`,
  `CREATE TABLE signed_prekeys (
    account_id  uuid        NOT NULL,
    device_id   bigint      NOT NULL,
    spk_id      bigint      NOT NULL CHECK (spk_id BETWEEN 0 AND 4294967295),
    pub         bytea       NOT NULL CHECK (octet_length(pub) = 32),
    sig         bytea       NOT NULL CHECK (octet_length(sig) = 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- when a newer SPK replaced this one; deleted 30 days later (SPEC §7)
    replaced_at timestamptz,
    PRIMARY KEY (account_id, device_id, spk_id),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE
  )`,
  `CREATE UNIQUE INDEX signed_prekeys_current ON signed_prekeys (account_id, device_id) WHERE replaced_at IS NULL`,
  `CREATE INDEX signed_prekeys_replaced ON signed_prekeys (replaced_at) WHERE replaced_at IS NOT NULL`,
  `CREATE TABLE one_time_prekeys (
    account_id uuid   NOT NULL,
    device_id  bigint NOT NULL,
    opk_id     bigint NOT NULL CHECK (opk_id BETWEEN 0 AND 4294967294),
    pub        bytea  NOT NULL CHECK (octet_length(pub) = 32),
    PRIMARY KEY (account_id, device_id, opk_id),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE
  )`,
  `CREATE TABLE pq_prekeys (
    account_id  uuid        NOT NULL,
    device_id   bigint      NOT NULL,
    pqpk_id     bigint      NOT NULL CHECK (pqpk_id BETWEEN 0 AND 4294967295),
    pub         bytea       NOT NULL CHECK (octet_length(pub) = 1184),
    sig         bytea       NOT NULL CHECK (octet_length(sig) = 64),
    last_resort boolean     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- last-resort keys only: when a newer one replaced it; deleted 30 days later
    replaced_at timestamptz,
    PRIMARY KEY (account_id, device_id, pqpk_id),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE,
    CHECK (last_resort OR replaced_at IS NULL)
  )`,
  `CREATE UNIQUE INDEX pq_prekeys_last_resort ON pq_prekeys (account_id, device_id) WHERE last_resort AND replaced_at IS NULL`,
  `CREATE INDEX pq_prekeys_replaced ON pq_prekeys (replaced_at) WHERE replaced_at IS NOT NULL`,
];

export class AccountsDevicesKeys0000000000001 implements MigrationInterface {
  readonly name = 'AccountsDevicesKeys0000000000001';

  async up(q: QueryRunner): Promise<void> {
    for (const s of STATEMENTS) await q.query(s);
  }

  async down(): Promise<void> {
    throw new Error('migrations are forward-only');
  }
}
