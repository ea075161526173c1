/**
 * The bridge's own database: embedded PGlite in the data dir by default, PostgreSQL by URL. A few
 * tables, plain SQL; the schema is created at start (idempotent).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

export type Row = Record<string, unknown>;

export interface Sql {
  query<R extends Row = Row>(text: string, params?: unknown[]): Promise<R[]>;
}

export interface BridgeDb extends Sql {
  /** Runs `fn` in one transaction: all of its writes land, or none. */
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const SCHEMA = [
  // Homeserver transactions already processed (idempotency across restarts).
  `CREATE TABLE IF NOT EXISTS as_txns (txn_id TEXT PRIMARY KEY, done_at BIGINT NOT NULL)`,
  // The encrypted key-value stores of the GChat devices the bridge holds, one per Matrix user.
  `CREATE TABLE IF NOT EXISTS gchat_kv (owner TEXT NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL, PRIMARY KEY (owner, key))`,
  `CREATE TABLE IF NOT EXISTS accounts (matrix_user TEXT PRIMARY KEY, gchat_user TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS portals (room_id TEXT PRIMARY KEY, matrix_user TEXT NOT NULL, gchat_user TEXT NOT NULL, encrypted BOOLEAN NOT NULL, UNIQUE (matrix_user, gchat_user))`,
  `CREATE TABLE IF NOT EXISTS management_rooms (room_id TEXT PRIMARY KEY, matrix_user TEXT NOT NULL)`,
  // Which Matrix event is which GChat message, both directions (replies, edits, receipts, no duplicates).
  `CREATE TABLE IF NOT EXISTS message_map (room_id TEXT NOT NULL, event_id TEXT NOT NULL, message_id TEXT NOT NULL, from_matrix BOOLEAN NOT NULL, PRIMARY KEY (room_id, message_id))`,
  `CREATE UNIQUE INDEX IF NOT EXISTS message_map_event ON message_map (room_id, event_id)`,
  // Encrypted events whose room key has not arrived yet, and the events of their room behind them (order).
  `CREATE TABLE IF NOT EXISTS pending_events (seq BIGSERIAL PRIMARY KEY, room_id TEXT NOT NULL, event_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL, first_seen BIGINT NOT NULL)`,
  // Per portal, the GChat ts up to which the Matrix user's read receipts were passed on (no re-marking).
  `CREATE TABLE IF NOT EXISTS read_marks (room_id TEXT PRIMARY KEY, ts BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ghost_devices (user_id TEXT PRIMARY KEY, crypto_device TEXT, display_name TEXT)`,
];

export async function openBridgeDb(opts: { url?: string; dataDir: string }): Promise<BridgeDb> {
  const db = opts.url ? postgresDb(opts.url) : await pgliteDb(join(opts.dataDir, 'db'));
  for (const s of SCHEMA) await db.query(s);
  return db;
}

async function pgliteDb(dir: string): Promise<BridgeDb> {
  mkdirSync(dir, { recursive: true });
  const lite = await PGlite.create(dir);
  const sql = (q: Pick<PGlite, 'query'>): Sql => ({ query: async <R extends Row>(t: string, p?: unknown[]) => (await q.query<R>(t, p)).rows });
  return {
    ...sql(lite),
    tx: (fn) => lite.transaction((t) => fn(sql(t))),
    close: () => lite.close(),
  };
}

function postgresDb(url: string): BridgeDb {
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  return {
    query: async <R extends Row>(t: string, p?: unknown[]) => (await pool.query<R>(t, p)).rows,
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const r = await fn({ query: async <R extends Row>(t: string, p?: unknown[]) => (await client.query<R>(t, p)).rows });
        await client.query('COMMIT');
        return r;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
