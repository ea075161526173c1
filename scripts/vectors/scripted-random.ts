import { systemRandom, type RandomSource } from '../../src/protocol/primitives.js';

/** A RandomSource that hands out the given values first, in order, then real randomness. */
export class ScriptedRandom {
  private queue: Uint8Array[] = [];
  readonly source: RandomSource = (n) => {
    const next = this.queue.shift();
    if (!next) return systemRandom(n);
    if (next.length !== n) throw new Error(`scripted randomness of ${next.length} bytes where ${n} were drawn`);
    return next.slice();
  };
  script(...values: (Uint8Array | null | undefined)[]): void {
    this.queue = values.filter((v): v is Uint8Array => v instanceof Uint8Array);
  }
  get pending(): number {
    return this.queue.length;
  }
}
