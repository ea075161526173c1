/**
 * A Map whose keys are also kept sorted, so listing a prefix costs a binary search plus the
 * matches instead of a scan of the whole store: the outbox lists its prefix on every send, and a
 * store holds every message ever seen. Keys are sorted per group (groupOf: one conversation's
 * messages, say), each group only once first listed: a command that lists its contacts does not
 * sort a hundred thousand message keys first.
 */
export class OrderedMap<V> {
  private readonly map = new Map<string, V>();
  /**
   * Per group, its keys sorted by UTF-16 code units (the order `list` promises). `clean` false:
   * they may also hold deleted keys and repeats (a delete only marks the group, so deleting most of
   * a large group costs one pass, not a splice each); `sorted` false: after a bulk load, unsorted
   * until first listed.
   */
  private readonly groups = new Map<string, Group>();

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    if (!this.map.has(key)) {
      const g = this.group(key);
      if (g.sorted) g.keys.splice(lowerBound(g.keys, key), 0, key);
      else g.keys.push(key);
    }
    this.map.set(key, value);
  }

  delete(key: string): void {
    if (!this.map.delete(key)) return;
    const g = this.group(key);
    g.clean = false;
    // Bounded: a group churned but never listed is cleaned once half of it is dead keys.
    if (++g.dead > 64 && g.dead * 2 > g.keys.length) this.clean(g);
  }

  /** Many writes at once (a store opening): each group's order is rebuilt once, when first listed. */
  load(entries: Iterable<readonly [string, V | undefined]>): void {
    for (const [k, v] of entries) {
      const g = this.group(k);
      g.sorted = false;
      g.clean = false;
      g.keys.push(k);
      if (v === undefined) this.map.delete(k);
      else this.map.set(k, v);
    }
  }

  /** Entries whose key starts with `prefix`, in key order. */
  withPrefix(prefix: string): [string, V][] {
    const out: [string, V][] = [];
    const names = [...this.groups.keys()].filter((g) => g.startsWith(prefix) || prefix.startsWith(g));
    for (const name of names) {
      const keys = this.sortedKeys(name);
      for (let i = lowerBound(keys, prefix); i < keys.length && keys[i]!.startsWith(prefix); i++) out.push([keys[i]!, this.map.get(keys[i]!)!]);
    }
    // Groups interleave ("outbox/id" sorts between "outbox/a.../" and "outbox/z.../"): merge them.
    if (names.length > 1) out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return out;
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  private group(key: string): Group {
    const name = groupOf(key);
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { keys: [], sorted: true, clean: true, dead: 0 }));
    return g;
  }

  private sortedKeys(name: string): string[] {
    const g = this.groups.get(name)!;
    if (!g.clean) this.clean(g);
    if (!g.sorted) {
      g.keys.sort();
      g.sorted = true;
    }
    return g.keys;
  }

  private clean(g: Group): void {
    g.keys = [...new Set(g.keys)].filter((k) => this.map.has(k));
    g.clean = true;
    g.dead = 0;
  }
}

interface Group {
  keys: string[];
  sorted: boolean;
  clean: boolean;
  /** Deletes since the group was last cleaned. */
  dead: number;
}

/**
 * A key's group: up to and including its second `/` (one conversation's messages, one sender's
 * dedup records), else its first, else the whole key.
 */
export function groupOf(key: string): string {
  const i = key.indexOf('/');
  if (i < 0) return key;
  const j = key.indexOf('/', i + 1);
  return key.slice(0, (j < 0 ? i : j) + 1);
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
