/** SPKs, OPKs and PQPKs of each device, and the claims that hand them out once. */
import type { Tx } from '../db.js';
import type { DeviceRef, OneTimePrekeyRow, PqPrekeyRow, SignedPrekeyRow } from './entities.js';
import { bytes, num, valuesList } from './sql.js';

type Raw = Record<string, unknown>;

const spk = (r: Raw): SignedPrekeyRow => ({ id: num(r.spk_id), pub: bytes(r.pub), sig: bytes(r.sig) });
const opk = (r: Raw): OneTimePrekeyRow => ({ id: num(r.opk_id), pub: bytes(r.pub) });
const pqpk = (r: Raw): PqPrekeyRow => ({ id: num(r.pqpk_id), pub: bytes(r.pub), sig: bytes(r.sig), lastResort: r.last_resort === true });

/** Makes `key` the device's current SPK; the one it replaces is kept, marked replaced at `now`. */
export async function putSignedPrekey(tx: Tx, ref: DeviceRef, key: SignedPrekeyRow, now: Date): Promise<void> {
  await tx.query('UPDATE signed_prekeys SET replaced_at = $3 WHERE account_id = $1 AND device_id = $2 AND replaced_at IS NULL', [
    ref.accountId,
    ref.deviceId,
    now,
  ]);
  await tx.query('INSERT INTO signed_prekeys (account_id, device_id, spk_id, pub, sig, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
    ref.accountId,
    ref.deviceId,
    key.id,
    key.pub,
    key.sig,
    now,
  ]);
}

export async function currentSignedPrekey(tx: Tx, ref: DeviceRef): Promise<SignedPrekeyRow | null> {
  const r = await tx.query('SELECT spk_id, pub, sig FROM signed_prekeys WHERE account_id = $1 AND device_id = $2 AND replaced_at IS NULL', [
    ref.accountId,
    ref.deviceId,
  ]);
  return r.rows[0] ? spk(r.rows[0]) : null;
}

export async function insertOneTimePrekeys(tx: Tx, ref: DeviceRef, keys: readonly OneTimePrekeyRow[]): Promise<void> {
  if (keys.length === 0) return;
  const params = keys.flatMap((k) => [ref.accountId, ref.deviceId, k.id, k.pub]);
  await tx.query(`INSERT INTO one_time_prekeys (account_id, device_id, opk_id, pub) VALUES ${valuesList(keys.length, '(?, ?, ?, ?)')}`, params);
}

/** Makes `key` the device's last-resort PQPK; the one it replaces is kept, marked replaced at `now`. */
export async function putLastResortPqPrekey(tx: Tx, ref: DeviceRef, key: Omit<PqPrekeyRow, 'lastResort'>, now: Date): Promise<void> {
  await tx.query(
    'UPDATE pq_prekeys SET replaced_at = $3 WHERE account_id = $1 AND device_id = $2 AND last_resort AND replaced_at IS NULL',
    [ref.accountId, ref.deviceId, now],
  );
  await tx.query(
    'INSERT INTO pq_prekeys (account_id, device_id, pqpk_id, pub, sig, last_resort, created_at) VALUES ($1, $2, $3, $4, $5, TRUE, $6)',
    [ref.accountId, ref.deviceId, key.id, key.pub, key.sig, now],
  );
}

export async function insertOneTimePqPrekeys(tx: Tx, ref: DeviceRef, keys: readonly Omit<PqPrekeyRow, 'lastResort'>[], now: Date): Promise<void> {
  if (keys.length === 0) return;
  const params = keys.flatMap((k) => [ref.accountId, ref.deviceId, k.id, k.pub, k.sig, now]);
  const rows = valuesList(keys.length, '(?, ?, ?, ?, ?, FALSE, ?)');
  await tx.query(`INSERT INTO pq_prekeys (account_id, device_id, pqpk_id, pub, sig, last_resort, created_at) VALUES ${rows}`, params);
}

export async function currentLastResortPqPrekey(tx: Tx, ref: DeviceRef): Promise<PqPrekeyRow | null> {
  const r = await tx.query(
    'SELECT pqpk_id, pub, sig, last_resort FROM pq_prekeys WHERE account_id = $1 AND device_id = $2 AND last_resort AND replaced_at IS NULL',
    [ref.accountId, ref.deviceId],
  );
  return r.rows[0] ? pqpk(r.rows[0]) : null;
}

export async function countPrekeys(tx: Tx, ref: DeviceRef): Promise<{ opks: number; pqpks: number }> {
  const r = await tx.query(
    `SELECT (SELECT count(*) FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2) AS opks,
            (SELECT count(*) FROM pq_prekeys WHERE account_id = $1 AND device_id = $2 AND NOT last_resort) AS pqpks`,
    [ref.accountId, ref.deviceId],
  );
  const row = r.rows[0] ?? {};
  return { opks: num(row.opks), pqpks: num(row.pqpks) };
}

/** The ids of the device's OPKs and one-time PQPKs still on the server, ascending. */
export async function oneTimePrekeyIds(tx: Tx, ref: DeviceRef): Promise<{ opks: number[]; pqpks: number[] }> {
  const r = await tx.query(
    `SELECT 'opk' AS kind, opk_id AS id FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2
     UNION ALL
     SELECT 'pqpk', pqpk_id FROM pq_prekeys WHERE account_id = $1 AND device_id = $2 AND NOT last_resort
     ORDER BY kind, id`,
    [ref.accountId, ref.deviceId],
  );
  const out = { opks: [] as number[], pqpks: [] as number[] };
  for (const row of r.rows) (row.kind === 'opk' ? out.opks : out.pqpks).push(num(row.id));
  return out;
}

/**
 * Deletes and returns the device's lowest-numbered OPK, or null when none is left. Concurrent
 * claims skip rows another transaction has locked, so no two claims return the same key.
 */
export async function claimOneTimePrekey(tx: Tx, ref: DeviceRef): Promise<OneTimePrekeyRow | null> {
  const r = await tx.query(
    `DELETE FROM one_time_prekeys WHERE (account_id, device_id, opk_id) = (
       SELECT account_id, device_id, opk_id FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2
       ORDER BY opk_id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING opk_id, pub`,
    [ref.accountId, ref.deviceId],
  );
  return r.rows[0] ? opk(r.rows[0]) : null;
}

/** As claimOneTimePrekey, for one-time PQPKs. */
export async function claimOneTimePqPrekey(tx: Tx, ref: DeviceRef): Promise<PqPrekeyRow | null> {
  const r = await tx.query(
    `DELETE FROM pq_prekeys WHERE (account_id, device_id, pqpk_id) = (
       SELECT account_id, device_id, pqpk_id FROM pq_prekeys WHERE account_id = $1 AND device_id = $2 AND NOT last_resort
       ORDER BY pqpk_id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING pqpk_id, pub, sig, last_resort`,
    [ref.accountId, ref.deviceId],
  );
  return r.rows[0] ? pqpk(r.rows[0]) : null;
}

/** Deletes every prekey of a device (it was removed). */
export async function deleteDevicePrekeys(tx: Tx, ref: DeviceRef): Promise<void> {
  for (const table of ['signed_prekeys', 'one_time_prekeys', 'pq_prekeys']) {
    await tx.query(`DELETE FROM ${table} WHERE account_id = $1 AND device_id = $2`, [ref.accountId, ref.deviceId]);
  }
}

/** Deletes SPKs and last-resort PQPKs replaced before `cutoff`; returns how many of each. */
export async function deleteReplacedBefore(tx: Tx, cutoff: Date): Promise<{ spks: number; pqpks: number }> {
  const s = await tx.query('DELETE FROM signed_prekeys WHERE replaced_at < $1', [cutoff]);
  const p = await tx.query('DELETE FROM pq_prekeys WHERE replaced_at < $1', [cutoff]);
  return { spks: s.rowCount, pqpks: p.rowCount };
}
