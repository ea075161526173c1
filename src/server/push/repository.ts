/** The only SQL of the push side: registrations, wake-up claims, and the server's stored keys. */
import { num } from '../data/sql.js';
import type { SqlDatabase } from '../delivery/sql.js';
import type { PushKind, Registration } from './types.js';

interface Row {
  account_id: string;
  device_id: unknown;
  kind: PushKind;
  address: string;
  p256dh: string | null;
  auth: string | null;
  bundle: string | null;
}

const COLUMNS = 'account_id::text AS account_id, device_id, kind, address, p256dh, auth, bundle';

function registration(r: Row): Registration {
  return { accountId: r.account_id, deviceId: num(r.device_id), kind: r.kind, address: r.address, p256dh: r.p256dh, auth: r.auth, bundle: r.bundle };
}

export class PushRepository {
  constructor(private readonly db: SqlDatabase) {}

  /** Adds or replaces the device's registration of this kind (one per kind). */
  async put(reg: Registration): Promise<void> {
    await this.db.query(
      `INSERT INTO push_registrations (account_id, device_id, kind, address, p256dh, auth, bundle)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (account_id, device_id, kind) DO UPDATE
         SET address = EXCLUDED.address, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, bundle = EXCLUDED.bundle,
             created_at = now(), last_push_ms = 0`,
      [reg.accountId, reg.deviceId, reg.kind, reg.address, reg.p256dh, reg.auth, reg.bundle],
    );
  }

  async list(accountId: string, deviceId: number): Promise<Registration[]> {
    const rows = await this.db.query<Row>(`SELECT ${COLUMNS} FROM push_registrations WHERE account_id = $1 AND device_id = $2 ORDER BY kind`, [accountId, deviceId]);
    return rows.map(registration);
  }

  /** Answers whether there was one. */
  async remove(accountId: string, deviceId: number, kind: PushKind): Promise<boolean> {
    const rows = await this.db.query(`DELETE FROM push_registrations WHERE account_id = $1 AND device_id = $2 AND kind = $3 RETURNING 1 AS x`, [accountId, deviceId, kind]);
    return rows.length > 0;
  }

  /** Removes a registration the push service called dead, unless the device replaced it meanwhile. */
  async removeDead(reg: Registration): Promise<boolean> {
    const rows = await this.db.query(
      `DELETE FROM push_registrations WHERE account_id = $1 AND device_id = $2 AND kind = $3 AND address = $4 RETURNING 1 AS x`,
      [reg.accountId, reg.deviceId, reg.kind, reg.address],
    );
    return rows.length > 0;
  }

  /**
   * The registrations to wake among these envelopes' devices: only devices whose envelopes are
   * still queued (not acked, so no live connection took them), and, for non-urgent wake-ups,
   * only registrations not woken within `coalesceMs` (claimed in the same statement, so two
   * instances never both send one). VoIP registrations answer urgent wake-ups only.
   */
  async claim(envelopeIds: readonly string[], urgent: boolean, nowMs: number, coalesceMs: number): Promise<Registration[]> {
    if (envelopeIds.length === 0) return [];
    const waiting = `SELECT DISTINCT account_id, device_id FROM delivery_envelopes WHERE id = ANY($1::bigint[])`;
    if (urgent) {
      const rows = await this.db.query<Row>(
        `SELECT ${COLUMNS} FROM push_registrations r WHERE (r.account_id, r.device_id) IN (${waiting})`,
        [envelopeIds],
      );
      return rows.map(registration);
    }
    const rows = await this.db.query<Row>(
      `UPDATE push_registrations r SET last_push_ms = $2::bigint
       WHERE (r.account_id, r.device_id) IN (${waiting}) AND r.kind <> 'apns-voip' AND r.last_push_ms <= $2::bigint - $3::bigint
       RETURNING ${COLUMNS}`,
      [envelopeIds, nowMs, coalesceMs],
    );
    return rows.map(registration);
  }

  /** Removes every registration of a removed device. */
  async removeDevice(accountId: string, deviceId: number): Promise<void> {
    await this.db.query(`DELETE FROM push_registrations WHERE account_id = $1 AND device_id = $2`, [accountId, deviceId]);
  }

  /** The stored value of `name`, or `fresh` stored now when there is none (the first writer wins). */
  async serverKey(name: string, fresh: string): Promise<string> {
    await this.db.query(`INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [name, fresh]);
    const rows = await this.db.query<{ value: string }>(`SELECT value FROM server_keys WHERE name = $1`, [name]);
    const v = rows[0]?.value;
    if (v === undefined) throw new Error(`server key ${name} vanished`);
    return v;
  }
}
