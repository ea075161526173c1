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

export interface QueuedDevice {
  readonly device: number;
  readonly ref: DeviceRef;
  /** The device's identity key (IK), base64url. */
  readonly key: string;
  /** Envelopes in its queue, counted up to the cap asked for. */
  readonly queued: number;
}

export interface BatchSnapshot {
  readonly sends: StoredSend[];
  /** username -> current devices; unknown accounts are absent. */
  readonly devices: Map<string, QueuedDevice[]>;
  readonly ids: string[];
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
   *   one row with a null device), each with its queue length counted up to `cap`;
   * - `idCount` fresh envelope ids, ascending.
   */
  async readBatch(q: {
    readonly keys: readonly { senderDevice: DeviceRef; messageId: string }[];
    readonly usernames: readonly string[];
    readonly idCount: number;
    readonly cap: number;
    readonly now: number;
  }): Promise<BatchSnapshot> {
    const [acc, dev] = split(q.keys.map((k) => k.senderDevice));
    const rows = await this.db.query<{ sends: unknown; devices: unknown; ids: unknown }>(
      `SELECT
         (SELECT coalesce(json_agg(json_build_array(s.sender_account::text || '/' || s.sender_device, s.message_id::text,
                                                    encode(s.content_hash, 'hex'), s.answer)), '[]'::json)
            FROM delivery_sends s
            JOIN unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS k(acc, dev, mid)
              ON s.sender_account = k.acc AND s.sender_device = k.dev AND s.message_id = k.mid
           WHERE s.expires_at > $4) AS sends,
         (SELECT coalesce(json_agg(json_build_array(a.username, a.id::text, d.device_id::text, encode(d.ik_pub, 'hex'),
                   (SELECT count(*) FROM (SELECT 1 FROM delivery_envelopes e
                                           WHERE e.account_id = d.account_id AND e.device_id = d.device_id LIMIT $6) x))),
                          '[]'::json)
            FROM accounts a LEFT JOIN devices d ON d.account_id = a.id AND d.removed_at IS NULL
           WHERE a.username = ANY($5::text[])) AS devices,
         (SELECT coalesce(json_agg(nextval('delivery_envelope_id_seq')::text), '[]'::json)
            FROM generate_series(1, $7::int)) AS ids`,
      [acc, dev, q.keys.map((k) => k.messageId), q.now, q.usernames, q.cap, q.idCount],
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
    for (const [username, accountId, deviceId, ik, queued] of json<[string, string, string | null, string | null, number | string][]>(r.devices)) {
      let list = devices.get(username);
      if (!list) devices.set(username, (list = []));
      if (deviceId === null || ik === null) continue;
      list.push({ device: Number(deviceId), ref: deviceRef(accountId, deviceId), key: Buffer.from(ik, 'hex').toString('base64url'), queued: Number(queued) });
    }
    const ids = json<string[]>(r.ids).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    return { sends, devices, ids };
  }

  /**
   * Writes a batch in one statement (so it commits alone, as one WAL flush): the dedup entries
   * (an existing entry wins unless it has expired), the envelopes of the sends whose entry was
   * written, and the NOTIFY payloads. Answers the keys written: a key missing from the answer
   * belongs to a concurrent send that committed first.
   */
  async writeBatch(sends: readonly NewSend[], envs: readonly NewEnvelope[], notify: readonly string[], now: number): Promise<Set<string>> {
    const won = new Set<string>();
    if (sends.length === 0) return won;
    const [sAcc, sDev] = split(sends.map((s) => s.senderDevice));
    const [eSAcc] = split(envs.map((e) => e.senderRef));
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
         INSERT INTO delivery_envelopes (id, account_id, device_id, message_id, sender, sender_device, type, body, server_ts)
         SELECT x.id, x.acc, x.dev, x.mid, x.sender, x.sdev, x.type, x.body, x.ts
           FROM unnest($8::bigint[], $9::uuid[], $10::bigint[], $11::uuid[], $12::text[], $13::bigint[], $14::smallint[],
                       $15::text[], $16::bigint[], $17::uuid[]) AS x(id, acc, dev, mid, sender, sdev, type, body, ts, sacc)
           JOIN s ON s.sender_account = x.sacc AND s.sender_device = x.sdev AND s.message_id = x.mid
         RETURNING 1
       ), n AS (
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
        eSAcc,
        WAKE_CHANNEL,
        notify,
      ],
    );
    const list = rows[0]?.won;
    for (const k of (typeof list === 'string' ? JSON.parse(list) : list) as string[]) won.add(k);
    return won;
  }

  /**
   * A re-send, in one statement: its dedup entry (an existing entry wins unless it has expired),
   * then its envelope and NOTIFY only if the entry was written. Answers whether it was: false
   * means the same re-send committed first (its stored answer stands).
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
         INSERT INTO delivery_envelopes (id, account_id, device_id, message_id, sender, sender_device, type, body, server_ts)
         SELECT * FROM unnest($8::bigint[], $9::uuid[], $10::bigint[], $11::uuid[], $12::text[], $13::bigint[], $14::smallint[], $15::text[], $16::bigint[])
          WHERE EXISTS (SELECT 1 FROM s)
         RETURNING 1
       ), n AS (
         SELECT pg_notify($17, p) FROM unnest($18::text[]) AS p WHERE EXISTS (SELECT 1 FROM s)
       )
       SELECT (SELECT count(*) FROM s) AS won, (SELECT count(*) FROM e) AS queued, (SELECT count(*) FROM n) AS notified`,
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

/** The delivery_envelopes columns of `envs`, as the nine unnest() arrays the inserts take. */
function envelopeColumns(envs: readonly NewEnvelope[]): unknown[] {
  const [acc, dev] = split(envs.map((e) => e.device));
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
  ];
}

export function sendKey(senderDevice: DeviceRef, messageId: string): string {
  return `${senderDevice}|${messageId}`;
}
