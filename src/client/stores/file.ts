/**
 * A KeyValueStore in a directory (Node only): a snapshot file plus an append-only log of batches,
 * one JSON line each, fsynced before `write` resolves. Opening replays the log (a torn last line,
 * from a crash mid-append, is ignored: that batch never resolved); the log is folded into the
 * snapshot once it outgrows it. One process at a time holds the directory (a lock file).
 *
 * The snapshot holds one entry a line, `"key"<TAB>value`, and values stay JSON text in memory
 * until read: opening a store of 100k messages splits lines instead of parsing every value, so
 * the CLI starts fast however long the history (JSON never holds a raw tab, so the first tab ends
 * the key).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CompactingStore, Json, KeyValueStore, WriteOp } from '../storage.js';
import { lockDir } from './dir-lock.js';
import { OrderedMap } from './ordered-map.js';

const SNAPSHOT = 'state.lines';
/** The snapshot of earlier versions (one JSON object): read when there is no newer one. */
const OLD_SNAPSHOT = 'state.json';
const LOG = 'state.log';
/** The log is folded into the snapshot once it is larger than both this and the snapshot: each byte is rewritten a bounded number of times. */
const COMPACT_MIN_BYTES = 1 << 20;

/** Another process (or another open in this one) holds the directory. */
export { DirLockedError as StoreLockedError } from './dir-lock.js';

export class FileKeyValueStore implements KeyValueStore, CompactingStore {
  /** Values as JSON text. */
  private readonly data = new OrderedMap<string>();
  private logFd: number;
  private logBytes = 0;
  private snapshotBytes = 0;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly unlock: () => void,
  ) {
    this.load();
    this.logFd = openSync(join(dir, LOG), 'a');
    if (this.logBytes > Math.max(COMPACT_MIN_BYTES, this.snapshotBytes)) this.fold();
  }

  static open(dir: string): FileKeyValueStore {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const unlock = lockDir(dir);
    try {
      return new FileKeyValueStore(dir, unlock);
    } catch (e) {
      unlock();
      throw e;
    }
  }

  private load(): void {
    const snap = join(this.dir, SNAPSHOT);
    const old = join(this.dir, OLD_SNAPSHOT);
    if (existsSync(snap)) {
      const text = readFileSync(snap, 'utf8');
      this.snapshotBytes = Buffer.byteLength(text);
      this.data.load(snapshotEntries(text));
    } else if (existsSync(old)) {
      const text = readFileSync(old, 'utf8');
      this.snapshotBytes = Buffer.byteLength(text);
      this.data.load(Object.entries(JSON.parse(text) as Record<string, Json>).map(([k, v]) => [k, JSON.stringify(v)] as const));
    }
    const log = join(this.dir, LOG);
    if (!existsSync(log)) return;
    const text = readFileSync(log, 'utf8');
    this.logBytes = Buffer.byteLength(text);
    for (const line of text.split('\n')) {
      if (!line) continue;
      let ops: [string, Json | null, 0 | 1][];
      try {
        ops = JSON.parse(line) as [string, Json | null, 0 | 1][];
      } catch {
        break; // a torn tail: that write never completed
      }
      this.data.load(ops.map(([k, v, del]) => [k, del ? undefined : JSON.stringify(v)] as const));
    }
  }

  async get(key: string): Promise<Json | undefined> {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as Json);
  }

  async list(prefix: string): Promise<[string, Json][]> {
    return this.data.withPrefix(prefix).map(([k, v]) => [k, JSON.parse(v) as Json]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    if (!ops.length) return;
    const encoded = ops.map(([k, v]) => [k, v === undefined ? undefined : JSON.stringify(v)] as const);
    const line = `[${encoded.map(([k, v]) => (v === undefined ? `[${JSON.stringify(k)},null,1]` : `[${JSON.stringify(k)},${v},0]`)).join(',')}]\n`;
    this.logBytes += writeSync(this.logFd, line);
    fsyncSync(this.logFd);
    for (const [k, v] of encoded) {
      if (v === undefined) this.data.delete(k);
      else this.data.set(k, v);
    }
    if (this.logBytes > Math.max(COMPACT_MIN_BYTES, this.snapshotBytes)) this.fold();
  }

  /** Folds the log into the snapshot now (after a collection deleted much, say). */
  async compact(): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    this.fold();
  }

  /** Writes a new snapshot aside, fsyncs it, renames it over the old one, then empties the log. */
  private fold(): void {
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    let bytes = 0;
    let chunk: string[] = [];
    for (const [k, v] of this.data.entries()) {
      chunk.push(`${JSON.stringify(k)}\t${v}\n`);
      if (chunk.length >= 4096) {
        bytes += writeSync(fd, chunk.join(''));
        chunk = [];
      }
    }
    if (chunk.length) bytes += writeSync(fd, chunk.join(''));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.dir, SNAPSHOT));
    // The old format, if this store had it, is now superseded (the new snapshot is read first).
    if (existsSync(join(this.dir, OLD_SNAPSHOT))) unlinkSync(join(this.dir, OLD_SNAPSHOT));
    closeSync(this.logFd);
    this.logFd = openSync(join(this.dir, LOG), 'w');
    this.logBytes = 0;
    this.snapshotBytes = bytes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.logFd);
    this.unlock();
  }
}

/** The entries of a snapshot's text: values stay JSON text. */
function* snapshotEntries(text: string): Generator<readonly [string, string]> {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const tab = text.indexOf('\t', start);
    if (tab > start && tab < end) {
      const rawKey = text.slice(start, tab);
      // Keys are JSON strings; most hold no escape, and need no parse.
      const key = rawKey.includes('\\') ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
      yield [key, text.slice(tab + 1, end)];
    }
    start = end + 1;
  }
}
