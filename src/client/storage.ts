/**
 * The client's persistence seam: a small key-value store with atomic batches. IndexedDB in the
 * browser, an append-only file in Node, memory in tests. Values are JSON.
 */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** One write of a batch: a value to put, or `undefined` to delete the key. */
export type WriteOp = readonly [key: string, value: Json | undefined];

export interface KeyValueStore {
  get(key: string): Promise<Json | undefined>;
  /** Every entry whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<[string, Json][]>;
  /** Applies all ops or none. */
  write(ops: readonly WriteOp[]): Promise<void>;
  close(): Promise<void>;
}

/** A store whose deleted entries keep taking space until it folds them away (the file store's log). */
export interface CompactingStore {
  /** Drops the space of deleted and overwritten entries now. */
  compact(): Promise<void>;
}

export function canCompact(kv: KeyValueStore): kv is KeyValueStore & CompactingStore {
  return typeof (kv as Partial<CompactingStore>).compact === 'function';
}

/** Buffers writes so several steps (a decrypt, the message it yields) land in one atomic batch. */
export class WriteBatch {
  private readonly ops = new Map<string, Json | undefined>();
  constructor(private readonly kv: KeyValueStore) {}

  put(key: string, value: Json): void {
    this.ops.set(key, value);
  }
  delete(key: string): void {
    this.ops.set(key, undefined);
  }
  /** Reads see this batch's own writes first. */
  async get(key: string): Promise<Json | undefined> {
    return this.ops.has(key) ? this.ops.get(key) : this.kv.get(key);
  }
  get size(): number {
    return this.ops.size;
  }
  async flush(): Promise<void> {
    if (!this.ops.size) return;
    const ops = [...this.ops];
    this.ops.clear();
    await this.kv.write(ops);
  }
}
