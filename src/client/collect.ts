/**
 * Collection of what the client keeps only for envelopes still on their way: the receiver's dedup
 * records (`seen/`, SPEC §6) and the private halves of one-time prekeys the server has handed out
 * (claimed OPKs and one-time PQPKs, SPEC §3). Without it both grow with every message and every
 * claim, forever. Each lives as long as an envelope that needs it can still arrive, measured on
 * this device's clock from when the device learnt of it:
 *
 * - a copy of a message is accepted by the server at most one retention after the first copy (the
 *   sender's outbox gives up then, and the server's dedup entry lasts that long), then waits at
 *   most one retention in a queue;
 * - a prekey message that uses a claimed key is sealed after the claim, accepted within the
 *   sender's outbox retention, then waits at most one retention.
 *
 * Hence two retentions, plus a day for clocks that disagree (the sender's outbox runs on its own)
 * and for the server's GC interval. The retention is the server's (its key status says it), else
 * the server default. Collection runs only once this run has read its queue (client.ts), so what
 * waited while the device was off is read before a key it needs goes.
 */
import { keys, type StoredPqPrekey, type StoredPrekey } from './state.js';
import { canCompact, type Json, type KeyValueStore, type WriteOp } from './storage.js';
import type { PrekeyStatus } from './transport/api.js';

/** The server's default GCHAT_MESSAGE_RETENTION_SECONDS, for a server that does not say its own. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000;
/** Slack for clocks that disagree and for the server's GC interval. */
export const CLOCK_MARGIN_MS = 24 * 3600 * 1000;

/** How long a dedup record or a claimed key's private half is kept, for a server retention. */
export const keepFor = (retentionMs: number): number => 2 * retentionMs + CLOCK_MARGIN_MS;

/** Deletions in one collection past which the store is compacted at once. */
const COMPACT_AFTER_DELETES = 1000;

export interface Collected {
  seen: number;
  opks: number;
  pqpks: number;
}

/**
 * Write ops that stamp `goneAt` on the stored one-time keys the server no longer holds, and keep
 * the retention it told. Only ids up to the server's highest are judged: a key above it is not
 * uploaded yet (the upkeep that read this status may be uploading it).
 */
export async function noteServerState(kv: KeyValueStore, status: PrekeyStatus, now: number): Promise<WriteOp[]> {
  const ops: WriteOp[] = [];
  if (status.retentionMs !== null && (await kv.get(keys.serverRetention)) !== status.retentionMs) ops.push([keys.serverRetention, status.retentionMs]);
  const held = status.oneTimeIds;
  if (!held) return ops;
  const opks = new Set(held.opks);
  for (const [key, v] of await kv.list(keys.opkPrefix)) {
    const k = v as unknown as StoredPrekey;
    if (k.goneAt == null && k.id <= status.maxIds.opk && !opks.has(k.id)) ops.push([key, { ...k, goneAt: now } as unknown as Json]);
  }
  const pqpks = new Set(held.pqpks);
  for (const [key, v] of await kv.list(keys.pqpkPrefix)) {
    const k = v as unknown as StoredPqPrekey;
    if (k.oneTime && k.goneAt == null && k.id <= status.maxIds.pqpk && !pqpks.has(k.id)) ops.push([key, { ...k, goneAt: now } as unknown as Json]);
  }
  return ops;
}

/** The retention to size lifetimes by: the server's last word, else its default. */
export async function knownRetention(kv: KeyValueStore): Promise<number> {
  const v = await kv.get(keys.serverRetention);
  return typeof v === 'number' && v > 0 ? v : DEFAULT_RETENTION_MS;
}

/** Deletes the dedup records and claimed keys past their lifetime, in one write. */
export async function collectExpired(kv: KeyValueStore, now: number): Promise<Collected> {
  const cutoff = now - keepFor(await knownRetention(kv));
  const ops: WriteOp[] = [];
  const done: Collected = { seen: 0, opks: 0, pqpks: 0 };
  for (const [key, v] of await kv.list(keys.seenPrefix)) {
    const at = (v as { at?: unknown }).at;
    if (typeof at === 'number' && at <= cutoff) {
      ops.push([key, undefined]);
      done.seen++;
    }
  }
  for (const [prefix, kind] of [
    [keys.opkPrefix, 'opks'],
    [keys.pqpkPrefix, 'pqpks'],
  ] as const) {
    for (const [key, v] of await kv.list(prefix)) {
      const goneAt = (v as { goneAt?: number | null }).goneAt;
      if (goneAt != null && goneAt <= cutoff) {
        ops.push([key, undefined]);
        done[kind]++;
      }
    }
  }
  if (ops.length) await kv.write(ops);
  // A long history's first collection frees much: give the space back now, not at the next fold.
  if (ops.length >= COMPACT_AFTER_DELETES && canCompact(kv)) await kv.compact();
  return done;
}
