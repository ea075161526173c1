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
 * The sender_account of a device's total row in delivery_queue_usage (migration 0006): what waits
 * in the whole queue, so a send reads one row per device. No account has this id
 * (gen_random_uuid() makes version-4 UUIDs).
 */
export const ALL_SENDERS = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/**
 * A CTE `usage` that adds (+) or takes back (-) the envelopes of CTE `rows` (columns account_id,
 * device_id, sender_account, bytes) in delivery_queue_usage: each sender's row and the device's
 * total row (ALL_SENDERS). Rows are upserted in key order by one statement, so two statements that
 * touch the same counters lock them in the same order (no deadlock).
 */
function usageCte(rows: string, sign: '+' | '-'): string {
  return `usage AS (
         INSERT INTO delivery_queue_usage AS q (account_id, device_id, sender_account, envelopes, bytes)
         SELECT account_id, device_id, coalesce(sender_account, '${ALL_SENDERS}'::uuid) AS sender, ${sign}count(*), ${sign}sum(bytes)
           FROM ${rows}
          GROUP BY GROUPING SETS ((account_id, device_id, sender_account), (account_id, device_id))
          ORDER BY account_id, device_id, sender
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

  /** Envelopes waiting in every queue: the sum of the per-device totals (one row per device, migration 0007's index), not a count of envelopes. */
  async waitingTotal(): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `SELECT coalesce(sum(envelopes), 0) AS n FROM delivery_queue_usage WHERE sender_account = '${ALL_SENDERS}'::uuid`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * Everything a batch of sends must know, in one statement (no transaction: each part is a
   * plain read, and the write that follows settles races through the dedup key):
   * - the dedup entries of these keys that have not expired at `now`;
   * - the current devices of these accounts (Server I's tables; an account with no device has
   *   one row with a null device), each with what waits in its queue (its total row);
   * - what each key's sending account has waiting in the queues of its recipient's devices and
   *   of its own account's devices;
   * - `idCount` fresh envelope ids, ascending.
   * Every counter is read by its primary key: the cost follows the devices named, not what waits.
   */
  async readBatch(q: {
    readonly keys: readonly { senderDevice: DeviceRef; messageId: string; recipient: string }[];
    readonly usernames: readonly string[];
    readonly idCount: number;
    readonly now: number;
  }): Promise<BatchSnapshot> {
    const [acc, dev] = split(q.keys.map((k) => k.senderDevice));
    const rows = await this.db.query<{ sends: unknown; devices: unknown; shares: unknown; ids: unknown }>(
      `SELECT
         (SELECT coalesce(json_agg(json_build_array(s.sender_account::text || '/' || s.sender_device, s.message_id::text,
                                                    encode(s.content_hash, 'hex'), s.answer)), '[]'::json)
            FROM unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS k(acc, dev, mid)
            -- A primary-key probe per key, fenced (OFFSET 0): as a plain join the planner hashed every
            -- unexpired entry (the whole retention's sends, 50k rows in bench:relay: 50 ms a batch).
            CROSS JOIN LATERAL (SELECT * FROM delivery_sends s
                                 WHERE s.sender_account = k.acc AND s.sender_device = k.dev AND s.message_id = k.mid
                                   AND s.expires_at > $4 OFFSET 0) s) AS sends,
         (SELECT coalesce(json_agg(json_build_array(a.username, a.id::text, d.device_id::text, encode(d.ik_pub, 'hex'),
                                                    json_build_array(coalesce(t.envelopes, 0), coalesce(t.bytes, 0)))), '[]'::json)
            FROM accounts a LEFT JOIN devices d ON d.account_id = a.id AND d.removed_at IS NULL
            LEFT JOIN delivery_queue_usage t
              ON t.account_id = d.account_id AND t.device_id = d.device_id AND t.sender_account = '${ALL_SENDERS}'::uuid
           WHERE a.username = ANY($5::text[])) AS devices,
         (SELECT coalesce(json_agg(json_build_array(u.account_id::text || '/' || u.device_id, u.sender_account::text, u.envelopes, u.bytes)), '[]'::json)
            FROM (SELECT a.id AS acc, k.sacc FROM unnest($7::text[], $1::uuid[]) AS k(u, sacc) JOIN accounts a ON a.username = k.u
                  UNION SELECT k.sacc, k.sacc FROM unnest($1::uuid[]) AS k(sacc)) p
            JOIN devices d ON d.account_id = p.acc AND d.removed_at IS NULL
            -- (a fenced lookup, so that the index is probed on its whole key: as a plain join the
            -- planner may scan a device's prefix, every sender's row, and filter)
            CROSS JOIN LATERAL (SELECT * FROM delivery_queue_usage u
                                 WHERE u.account_id = d.account_id AND u.device_id = d.device_id AND u.sender_account = p.sacc OFFSET 0) u) AS shares,
         (SELECT coalesce(json_agg(nextval('delivery_envelope_id_seq')::text), '[]'::json)
            FROM generate_series(1, $6::int)) AS ids`,
      [acc, dev, q.keys.map((k) => k.messageId), q.now, q.usernames, q.idCount, q.keys.map((k) => k.recipient)],
      'delivery_read_batch',
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
      'delivery_write_batch',
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
      exclude.length === 0 ? 'delivery_fetch' : 'delivery_fetch_excluding',
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
      'delivery_delete_acked',
    );
    for (const r of rows) gone.add(r.id);
    return gone;
  }

  /**
   * GC, one bounded step each. Rows are claimed with SKIP LOCKED so instances running GC at the
   * same time split the work instead of waiting on each other.
   *
   * Envelope ids grow with time, so the expired envelopes are at the head of the id order: a
   * step looks only at the `limit` lowest ids above `after` (the highest id the previous step
   * deleted, so that no step walks again over the index entries of rows already deleted and not
   * yet vacuumed) and deletes those older than the cutoff.
   */
  async deleteExpiredEnvelopes(cutoff: number, limit: number, after = '0'): Promise<GcStep> {
    const rows = await this.db.query<{ n: string | number; last: string | null }>(
      `WITH doomed AS (
         SELECT e.id FROM delivery_envelopes e
          WHERE e.id IN (SELECT id FROM delivery_envelopes WHERE id > $3 ORDER BY id LIMIT $2) AND e.server_ts < $1
          FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id
         RETURNING e.id, e.account_id, e.device_id, e.sender_account, ${BODY_BYTES} AS bytes
       ), ${usageCte('gone', '-')}
       SELECT count(*) AS n, max(id)::text AS last FROM gone`,
      [cutoff, limit, after],
    );
    return { n: Number(rows[0]?.n ?? 0), last: rows[0]?.last ?? after };
  }

  /** Like deleteExpiredEnvelopes: `after` is the expiry of the last entry the previous step deleted. */
  async deleteExpiredSends(now: number, limit: number, after = '0'): Promise<GcStep> {
    const rows = await this.db.query<{ n: string | number; last: string | null }>(
      `WITH doomed AS (
         SELECT sender_account, sender_device, message_id FROM delivery_sends WHERE expires_at <= $1 AND expires_at >= $3
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM delivery_sends s USING doomed
          WHERE s.sender_account = doomed.sender_account AND s.sender_device = doomed.sender_device
            AND s.message_id = doomed.message_id RETURNING s.expires_at
       ) SELECT count(*) AS n, max(expires_at)::text AS last FROM gone`,
      [now, limit, after],
    );
    return { n: Number(rows[0]?.n ?? 0), last: rows[0]?.last ?? after };
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
   * Deletes up to `limit` envelopes from the queues of removed devices. Only the devices listed
   * in delivery_removed_queues (queueRemovedDevice) are looked at, a few queues at a time, so the
   * step costs an index lookup when no removal is pending, however many devices were ever removed.
   */
  async deleteOrphans(limit: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH q AS (
         SELECT r.account_id, r.device_id FROM delivery_removed_queues r
          WHERE EXISTS (SELECT 1 FROM delivery_envelopes e WHERE e.account_id = r.account_id AND e.device_id = r.device_id)
          ORDER BY r.account_id, r.device_id LIMIT ${ORPHAN_QUEUES_PER_STEP}
       ), doomed AS (
         SELECT e.id FROM q JOIN delivery_envelopes e ON e.account_id = q.account_id AND e.device_id = q.device_id
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

  /**
   * Forgets the removed devices whose queue is empty and whose removal is older than
   * `removedBefore` (ms): from then on GC never looks at them again. Answers how many.
   */
  async forgetCollectedQueues(removedBefore: number): Promise<number> {
    const rows = await this.db.query<{ n: string | number }>(
      `WITH gone AS (
         DELETE FROM delivery_removed_queues r
          WHERE r.removed_at < $1
            AND NOT EXISTS (SELECT 1 FROM delivery_envelopes e WHERE e.account_id = r.account_id AND e.device_id = r.device_id)
         RETURNING 1
       ) SELECT count(*) AS n FROM gone`,
      [removedBefore],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The removed devices whose queue GC has not yet collected and forgotten. */
  async pendingRemovedQueues(): Promise<DeviceRef[]> {
    const rows = await this.db.query<{ a: string; d: string }>(
      `SELECT account_id::text AS a, device_id::text AS d FROM delivery_removed_queues ORDER BY account_id, device_id`,
    );
    return rows.map((r) => deviceRef(r.a, r.d));
  }
}

/** One GC step: rows deleted, and where the next step starts. */
export interface GcStep {
  readonly n: number;
  readonly last: string;
}

/** Queues of removed devices one orphan step collects from. */
const ORPHAN_QUEUES_PER_STEP = 64;

/**
 * Lists a removed device for GC to collect its queue, inside the removal's transaction (the
 * device-removal hook), so no removal is missed and none is listed that rolled back.
 */
export async function queueRemovedDevice(
  tx: { query(sql: string, params?: readonly unknown[]): Promise<unknown> },
  accountId: string,
  deviceId: number,
  now: number,
): Promise<void> {
  await tx.query(
    `INSERT INTO delivery_removed_queues (account_id, device_id, removed_at) VALUES ($1, $2, $3)
     ON CONFLICT (account_id, device_id) DO UPDATE SET removed_at = EXCLUDED.removed_at`,
    [accountId, deviceId, now],
  );
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
