/**
 * SPEC §7: a replaced SPK (and a replaced last-resort PQPK) stays on the server 30 days after its
 * replacement, then this job deletes it.
 */
import { OLD_SPK_RETENTION_MS } from '../../protocol/limits.js';
import { deleteReplacedBefore } from '../data/prekeys.js';
import { loggableError } from '../errors.js';
import type { ServiceDeps } from './deps.js';

export async function deleteExpiredPrekeys(deps: Pick<ServiceDeps, 'db' | 'clock'>): Promise<{ spks: number; pqpks: number }> {
  const cutoff = new Date(deps.clock().getTime() - OLD_SPK_RETENTION_MS);
  return deps.db.transaction((tx) => deleteReplacedBefore(tx, cutoff));
}

/** Runs the job now and every `intervalMs`; the returned function stops it. */
export function schedulePrekeyGc(deps: Pick<ServiceDeps, 'db' | 'clock' | 'log'>, intervalMs: number): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const n = await deleteExpiredPrekeys(deps);
      if (n.spks + n.pqpks > 0) deps.log.info({ deleted: n }, 'deleted replaced prekeys past retention');
    } catch (err) {
      deps.log.error({ error: loggableError(err) }, 'prekey GC failed');
    } finally {
      running = false;
    }
  };
  void run();
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
