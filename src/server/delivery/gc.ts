/**
 * Garbage collection of the delivery tables: envelopes older than the retention, expired dedup
 * entries, and the queues of removed devices. Each step deletes at most GC_BATCH rows and claims
 * them with SKIP LOCKED, so any number of instances can run it at once; a run stops after
 * GC_MAX_BATCHES_PER_RUN steps per kind and the next run carries on.
 */
import type { QueueRepository } from './queue-repository.js';
import { GC_BATCH, GC_MAX_BATCHES_PER_RUN } from './limits.js';

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
}

export async function runGc(repo: QueueRepository, opts: GcOptions): Promise<GcReport> {
  const batch = opts.batch ?? GC_BATCH;
  const maxBatches = opts.maxBatches ?? GC_MAX_BATCHES_PER_RUN;
  let more = false;
  const drain = async (step: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (let i = 0; i < maxBatches; i++) {
      const n = await step();
      total += n;
      if (n < batch) return total;
    }
    more = true;
    return total;
  };
  const now = opts.now();
  const expiredEnvelopes = await drain(() => repo.deleteExpiredEnvelopes(now - opts.retentionMs, batch));
  const expiredSends = await drain(() => repo.deleteExpiredSends(now, batch));
  const orphanedEnvelopes = await drain(() => repo.deleteOrphans(batch));
  // Usage rows of queues emptied by the steps above and by acks (not reported: bookkeeping only).
  await drain(() => repo.deleteEmptyUsage(batch));
  return { expiredEnvelopes, expiredSends, orphanedEnvelopes, more };
}
