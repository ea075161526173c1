import type { Json, KeyValueStore, WriteOp } from '../storage.js';
import { OrderedMap } from './ordered-map.js';

/** A KeyValueStore in memory. Values are copied in and out, as a real store would. */
export class MemoryKeyValueStore implements KeyValueStore {
  private readonly data = new OrderedMap<string>();

  async get(key: string): Promise<Json | undefined> {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as Json);
  }
  async list(prefix: string): Promise<[string, Json][]> {
    return this.data.withPrefix(prefix).map(([k, v]) => [k, JSON.parse(v) as Json]);
  }
  async write(ops: readonly WriteOp[]): Promise<void> {
    const encoded = ops.map(([k, v]) => [k, v === undefined ? undefined : JSON.stringify(v)] as const);
    for (const [k, v] of encoded) {
      if (v === undefined) this.data.delete(k);
      else this.data.set(k, v);
    }
  }
  async close(): Promise<void> {}
}
