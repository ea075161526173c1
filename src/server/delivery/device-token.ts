import { createHash } from 'node:crypto';
import type { SqlClient } from './sql.js';
import type { Sender } from './send-service.js';
import { deviceRef } from './queue-repository.js';

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
