/**
 * Group commit: callers submit items one by one; at most one batch runs at a time, and every
 * item that arrived while it ran goes into the next batch, so one commit (one WAL flush)
 * serves many concurrent requests. Items keep their submission order across batches, which is
 * what keeps one sender's messages in order on one instance.
 *
 * A batch shares one statement, so one bad item could fail everyone's: a failed batch of several
 * items is run again one item at a time, and only the items that fail alone are refused.
 */

export class BacklogFullError extends Error {
  override readonly name = 'BacklogFullError';
  constructor(readonly retryAfterMs: number) {
    super('too many operations waiting for a commit');
  }
}

export interface GroupCommitOptions {
  /** Most items in one batch. */
  readonly maxBatch: number;
  /** Most items waiting (not yet in a running batch); past it submit() refuses. */
  readonly maxPending: number;
  /**
   * Batches running at once (default 1). With 2, the next batch's reads overlap the previous
   * batch's write; runBatch must then order its own writes (SendService does).
   */
  readonly maxConcurrent?: number;
}

interface Pending<I, O> {
  readonly item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private running = 0;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  /**
   * @param runBatch receives the items of one batch and answers one output per item, in order.
   *   When it throws for a batch of several items, each item is run again alone, so that only
   *   the items that fail on their own are rejected.
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
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running (graceful shutdown). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async runChecked(items: readonly I[]): Promise<readonly O[]> {
    const out = await this.runBatch(items);
    if (out.length !== items.length) throw new Error('group commit: one output per item expected');
    return out;
  }

  private schedule(): void {
    if (this.scheduled || this.running >= (this.opts.maxConcurrent ?? 1) || this.queue.length === 0) return;
    this.scheduled = true;
    // Let the current tick's submissions join the batch.
    setImmediate(() => {
      this.scheduled = false;
      if (this.running >= (this.opts.maxConcurrent ?? 1) || this.queue.length === 0) return;
      void this.runOne(this.queue.splice(0, this.opts.maxBatch));
      this.schedule();
    });
  }

  private async runOne(batch: Pending<I, O>[]): Promise<void> {
    this.running++;
    try {
      const out = await this.runChecked(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(out[i] as O));
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err);
      // Alone, in order: the others succeed, the item at fault fails with its own error.
      else for (const p of batch) await this.runChecked([p.item]).then((out) => p.resolve(out[0] as O), (e: unknown) => p.reject(e));
    }
    this.running--;
    if (this.queue.length > 0) {
      this.schedule();
    } else if (this.running === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
