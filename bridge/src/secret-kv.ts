/**
 * The GChat client's KeyValueStore on the bridge database, one namespace per Matrix user, every
 * value sealed with AES-256-GCM under the configured secrets key (the key name is bound as
 * associated data, so a value cannot be moved to another key or owner).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Json, KeyValueStore, WriteOp } from '../../src/client/storage.js';
import { BoundedMemo } from '../../src/protocol/memo.js';
import type { BridgeDb } from './db.js';

/** Opened values kept per store (least recently used dropped first). */
export const SEALED_KV_CACHE_ENTRIES = 2_000;

/**
 * Reads are served from a bounded cache of opened values, written through: the client's receive
 * and send paths read the same few keys (sessions, contacts, seen ids) for every message, and each
 * read was a database round trip plus an AES-GCM open. Only this process writes the namespace (the
 * bridge holds its data-dir lock), so the cache cannot go stale behind its back.
 */
export class SealedKeyValueStore implements KeyValueStore {
  /** Opened values by key (`value` undefined: known to be absent). */
  private readonly cache = new BoundedMemo<{ value: Json | undefined }>(SEALED_KV_CACHE_ENTRIES);
  /** Counts writes: a read that a write overtook is returned but not cached. */
  private writes = 0;

  constructor(
    private readonly db: BridgeDb,
    private readonly owner: string,
    private readonly key: Buffer,
  ) {
    if (key.length !== 32) throw new Error('the secrets key must be 32 bytes');
  }

  private seal(k: string, v: Json): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(`${this.owner}\0${k}`));
    const ct = Buffer.concat([c.update(JSON.stringify(v), 'utf8'), c.final()]);
    return Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64');
  }

  private open(k: string, sealed: string): Json {
    const b = Buffer.from(sealed, 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, b.subarray(0, 12));
    d.setAAD(Buffer.from(`${this.owner}\0${k}`));
    d.setAuthTag(b.subarray(b.length - 16));
    return JSON.parse(Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]).toString('utf8')) as Json;
  }

  async get(key: string): Promise<Json | undefined> {
    const hit = this.cache.get(key);
    if (hit) return structuredClone(hit.value);
    const before = this.writes;
    const [row] = await this.db.query<{ value: string }>('SELECT value FROM gchat_kv WHERE owner = $1 AND key = $2', [this.owner, key]);
    const v = row ? this.open(key, row.value) : undefined;
    if (this.writes === before) this.cache.set(key, { value: structuredClone(v) });
    return v;
  }

  async list(prefix: string): Promise<[string, Json][]> {
    // Range on the primary key: keys >= prefix and < prefix + U+FFFF (no LIKE escaping needed).
    const rows = await this.db.query<{ key: string; value: string }>('SELECT key, value FROM gchat_kv WHERE owner = $1 AND key >= $2 AND key < $3 ORDER BY key', [this.owner, prefix, `${prefix}\uffff`]);
    return rows.filter((r) => r.key.startsWith(prefix)).map((r) => [r.key, this.open(r.key, r.value)]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    // The last op per key wins; then puts and deletes are disjoint and go out as one statement
    // each (every statement is a round trip to the database, and writes sit on the send path).
    const last = new Map<string, Json | undefined>();
    for (const [k, v] of ops) last.set(k, v);
    const puts: string[] = [];
    const dels: string[] = [];
    const params: string[] = [this.owner];
    for (const [k, v] of last) {
      if (v === undefined) dels.push(k);
      else {
        params.push(k, this.seal(k, v));
        puts.push(`($1, $${params.length - 1}, $${params.length})`);
      }
    }
    const statements: [string, unknown[]][] = [];
    if (dels.length) statements.push(['DELETE FROM gchat_kv WHERE owner = $1 AND key = ANY($2::text[])', [this.owner, dels]]);
    if (puts.length) statements.push([`INSERT INTO gchat_kv (owner, key, value) VALUES ${puts.join(', ')} ON CONFLICT (owner, key) DO UPDATE SET value = EXCLUDED.value`, params]);
    if (!statements.length) return;
    this.writes++;
    for (const k of last.keys()) this.cache.delete(k); // a failed write leaves no cached guess behind
    // One statement is atomic on its own; two need a transaction.
    if (statements.length === 1) await this.db.query(...statements[0]!);
    else
      await this.db.tx(async (sql) => {
        for (const [text, p] of statements) await sql.query(text, p);
      });
    this.writes++;
    for (const [k, v] of last) this.cache.set(k, { value: structuredClone(v) });
  }

  async close(): Promise<void> {}
}
