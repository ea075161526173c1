/**
 * Garbage collection of the delivery tables: envelopes older than the retention, expired dedup
 * entries, and the queues of removed devices. Each step deletes at most GC_BATCH rows and claims
 * them with SKIP LOCKED, so any number of instances can run it at once; a run stops after
 * GC_MAX_BATCHES_PER_RUN steps per kind and the next run carries on. Between two full steps the
 * run pauses for as long as the last step took times GC_PAUSE_RATIO, so that a large collection
 * (a million envelopes expiring at once) leaves the database to the sends half of the time
 * instead of queueing them behind back-to-back deletes.
 */
import type { GcStep, QueueRepository } from './queue-repository.js';
import { GC_BATCH, GC_MAX_BATCHES_PER_RUN, GC_PAUSE_RATIO, REMOVED_QUEUE_GRACE_MS } from './limits.js';

export interface GcReport {
  readonly expiredEnvelopes: number;
  readonly expiredSends: number;
  readonly orphanedEnvelopes: number;
  /** True when a kind hit the per-run bound and rows may remain. */
  readonly more: boolean;
}

export interface GcOptions {
  readonly retentionMs: number;
  readonly now: () => number;
  readonly batch?: number;
  readonly maxBatches?: number;
  /** Pause after a full step, as a multiple of the time it took (0: none). */
  readonly pauseRatio?: number;
}

export async function runGc(repo: QueueRepository, opts: GcOptions): Promise<GcReport> {
  const batch = opts.batch ?? GC_BATCH;
  const maxBatches = opts.maxBatches ?? GC_MAX_BATCHES_PER_RUN;
  const pauseRatio = opts.pauseRatio ?? GC_PAUSE_RATIO;
  let more = false;
  /** Runs `step` until it deletes less than a batch; each step starts where the last one ended. */
  const drain = async (step: (after: string) => Promise<GcStep>): Promise<number> => {
    let total = 0;
    let after = '0';
    for (let i = 0; i < maxBatches; i++) {
      const started = performance.now();
      const r = await step(after);
      total += r.n;
      after = r.last;
      if (r.n < batch) return total;
      if (pauseRatio > 0) await sleep((performance.now() - started) * pauseRatio);
    }
    more = true;
    return total;
  };
  const counted = (step: () => Promise<number>) => async (): Promise<GcStep> => ({ n: await step(), last: '0' });
  const now = opts.now();
  const expiredEnvelopes = await drain((after) => repo.deleteExpiredEnvelopes(now - opts.retentionMs, batch, after));
  const expiredSends = await drain((after) => repo.deleteExpiredSends(now, batch, after));
  const orphanedEnvelopes = await drain(counted(() => repo.deleteOrphans(batch)));
  await repo.forgetCollectedQueues(now - REMOVED_QUEUE_GRACE_MS);
  // Usage rows of queues emptied by the steps above and by acks (not reported: bookkeeping only).
  await drain(counted(() => repo.deleteEmptyUsage(batch)));
  return { expiredEnvelopes, expiredSends, orphanedEnvelopes, more };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
