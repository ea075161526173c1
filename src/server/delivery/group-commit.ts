/**
 * Group commit: callers submit items one by one; at most one batch runs at a time, and every
 * item that arrived while it ran goes into the next batch, so one transaction (one WAL flush)
 * serves many concurrent requests. Items keep their submission order across batches, which is
 * what keeps one sender's messages in order on one instance.
 */

export class BacklogFullError extends Error {
  override readonly name = 'BacklogFullError';
  constructor(readonly retryAfterMs: number) {
    super('too many operations waiting for a commit');
  }
}

export interface GroupCommitOptions {
  /** Most items in one batch (one transaction). */
  readonly maxBatch: number;
  /** Most items waiting (not yet in a running batch); past it submit() refuses. */
  readonly maxPending: number;
}

interface Pending<I, O> {
  readonly item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];

  /**
   * @param runBatch receives the items of one batch and answers one output per item, in order.
   *   Throwing fails every item of the batch.
   */
  constructor(
    private readonly runBatch: (items: readonly I[]) => Promise<readonly O[]>,
    private readonly opts: GroupCommitOptions,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    if (this.queue.length >= this.opts.maxPending) return Promise.reject(new BacklogFullError(100));
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  /** Resolves once nothing is queued or running (graceful shutdown). */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    this.running = true;
    // Let the current tick's submissions join the first batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      try {
        const out = await this.runBatch(batch.map((p) => p.item));
        if (out.length !== batch.length) throw new Error('group commit: one output per item expected');
        batch.forEach((p, i) => p.resolve(out[i] as O));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
