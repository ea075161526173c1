/**
 * The only SQL of the delivery model: per-device queues (delivery_envelopes) and the send
 * dedup table (delivery_sends). Every statement works on a whole batch through unnest(), so a
 * group commit costs a fixed number of round trips however many sends it carries.
 *
 * A device is named by the devices table's key (account_id uuid, device_id bigint), carried in
 * TypeScript as one opaque string `DeviceRef` = "<account uuid>/<device id>".
 */
import type { SqlDatabase } from './sql.js';
import { WAKE_CHANNEL } from './wake-bus.js';
import type { Envelope } from './schemas.js';

/** A device's key in the devices table, "<account uuid>/<device id>"; opaque outside SQL. */
export type DeviceRef = string & { readonly __deviceRef: unique symbol };
export const asDeviceRef = (s: string): DeviceRef => s as DeviceRef;
export const deviceRef = (accountId: string, deviceId: number | string): DeviceRef => `${accountId}/${deviceId}` as DeviceRef;
/** The account of a device ref. */
export const accountOf = (ref: DeviceRef): string => ref.slice(0, ref.indexOf('/'));

/**
 * The decoded size of a base64url body, as SQL over an envelope row and as TypeScript: the queue
 * usage counts the same number when an envelope is queued and when it is deleted.
 */
const BODY_BYTES = 'octet_length(body) * 3 / 4';
export const bodyBytes = (body: string): number => Math.floor((body.length * 3) / 4);

/**
 * A CTE `usage` that adds (+) or takes back (-) the envelopes of CTE `rows` (columns account_id,
 * device_id, sender_account, bytes) in delivery_queue_usage. Rows are upserted in key order, so
 * two statements that touch the same counters lock them in the same order (no deadlock).
 */
function usageCte(rows: string, sign: '+' | '-'): string {
  return `usage AS (
         INSERT INTO delivery_queue_usage AS q (account_id, device_id, sender_account, envelopes, bytes)
         SELECT account_id, device_id, sender_account, ${sign}count(*), ${sign}sum(bytes) FROM ${rows}
          GROUP BY account_id, device_id, sender_account ORDER BY account_id, device_id, sender_account
         ON CONFLICT (account_id, device_id, sender_account) DO UPDATE
           SET envelopes = q.envelopes + EXCLUDED.envelopes, bytes = q.bytes + EXCLUDED.bytes
         RETURNING 1
       )`;
}

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

/** Envelopes and decoded body bytes waiting in a queue (or one sender's part of it). */
export interface QueueUsage {
  readonly envelopes: number;
  readonly bytes: number;
}

export interface QueuedDevice {
  readonly device: number;
  readonly ref: DeviceRef;
  /** The device's identity key (IK), base64url. */
  readonly key: string;
  /** What waits in its queue, from all senders. */
  readonly queued: QueueUsage;
}

export interface BatchSnapshot {
  readonly sends: StoredSend[];
  /** username -> current devices; unknown accounts are absent. */
  readonly devices: Map<string, QueuedDevice[]>;
  /** shareKey(device, sender account) -> what that sender has waiting in that queue (absent: nothing). */
  readonly shares: Map<string, QueueUsage>;
  readonly ids: string[];
}

/** The key of one sender account's share of one device's queue. */
export const shareKey = (device: DeviceRef, senderAccount: string): string => `${device}|${senderAccount}`;

export interface NewSend {
  readonly senderDevice: DeviceRef;
  readonly messageId: string;
  readonly contentHash: Buffer;
  readonly answer: unknown;
  readonly expiresAt: number;
}

export interface NewEnvelope {
  readonly id: string;
  /** The sending device (joins the envelope to its dedup entry). */
  readonly senderRef: DeviceRef;
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

  /**
   * Everything a batch of sends must know, in one statement (no transaction: each part is a
   * plain read, and the write that follows settles races through the dedup key):
   * - the dedup entries of these keys that have not expired at `now`;
   * - the current devices of these accounts (Server I's tables; an account with no device has
   *   one row with a null device), each with what waits in its queue (delivery_queue_usage);
   * - what each of the sending accounts has waiting in each of these devices' queues;
   * - `idCount` fresh envelope ids, ascending.
   */
  async readBatch(q: {
    readonly keys: readonly { senderDevice: DeviceRef; messageId: string }[];
    readonly usernames: readonly string[];
    readonly idCount: number;
    readonly now: number;
  }): Promise<BatchSnapshot> {
    const [acc, dev] = split(q.keys.map((k) => k.senderDevice));
    const senders = [...new Set(acc)];
    const rows = await this.db.query<{ sends: unknown; devices: unknown; shares: unknown; ids: unknown }>(
      `SELECT
         (SELECT coalesce(json_agg(json_build_array(s.sender_account::text || '/' || s.sender_device, s.message_id::text,
                                                    encode(s.content_hash, 'hex'), s.answer)), '[]'::json)
            FROM delivery_sends s
            JOIN unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS k(acc, dev, mid)
              ON s.sender_account = k.acc AND s.sender_device = k.dev AND s.message_id = k.mid
           WHERE s.expires_at > $4) AS sends,
         (SELECT coalesce(json_agg(json_build_array(a.username, a.id::text, d.device_id::text, encode(d.ik_pub, 'hex'),
                   (SELECT json_build_array(coalesce(sum(u.envelopes), 0), coalesce(sum(u.bytes), 0)) FROM delivery_queue_usage u
                     WHERE u.account_id = d.account_id AND u.device_id = d.device_id))),
                          '[]'::json)
            FROM accounts a LEFT JOIN devices d ON d.account_id = a.id AND d.removed_at IS NULL
           WHERE a.username = ANY($5::text[])) AS devices,
         (SELECT coalesce(json_agg(json_build_array(u.account_id::text || '/' || u.device_id, u.sender_account::text, u.envelopes, u.bytes)), '[]'::json)
            FROM accounts a JOIN delivery_queue_usage u ON u.account_id = a.id
           WHERE a.username = ANY($5::text[]) AND u.sender_account = ANY($7::uuid[])) AS shares,
         (SELECT coalesce(json_agg(nextval('delivery_envelope_id_seq')::text), '[]'::json)
            FROM generate_series(1, $6::int)) AS ids`,
      [acc, dev, q.keys.map((k) => k.messageId), q.now, q.usernames, q.idCount, senders],
    );
    const r = rows[0]!;
    const json = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;
    const sends = json<[string, string, string, string][]>(r.sends).map(
      ([senderDevice, messageId, hash, answer]): StoredSend => ({
        senderDevice: asDeviceRef(senderDevice),
        messageId,
        contentHash: Buffer.from(hash, 'hex'),
        answer: JSON.parse(answer) as unknown,
      }),
    );
    const devices = new Map<string, QueuedDevice[]>();
    type Count = number | string;
    for (const [username, accountId, deviceId, ik, queued] of json<[string, string, string | null, string | null, [Count, Count]][]>(r.devices)) {
      let list = devices.get(username);
      if (!list) devices.set(username, (list = []));
      if (deviceId === null || ik === null) continue;
      list.push({
        device: Number(deviceId),
        ref: deviceRef(accountId, deviceId),
        key: Buffer.from(ik, 'hex').toString('base64url'),
        queued: { envelopes: Number(queued[0]), bytes: Number(queued[1]) },
      });
    }
    const shares = new Map<string, QueueUsage>();
    for (const [device, sender, envelopes, bytes] of json<[string, string, Count, Count][]>(r.shares)) {
      shares.set(shareKey(asDeviceRef(device), sender), { envelopes: Number(envelopes), bytes: Number(bytes) });
    }
    const ids = json<string[]>(r.ids).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    return { sends, devices, shares, ids };
  }

  /**
   * Writes a batch in one statement (so it commits alone, as one WAL flush): the dedup entries
   * (an existing entry wins unless it has expired), the envelopes of the sends whose entry was
   * written with their queue usage, and the NOTIFY payloads. Answers the keys written: a key missing from the answer
   * belongs to a concurrent send that committed first.
   */
  async writeBatch(sends: readonly NewSend[], envs: readonly NewEnvelope[], notify: readonly string[], now: number): Promise<Set<string>> {
    const won = new Set<string>();
    if (sends.length === 0) return won;
    const [sAcc, sDev] = split(sends.map((s) => s.senderDevice));
    const rows = await this.db.query<{ won: unknown }>(
      `WITH s AS (
         INSERT INTO delivery_sends (sender_account, sender_device, message_id, content_hash, answer, expires_at)
         SELECT acc, dev, mid, decode(h, 'hex'), a, x
           FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::bigint[]) AS n(acc, dev, mid, h, a, x)
         ON CONFLICT (sender_account, sender_device, message_id) DO UPDATE
           SET content_hash = EXCLUDED.content_hash, answer = EXCLUDED.answer, expires_at = EXCLUDED.expires_at
           WHERE delivery_sends.expires_at <= $7
         RETURNING sender_account, sender_device, message_id
       ), e AS (
         INSERT INTO delivery_envelopes (id, account_id, device_id, message_id, sender, sender_device, type, body, server_ts, sender_account)
         SELECT x.id, x.acc, x.dev, x.mid, x.sender, x.sdev, x.type, x.body, x.ts, x.sacc
           FROM unnest($8::bigint[], $9::uuid[], $10::bigint[], $11::uuid[], $12::text[], $13::bigint[], $14::smallint[],
                       $15::text[], $16::bigint[], $17::uuid[]) AS x(id, acc, dev, mid, sender, sdev, type, body, ts, sacc)
           JOIN s ON s.sender_account = x.sacc AND s.sender_device = x.sdev AND s.message_id = x.mid
         RETURNING account_id, device_id, sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('e', '+')}, n AS (
         SELECT pg_notify($18, p) FROM unnest($19::text[]) AS p
       )
       SELECT (SELECT coalesce(json_agg(s.sender_account::text || '/' || s.sender_device || '|' || s.message_id::text), '[]'::json) FROM s) AS won,
              (SELECT count(*) FROM e) AS queued,
              (SELECT count(*) FROM n) AS notified`,
      [
        sAcc,
        sDev,
        sends.map((s) => s.messageId),
        sends.map((s) => s.contentHash.toString('hex')),
        sends.map((s) => JSON.stringify(s.answer)),
        sends.map((s) => s.expiresAt),
        now,
        ...envelopeColumns(envs),
        WAKE_CHANNEL,
        notify,
      ],
    );
    const list = rows[0]?.won;
    for (const k of (typeof list === 'string' ? JSON.parse(list) : list) as string[]) won.add(k);
    return won;
  }

  /** Queues envelopes that need no dedup entry (re-sends of accepted messages) with their usage, and notifies, in one statement. */
  async insertEnvelopes(envs: readonly NewEnvelope[], notify: readonly string[]): Promise<void> {
    if (envs.length === 0) return;
    await this.db.query(
      `WITH e AS (
         INSERT INTO delivery_envelopes (id, account_id, device_id, message_id, sender, sender_device, type, body, server_ts, sender_account)
         SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::bigint[], $7::smallint[], $8::text[],
                              $9::bigint[], $10::uuid[])
         RETURNING account_id, device_id, sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('e', '+')}, n AS (
         SELECT pg_notify($11, p) FROM unnest($12::text[]) AS p
       )
       SELECT (SELECT count(*) FROM e) AS queued, (SELECT count(*) FROM n) AS notified`,
      [...envelopeColumns(envs), WAKE_CHANNEL, notify],
    );
  }

  /**
   * A re-send, in one statement: its dedup entry (an existing entry wins unless it has expired),
   * then its envelope, queue usage and NOTIFY only if the entry was written. Answers whether it
   * was: false means the same re-send committed first (its stored answer stands).
   */
  async writeResend(send: NewSend, env: NewEnvelope, notify: readonly string[], now: number): Promise<boolean> {
    const [[acc], [dev]] = split([send.senderDevice]);
    const rows = await this.db.query<{ won: string | number }>(
      `WITH s AS (
         INSERT INTO delivery_sends (sender_account, sender_device, message_id, content_hash, answer, expires_at)
         VALUES ($1::uuid, $2::bigint, $3::uuid, decode($4, 'hex'), $5, $6::bigint)
         ON CONFLICT (sender_account, sender_device, message_id) DO UPDATE
           SET content_hash = EXCLUDED.content_hash, answer = EXCLUDED.answer, expires_at = EXCLUDED.expires_at
           WHERE delivery_sends.expires_at <= $7
         RETURNING 1
       ), e AS (
         INSERT INTO delivery_envelopes (id, account_id, device_id, message_id, sender, sender_device, type, body, server_ts, sender_account)
         SELECT * FROM unnest($8::bigint[], $9::uuid[], $10::bigint[], $11::uuid[], $12::text[], $13::bigint[], $14::smallint[], $15::text[],
                              $16::bigint[], $17::uuid[])
          WHERE EXISTS (SELECT 1 FROM s)
         RETURNING account_id, device_id, sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('e', '+')}, n AS (
         SELECT pg_notify($18, p) FROM unnest($19::text[]) AS p WHERE EXISTS (SELECT 1 FROM s)
       )
       SELECT (SELECT count(*) FROM s) AS won, (SELECT count(*) FROM e) AS queued, (SELECT count(*) FROM usage) AS counted, (SELECT count(*) FROM n) AS notified`,
      [acc, dev, send.messageId, send.contentHash.toString('hex'), JSON.stringify(send.answer), send.expiresAt, now, ...envelopeColumns([env]), WAKE_CHANNEL, notify],
    );
    return Number(rows[0]?.won ?? 0) > 0;
  }

  /** A device's queue in id order, skipping ids the caller already holds. */
  async fetch(device: DeviceRef, exclude: readonly string[], limit: number): Promise<Envelope[]> {
    const [[acc], [dev]] = split([device]);
    // (e.id, not id: the text alias would sort as text)
    const cols = `e.id::text AS id, message_id::text AS message_id, sender, sender_device, type, body, server_ts`;
    const rows = await this.db.query<EnvelopeRow>(
      exclude.length === 0
        ? `SELECT ${cols} FROM delivery_envelopes e WHERE account_id = $1 AND device_id = $2 ORDER BY e.id LIMIT $3`
        : `SELECT ${cols} FROM delivery_envelopes e
            WHERE account_id = $1 AND device_id = $2 AND NOT (e.id = ANY($4::bigint[])) ORDER BY e.id LIMIT $3`,
      exclude.length === 0 ? [acc, dev, limit] : [acc, dev, limit, exclude],
    );
    return rows.map(rowToEnvelope);
  }

  /** Deletes acked envelopes of many devices, and their usage, in one statement; answers the ids removed. */
  async deleteAcked(pairs: readonly { device: DeviceRef; id: string }[]): Promise<Set<string>> {
    const gone = new Set<string>();
    if (pairs.length === 0) return gone;
    const rows = await this.db.query<{ id: string }>(
      `WITH gone AS (
         DELETE FROM delivery_envelopes e USING unnest($1::bigint[], $2::uuid[], $3::bigint[]) AS a(id, acc, dev)
          WHERE e.id = a.id AND e.account_id = a.acc AND e.device_id = a.dev
          RETURNING e.id, e.account_id, e.device_id, e.sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('gone', '-')}
       SELECT id::text AS id FROM gone`,
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
         DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id
         RETURNING e.account_id, e.device_id, e.sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('gone', '-')}
       SELECT count(*) AS n FROM gone`,
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

  /** Deletes up to `limit` usage rows that count nothing any more (their envelopes were all deleted). */
  async deleteEmptyUsage(limit: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH doomed AS (
         SELECT account_id, device_id, sender_account FROM delivery_queue_usage WHERE envelopes <= 0
          LIMIT $1 FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_queue_usage q USING doomed
          WHERE q.account_id = doomed.account_id AND q.device_id = doomed.device_id
            AND q.sender_account = doomed.sender_account AND q.envelopes <= 0 RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [limit],
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
         DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id
         RETURNING e.account_id, e.device_id, e.sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('gone', '-')}
       SELECT count(*) AS n FROM gone`,
      [limit],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

/** The delivery_envelopes columns of `envs`, as the ten unnest() arrays both inserts take. */
function envelopeColumns(envs: readonly NewEnvelope[]): unknown[] {
  const [acc, dev] = split(envs.map((e) => e.device));
  const [senderAcc] = split(envs.map((e) => e.senderRef));
  return [
    envs.map((e) => e.id),
    acc,
    dev,
    envs.map((e) => e.messageId),
    envs.map((e) => e.sender),
    envs.map((e) => e.senderDevice),
    envs.map((e) => e.type),
    envs.map((e) => e.body),
    envs.map((e) => e.serverTs),
    senderAcc,
  ];
}

export function sendKey(senderDevice: DeviceRef, messageId: string): string {
  return `${senderDevice}|${messageId}`;
}
