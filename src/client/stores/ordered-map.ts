/**
 * A Map whose keys are also kept sorted, so listing a prefix costs a binary search plus the
 * matches instead of a scan of the whole store: the outbox lists its prefix on every send, and a
 * store holds every message ever seen.
 */
export class OrderedMap<V> {
  private readonly map = new Map<string, V>();
  /** Sorted by UTF-16 code units, the order `list` promises; null after a bulk load, until needed. */
  private sorted: string[] | null = [];

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    if (!this.map.has(key) && this.sorted) this.sorted.splice(lowerBound(this.sorted, key), 0, key);
    this.map.set(key, value);
  }

  delete(key: string): void {
    if (this.map.delete(key) && this.sorted) this.sorted.splice(lowerBound(this.sorted, key), 1);
  }

  /** Many writes at once (a store opening): the order is rebuilt once, when first needed. */
  load(entries: Iterable<readonly [string, V | undefined]>): void {
    for (const [k, v] of entries) {
      if (v === undefined) this.map.delete(k);
      else this.map.set(k, v);
    }
    this.sorted = null;
  }

  /** Entries whose key starts with `prefix`, in key order. */
  withPrefix(prefix: string): [string, V][] {
    const keys = (this.sorted ??= [...this.map.keys()].sort());
    const out: [string, V][] = [];
    for (let i = lowerBound(keys, prefix); i < keys.length && keys[i]!.startsWith(prefix); i++) out.push([keys[i]!, this.map.get(keys[i]!)!]);
    return out;
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }
}

/** The first index whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
