/**
 * The delivery model's reads of Server I's tables (migrations/0001): the current devices of
 * accounts, for the device-list check of a send.
 */
import { createHash } from 'node:crypto';
import type { SqlClient } from './sql.js';
import type { DeviceDirectory, DeviceInfo, Sender } from './send-service.js';
import { deviceRef } from './queue-repository.js';

export class SqlDeviceDirectory implements DeviceDirectory {
  async devicesOf(tx: SqlClient, usernames: readonly string[]): Promise<Map<string, readonly DeviceInfo[]>> {
    const out = new Map<string, DeviceInfo[]>();
    if (usernames.length === 0) return out;
    const rows = await tx.query<{ username: string; account_id: string; device_id: string | null; ik: string | null }>(
      `SELECT a.username, a.id::text AS account_id, d.device_id::text AS device_id, encode(d.ik_pub, 'hex') AS ik
         FROM accounts a
         LEFT JOIN devices d ON d.account_id = a.id AND d.removed_at IS NULL
        WHERE a.username = ANY($1::text[])`,
      [usernames],
    );
    for (const r of rows) {
      let list = out.get(r.username);
      if (!list) out.set(r.username, (list = []));
      if (r.device_id === null || r.ik === null) continue;
      list.push({
        device: Number(r.device_id),
        ref: deviceRef(r.account_id, r.device_id),
        key: Buffer.from(r.ik, 'hex').toString('base64url'),
      });
    }
    return out;
  }
}

/**
 * Device-token authentication straight from the devices table (token_hash = SHA-256 of the token's
 * UTF-8 bytes). Used where Server I's own authenticate function is not wired in (tools, tests).
 */
export async function authenticateByTokenHash(db: SqlClient, token: string): Promise<Sender | null> {
  const hash = createHash('sha256').update(token, 'utf8').digest('hex');
  const rows = await db.query<{ username: string; account_id: string; device_id: string }>(
    `SELECT a.username, a.id::text AS account_id, d.device_id::text AS device_id
       FROM devices d JOIN accounts a ON a.id = d.account_id
      WHERE d.token_hash = decode($1, 'hex') AND d.removed_at IS NULL`,
    [hash],
  );
  const r = rows[0];
  return r ? { username: r.username, deviceRef: deviceRef(r.account_id, r.device_id), device: Number(r.device_id) } : null;
}
