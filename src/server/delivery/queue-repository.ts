/**
 * The only SQL of the delivery model: per-device queues (delivery_envelopes) and the send
 * dedup table (delivery_sends). Every statement works on a whole batch through unnest(), so a
 * group commit costs a fixed number of round trips however many sends it carries.
 *
 * A device is named by the devices table's key (account_id uuid, device_id bigint), carried in
 * TypeScript as one opaque string `DeviceRef` = "<account uuid>/<device id>".
 */
import type { SqlClient, SqlDatabase } from './sql.js';
import type { Envelope } from './schemas.js';

/** A device's key in the devices table, "<account uuid>/<device id>"; opaque outside SQL. */
export type DeviceRef = string & { readonly __deviceRef: unique symbol };
export const asDeviceRef = (s: string): DeviceRef => s as DeviceRef;
export const deviceRef = (accountId: string, deviceId: number | string): DeviceRef => `${accountId}/${deviceId}` as DeviceRef;

/** The two SQL columns of refs, as parallel arrays. */
function split(refs: readonly DeviceRef[]): [string[], string[]] {
  const a: string[] = [];
  const d: string[] = [];
  for (const r of refs) {
    const i = r.indexOf('/');
    a.push(r.slice(0, i));
    d.push(r.slice(i + 1));
  }
  return [a, d];
}

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
    const rows = await tx.query<{ sender_device: string; message_id: string; content_hash: string; answer: string }>(
      `SELECT s.sender_account::text || '/' || s.sender_device AS sender_device, s.message_id::text AS message_id,
              encode(s.content_hash, 'hex') AS content_hash, s.answer
         FROM delivery_sends s
         JOIN unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS k(acc, dev, mid)
           ON s.sender_account = k.acc AND s.sender_device = k.dev AND s.message_id = k.mid
        WHERE s.expires_at > $4`,
      [...split(keys.map((k) => k.senderDevice)), keys.map((k) => k.messageId), now],
    );
    return rows.map((r) => ({
      senderDevice: asDeviceRef(r.sender_device),
      messageId: r.message_id,
      contentHash: Buffer.from(r.content_hash, 'hex'),
      answer: JSON.parse(r.answer) as unknown,
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
      `SELECT d.acc::text || '/' || d.dev AS dev,
              (SELECT count(*) FROM (SELECT 1 FROM delivery_envelopes e
                                      WHERE e.account_id = d.acc AND e.device_id = d.dev LIMIT $3) x) AS n
         FROM unnest($1::uuid[], $2::bigint[]) AS d(acc, dev)`,
      [...split(devices), cap],
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
      `INSERT INTO delivery_sends (sender_account, sender_device, message_id, content_hash, answer, expires_at)
       SELECT acc, dev, mid, decode(h, 'hex'), a, x
         FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::bigint[]) AS n(acc, dev, mid, h, a, x)
       ON CONFLICT (sender_account, sender_device, message_id) DO UPDATE
         SET content_hash = EXCLUDED.content_hash, answer = EXCLUDED.answer, expires_at = EXCLUDED.expires_at
         WHERE delivery_sends.expires_at <= $7
       RETURNING sender_account::text || '/' || sender_device AS sender_device, message_id::text AS message_id`,
      [
        ...split(sends.map((s) => s.senderDevice)),
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
      `INSERT INTO delivery_envelopes (id, account_id, device_id, message_id, sender, sender_device, type, body, server_ts)
       SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::bigint[], $7::smallint[],
                            $8::text[], $9::bigint[])`,
      [
        envs.map((e) => e.id),
        ...split(envs.map((e) => e.device)),
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
    const [[acc], [dev]] = split([device]);
    const cols = `id::text AS id, message_id::text AS message_id, sender, sender_device, type, body, server_ts`;
    const rows = await this.db.query<EnvelopeRow>(
      exclude.length === 0
        ? `SELECT ${cols} FROM delivery_envelopes WHERE account_id = $1 AND device_id = $2 ORDER BY id LIMIT $3`
        : `SELECT ${cols} FROM delivery_envelopes
            WHERE account_id = $1 AND device_id = $2 AND NOT (id = ANY($4::bigint[])) ORDER BY id LIMIT $3`,
      exclude.length === 0 ? [acc, dev, limit] : [acc, dev, limit, exclude],
    );
    return rows.map(rowToEnvelope);
  }

  /** Deletes acked envelopes of many devices in one statement; answers the ids removed. */
  async deleteAcked(pairs: readonly { device: DeviceRef; id: string }[]): Promise<Set<string>> {
    const gone = new Set<string>();
    if (pairs.length === 0) return gone;
    const rows = await this.db.query<{ id: string }>(
      `DELETE FROM delivery_envelopes e USING unnest($1::bigint[], $2::uuid[], $3::bigint[]) AS a(id, acc, dev)
        WHERE e.id = a.id AND e.account_id = a.acc AND e.device_id = a.dev
        RETURNING e.id::text AS id`,
      [pairs.map((p) => p.id), ...split(pairs.map((p) => p.device))],
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
         SELECT sender_account, sender_device, message_id FROM delivery_sends WHERE expires_at <= $1
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_sends s USING doomed
          WHERE s.sender_account = doomed.sender_account AND s.sender_device = doomed.sender_device
            AND s.message_id = doomed.message_id RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [now, limit],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Deletes the queues of removed devices (devices.removed_at set; a removed device's row stays,
   * and device ids are never reused). Looks at removed devices that still have a queue, a few at a
   * time, and deletes at most `limit` envelopes.
   */
  async deleteOrphans(limit: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH doomed AS (
         SELECT e.id FROM delivery_envelopes e
           JOIN devices d ON d.account_id = e.account_id AND d.device_id = e.device_id
          WHERE d.removed_at IS NOT NULL
          LIMIT $1 FOR UPDATE OF e SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [limit],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

export function sendKey(senderDevice: DeviceRef, messageId: string): string {
  return `${senderDevice}|${messageId}`;
}
