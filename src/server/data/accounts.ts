/** Accounts, devices, tokens and the key backup blob. */
import type { Tx } from '../db.js';
import type { AccountRow, BackupRow, DeviceRef, DeviceRow, TokenOwnerRow } from './entities.js';
import { bytes, date, num } from './sql.js';

type Raw = Record<string, unknown>;

function account(r: Raw): AccountRow {
  return {
    id: String(r.id),
    username: String(r.username),
    passwordHash: String(r.password_hash),
    akPub: bytes(r.ak_pub),
    nextDeviceId: num(r.next_device_id),
  };
}

function device(r: Raw): DeviceRow {
  return {
    accountId: String(r.account_id),
    deviceId: num(r.device_id),
    ikPub: bytes(r.ik_pub),
    deviceCert: bytes(r.device_cert),
    maxSpkId: num(r.max_spk_id),
    maxOpkId: num(r.max_opk_id),
    maxPqpkId: num(r.max_pqpk_id),
    createdAt: date(r.created_at),
  };
}

const ACCOUNT_COLUMNS = 'id, username, password_hash, ak_pub, next_device_id';
const DEVICE_COLUMNS = 'account_id, device_id, ik_pub, device_cert, max_spk_id, max_opk_id, max_pqpk_id, created_at';

/** Creates the account; null when the username is taken. */
export async function insertAccount(
  tx: Tx,
  a: { username: string; passwordHash: string; akPub: Uint8Array; nextDeviceId: number; now: Date },
): Promise<AccountRow | null> {
  const r = await tx.query(
    `INSERT INTO accounts (username, password_hash, ak_pub, next_device_id, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (username) DO NOTHING RETURNING ${ACCOUNT_COLUMNS}`,
    [a.username, a.passwordHash, a.akPub, a.nextDeviceId, a.now],
  );
  return r.rows[0] ? account(r.rows[0]) : null;
}

/** `forUpdate` locks the row until the transaction ends (serialises device id assignment). */
export async function findAccount(tx: Tx, username: string, opts: { forUpdate?: boolean } = {}): Promise<AccountRow | null> {
  const r = await tx.query(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE username = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [username]);
  return r.rows[0] ? account(r.rows[0]) : null;
}

export async function setNextDeviceId(tx: Tx, accountId: string, next: number): Promise<void> {
  await tx.query('UPDATE accounts SET next_device_id = $2 WHERE id = $1', [accountId, next]);
}

export async function insertDevice(
  tx: Tx,
  d: DeviceRef & { ikPub: Uint8Array; deviceCert: Uint8Array; tokenHash: Uint8Array; maxSpkId: number; maxOpkId: number; maxPqpkId: number; now: Date },
): Promise<void> {
  await tx.query(
    `INSERT INTO devices (account_id, device_id, ik_pub, device_cert, token_hash, max_spk_id, max_opk_id, max_pqpk_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [d.accountId, d.deviceId, d.ikPub, d.deviceCert, d.tokenHash, d.maxSpkId, d.maxOpkId, d.maxPqpkId, d.now],
  );
}

/** The account's devices that are not removed, by device id. */
export async function listDevices(tx: Tx, accountId: string): Promise<DeviceRow[]> {
  const r = await tx.query(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE account_id = $1 AND removed_at IS NULL ORDER BY device_id`, [accountId]);
  return r.rows.map(device);
}

/** A device that is not removed; `forUpdate` locks it (serialises its key uploads). */
export async function findDevice(tx: Tx, ref: DeviceRef, opts: { forUpdate?: boolean } = {}): Promise<DeviceRow | null> {
  const r = await tx.query(
    `SELECT ${DEVICE_COLUMNS} FROM devices WHERE account_id = $1 AND device_id = $2 AND removed_at IS NULL${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [ref.accountId, ref.deviceId],
  );
  return r.rows[0] ? device(r.rows[0]) : null;
}

export async function findTokenOwner(tx: Tx, tokenHash: Uint8Array): Promise<TokenOwnerRow | null> {
  const r = await tx.query(
    `SELECT d.account_id, a.username, d.device_id, d.token_hash FROM devices d JOIN accounts a ON a.id = d.account_id
     WHERE d.token_hash = $1 AND d.removed_at IS NULL`,
    [tokenHash],
  );
  const row = r.rows[0];
  if (!row) return null;
  return { accountId: String(row.account_id), username: String(row.username), deviceId: num(row.device_id), tokenHash: bytes(row.token_hash) };
}

export async function setMaxPrekeyIds(tx: Tx, ref: DeviceRef, ids: { spk: number; opk: number; pqpk: number }): Promise<void> {
  await tx.query('UPDATE devices SET max_spk_id = $3, max_opk_id = $4, max_pqpk_id = $5 WHERE account_id = $1 AND device_id = $2', [
    ref.accountId,
    ref.deviceId,
    ids.spk,
    ids.opk,
    ids.pqpk,
  ]);
}

/** Marks the device removed and forgets its token; false if it was not an active device. */
export async function markDeviceRemoved(tx: Tx, ref: DeviceRef, now: Date): Promise<boolean> {
  const r = await tx.query(
    'UPDATE devices SET removed_at = $3, token_hash = NULL WHERE account_id = $1 AND device_id = $2 AND removed_at IS NULL',
    [ref.accountId, ref.deviceId, now],
  );
  return r.rowCount === 1;
}

export async function setBackup(tx: Tx, accountId: string, blob: Uint8Array, now: Date): Promise<void> {
  await tx.query('UPDATE accounts SET backup = $2, backup_updated_at = $3 WHERE id = $1', [accountId, blob, now]);
}

export async function getBackup(tx: Tx, accountId: string): Promise<BackupRow | null> {
  const r = await tx.query('SELECT backup, backup_updated_at FROM accounts WHERE id = $1 AND backup IS NOT NULL', [accountId]);
  const row = r.rows[0];
  return row ? { blob: bytes(row.backup), updatedAt: date(row.backup_updated_at) } : null;
}
