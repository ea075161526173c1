/**
 * The only SQL of the delivery model: per-device queues (delivery_envelopes) and the send
 * dedup table (delivery_sends). Every statement works on a whole batch through unnest(), so a
 * group commit costs a fixed number of round trips however many sends it carries.
 *
 * A device is named by its row id in the devices table (`DeviceRef`, a decimal string here).
 */
import type { SqlClient, SqlDatabase } from './sql.js';
import type { Envelope } from './schemas.js';

/** The row id of a device in the devices table, as a string; opaque to everything but SQL. */
export type DeviceRef = string & { readonly __deviceRef: unique symbol };
export const asDeviceRef = (s: string): DeviceRef => s as DeviceRef;

/** SQL type of devices.id (see migrations/0001). */
const REF = 'bigint';

export interface StoredSend {
  readonly senderDevice: DeviceRef;
  readonly messageId: string;
  readonly contentHash: Buffer;
  readonly answer: unknown;
}

export interface NewSend {
  readonly senderDevice: DeviceRef;
  readonly messageId: string;
  readonly contentHash: Buffer;
  readonly answer: unknown;
  readonly expiresAt: number;
}

export interface NewEnvelope {
  readonly id: string;
  readonly device: DeviceRef;
  readonly messageId: string;
  readonly sender: string;
  readonly senderDevice: number;
  readonly type: number;
  readonly body: string;
  readonly serverTs: number;
}

interface EnvelopeRow {
  id: string;
  message_id: string;
  sender: string;
  sender_device: string | number;
  type: number;
  body: string;
  server_ts: string | number;
}

export function envelopeOf(r: NewEnvelope): Envelope {
  return {
    id: r.id,
    message_id: r.messageId,
    sender: r.sender,
    sender_device: r.senderDevice,
    type: r.type,
    body: r.body,
    server_ts: r.serverTs,
  };
}

function rowToEnvelope(r: EnvelopeRow): Envelope {
  return {
    id: String(r.id),
    message_id: r.message_id,
    sender: r.sender,
    sender_device: Number(r.sender_device),
    type: Number(r.type),
    body: r.body,
    server_ts: Number(r.server_ts),
  };
}

export class QueueRepository {
  constructor(readonly db: SqlDatabase) {}

  /** Dedup entries for these (sender device, message_id) keys that have not expired at `now`. */
  async findSends(
    tx: SqlClient,
    keys: readonly { senderDevice: DeviceRef; messageId: string }[],
    now: number,
  ): Promise<StoredSend[]> {
    if (keys.length === 0) return [];
    const rows = await tx.query<{ sender_device: string; message_id: string; content_hash: Buffer | Uint8Array; answer: unknown }>(
      `SELECT s.sender_device::text AS sender_device, s.message_id::text AS message_id, s.content_hash, s.answer
         FROM delivery_sends s
         JOIN unnest($1::${REF}[], $2::uuid[]) AS k(dev, mid) ON s.sender_device = k.dev AND s.message_id = k.mid
        WHERE s.expires_at > $3`,
      [keys.map((k) => k.senderDevice), keys.map((k) => k.messageId), now],
    );
    return rows.map((r) => ({
      senderDevice: asDeviceRef(r.sender_device),
      messageId: r.message_id,
      contentHash: Buffer.from(r.content_hash),
      answer: typeof r.answer === 'string' ? (JSON.parse(r.answer) as unknown) : r.answer,
    }));
  }

  /**
   * How many envelopes wait in each device's queue, counting at most `cap` (the query stops
   * there, so a full queue costs at most `cap` index entries).
   */
  async queueLengths(tx: SqlClient, devices: readonly DeviceRef[], cap: number): Promise<Map<DeviceRef, number>> {
    const out = new Map<DeviceRef, number>();
    if (devices.length === 0) return out;
    const rows = await tx.query<{ dev: string; n: string | number }>(
      `SELECT d.dev::text AS dev,
              (SELECT count(*) FROM (SELECT 1 FROM delivery_envelopes e WHERE e.device_id = d.dev LIMIT $2) x) AS n
         FROM unnest($1::${REF}[]) AS d(dev)`,
      [devices, cap],
    );
    for (const r of rows) out.set(asDeviceRef(r.dev), Number(r.n));
    return out;
  }

  /** `n` fresh envelope ids, ascending. */
  async allocateIds(tx: SqlClient, n: number): Promise<string[]> {
    if (n === 0) return [];
    const rows = await tx.query<{ id: string }>(
      `SELECT nextval('delivery_envelope_id_seq')::text AS id FROM generate_series(1, $1::int) ORDER BY 1`,
      [n],
    );
    // generate_series + nextval yields ascending values; sort numerically to be sure.
    return rows.map((r) => r.id).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
  }

  /**
   * Records dedup entries; an existing entry wins unless it has expired. Answers the keys that
   * were written: a key missing from the answer belongs to a concurrent send that committed first.
   */
  async insertSends(tx: SqlClient, sends: readonly NewSend[], now: number): Promise<Set<string>> {
    const won = new Set<string>();
    if (sends.length === 0) return won;
    const rows = await tx.query<{ sender_device: string; message_id: string }>(
      `INSERT INTO delivery_sends (sender_device, message_id, content_hash, answer, expires_at)
       SELECT dev, mid, decode(h, 'hex'), a::jsonb, x
         FROM unnest($1::${REF}[], $2::uuid[], $3::text[], $4::text[], $5::bigint[]) AS n(dev, mid, h, a, x)
       ON CONFLICT (sender_device, message_id) DO UPDATE
         SET content_hash = EXCLUDED.content_hash, answer = EXCLUDED.answer, expires_at = EXCLUDED.expires_at
         WHERE delivery_sends.expires_at <= $6
       RETURNING sender_device::text AS sender_device, message_id::text AS message_id`,
      [
        sends.map((s) => s.senderDevice),
        sends.map((s) => s.messageId),
        sends.map((s) => s.contentHash.toString('hex')),
        sends.map((s) => JSON.stringify(s.answer)),
        sends.map((s) => s.expiresAt),
        now,
      ],
    );
    for (const r of rows) won.add(sendKey(asDeviceRef(r.sender_device), r.message_id));
    return won;
  }

  async insertEnvelopes(tx: SqlClient, envs: readonly NewEnvelope[]): Promise<void> {
    if (envs.length === 0) return;
    await tx.query(
      `INSERT INTO delivery_envelopes (id, device_id, message_id, sender, sender_device, type, body, server_ts)
       SELECT * FROM unnest($1::bigint[], $2::${REF}[], $3::uuid[], $4::text[], $5::bigint[], $6::smallint[], $7::text[], $8::bigint[])`,
      [
        envs.map((e) => e.id),
        envs.map((e) => e.device),
        envs.map((e) => e.messageId),
        envs.map((e) => e.sender),
        envs.map((e) => e.senderDevice),
        envs.map((e) => e.type),
        envs.map((e) => e.body),
        envs.map((e) => e.serverTs),
      ],
    );
  }

  /** A device's queue in id order, skipping ids the caller already holds. */
  async fetch(device: DeviceRef, exclude: readonly string[], limit: number): Promise<Envelope[]> {
    const rows = await this.db.query<EnvelopeRow>(
      exclude.length === 0
        ? `SELECT id::text AS id, message_id::text AS message_id, sender, sender_device, type, body, server_ts
             FROM delivery_envelopes WHERE device_id = $1 ORDER BY id LIMIT $2`
        : `SELECT id::text AS id, message_id::text AS message_id, sender, sender_device, type, body, server_ts
             FROM delivery_envelopes WHERE device_id = $1 AND NOT (id = ANY($3::bigint[])) ORDER BY id LIMIT $2`,
      exclude.length === 0 ? [device, limit] : [device, limit, exclude],
    );
    return rows.map(rowToEnvelope);
  }

  /** Deletes acked envelopes of many devices in one statement; answers the ids removed. */
  async deleteAcked(pairs: readonly { device: DeviceRef; id: string }[]): Promise<Set<string>> {
    const gone = new Set<string>();
    if (pairs.length === 0) return gone;
    const rows = await this.db.query<{ id: string }>(
      `DELETE FROM delivery_envelopes e USING unnest($1::bigint[], $2::${REF}[]) AS a(id, dev)
        WHERE e.id = a.id AND e.device_id = a.dev
        RETURNING e.id::text AS id`,
      [pairs.map((p) => p.id), pairs.map((p) => p.device)],
    );
    for (const r of rows) gone.add(r.id);
    return gone;
  }

  /**
   * GC, one bounded step each. Rows are claimed with SKIP LOCKED so instances running GC at the
   * same time split the work instead of waiting on each other.
   *
   * Envelope ids grow with time, so the expired envelopes are at the head of the id order: a
   * step looks only at the `limit` lowest ids and deletes those older than the cutoff.
   */
  async deleteExpiredEnvelopes(cutoff: number, limit: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH doomed AS (
         SELECT e.id FROM delivery_envelopes e
          WHERE e.id IN (SELECT id FROM delivery_envelopes ORDER BY id LIMIT $2) AND e.server_ts < $1
          FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [cutoff, limit],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async deleteExpiredSends(now: number, limit: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH doomed AS (
         SELECT sender_device, message_id FROM delivery_sends WHERE expires_at <= $1
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_sends s USING doomed
          WHERE s.sender_device = doomed.sender_device AND s.message_id = doomed.message_id RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [now, limit],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Deletes queued envelopes (and dedup entries) of devices that no longer exist or were removed. */
  async deleteOrphans(limit: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH doomed AS (
         SELECT e.id FROM delivery_envelopes e
          WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = e.device_id AND ${LIVE_DEVICE('d')})
          LIMIT $1 FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [limit],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

/** SQL condition for a device that has not been removed (see migrations/0001). */
const LIVE_DEVICE = (alias: string): string => `${alias}.revoked_at IS NULL`;

export function sendKey(senderDevice: DeviceRef, messageId: string): string {
  return `${senderDevice}/${messageId}`;
}
