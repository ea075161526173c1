/**
 * Fixed-window counters in the rate_counters table (migration 0003), shared by every instance on
 * one database. A hit is one upsert that starts a new window when the old one has ended.
 */
import { num } from './sql.js';

/** A transaction (db.ts Tx) or the autocommit `Database.query`. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[]; rowCount: number }>;
}

export interface CounterHit {
  readonly bucket: string;
  /** Length of a new window, ms. */
  readonly windowMs: number;
}

export interface CounterState {
  /** Hits in the current window, this one included. */
  readonly hits: number;
  /** When the current window ends (ms since the epoch). */
  readonly endsAt: number;
}

/** Far below integer overflow; a window never needs to count further. */
const MAX_HITS = 1_000_000_000;

/**
 * Counts one hit on each bucket, in one statement. Buckets are upserted in sorted order, so two
 * statements that share buckets lock them in the same order and cannot deadlock.
 */
export async function hitCounters(q: Queryable, hits: readonly CounterHit[], now: number): Promise<Map<string, CounterState>> {
  const byBucket = new Map(hits.map((h) => [h.bucket, h.windowMs]));
  const buckets = [...byBucket.keys()].sort();
  const out = new Map<string, CounterState>();
  if (buckets.length === 0) return out;
  const r = await q.query<{ bucket: string; hits: unknown; ends_at: unknown }>(
    `INSERT INTO rate_counters AS c (bucket, hits, ends_at)
     SELECT b, 1, $2::bigint + w FROM unnest($1::text[], $3::bigint[]) AS u(b, w) ORDER BY b
     ON CONFLICT (bucket) DO UPDATE SET
       hits    = CASE WHEN c.ends_at <= $2 THEN 1 ELSE LEAST(c.hits + 1, ${MAX_HITS}) END,
       ends_at = CASE WHEN c.ends_at <= $2 THEN EXCLUDED.ends_at ELSE c.ends_at END
     RETURNING bucket, hits, ends_at`,
    [buckets, now, buckets.map((b) => byBucket.get(b)!)],
  );
  for (const row of r.rows) out.set(row.bucket, { hits: num(row.hits), endsAt: num(row.ends_at) });
  return out;
}

/** Takes back one hit from each bucket whose window is still open (an attempt that turned out not to count). */
export async function unhitCounters(q: Queryable, buckets: readonly string[], now: number): Promise<void> {
  if (buckets.length === 0) return;
  await q.query(
    `UPDATE rate_counters SET hits = GREATEST(hits - 1, 0)
      WHERE bucket IN (SELECT b FROM unnest($1::text[]) AS u(b) ORDER BY b) AND ends_at > $2`,
    [[...new Set(buckets)].sort(), now],
  );
}

/** Deletes up to `limit` counters whose window ended; answers how many. */
export async function deleteEndedCounters(q: Queryable, now: number, limit: number): Promise<number> {
  const r = await q.query(
    `DELETE FROM rate_counters WHERE bucket IN (SELECT bucket FROM rate_counters WHERE ends_at <= $1 LIMIT $2) AND ends_at <= $1`,
    [now, limit],
  );
  return r.rowCount;
}
