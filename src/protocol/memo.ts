/**
 * A bounded memo for results derived from public keys that recur (a peer device's Mont(IK) and its
 * verified DeviceCert: every hourly session reset with that device needs them again). Oldest
 * entry out first once full; a hit moves an entry to the back.
 */
export class BoundedMemo<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.entries.get(key);
    if (v !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
