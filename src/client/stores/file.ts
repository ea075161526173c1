/**
 * A KeyValueStore in a directory (Node only): a snapshot file plus an append-only log of batches,
 * one JSON line each, fsynced before `write` resolves. Opening replays the log (a torn last line,
 * from a crash mid-append, is ignored: that batch never resolved); the log is folded into the
 * snapshot when it grows past a bound. One process at a time holds the directory (a lock file).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Json, KeyValueStore, WriteOp } from '../storage.js';
import { lockDir } from './dir-lock.js';
import { OrderedMap } from './ordered-map.js';

const SNAPSHOT = 'state.json';
const LOG = 'state.log';
/** Batches in the log before it is folded into the snapshot. */
const COMPACT_AFTER = 2000;

/** Another process (or another open in this one) holds the directory. */
export { DirLockedError as StoreLockedError } from './dir-lock.js';

export class FileKeyValueStore implements KeyValueStore {
  private readonly data = new OrderedMap<Json>();
  private logFd: number;
  private logged = 0;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly unlock: () => void,
  ) {
    this.load();
    this.logFd = openSync(join(dir, LOG), 'a');
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
    if (existsSync(snap)) this.data.load(Object.entries(JSON.parse(readFileSync(snap, 'utf8')) as Record<string, Json>));
    const log = join(this.dir, LOG);
    if (!existsSync(log)) return;
    const lines = readFileSync(log, 'utf8').split('\n');
    for (const line of lines) {
      if (!line) continue;
      let ops: [string, Json | null, 0 | 1][];
      try {
        ops = JSON.parse(line) as [string, Json | null, 0 | 1][];
      } catch {
        break; // a torn tail: that write never completed
      }
      this.data.load(ops.map(([k, v, del]) => [k, del ? undefined : (v as Json)] as const));
      this.logged++;
    }
  }

  async get(key: string): Promise<Json | undefined> {
    const v = this.data.get(key);
    return v === undefined ? undefined : structuredClone(v);
  }

  async list(prefix: string): Promise<[string, Json][]> {
    return this.data.withPrefix(prefix).map(([k, v]) => [k, structuredClone(v)]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    if (!ops.length) return;
    const line = JSON.stringify(ops.map(([k, v]) => (v === undefined ? [k, null, 1] : [k, v, 0]))) + '\n';
    writeSync(this.logFd, line);
    fsyncSync(this.logFd);
    for (const [k, v] of ops) {
      if (v === undefined) this.data.delete(k);
      else this.data.set(k, structuredClone(v));
    }
    if (++this.logged >= COMPACT_AFTER) this.compact();
  }

  /** Folds the log into a new snapshot (written aside, fsynced, renamed over the old one). */
  private compact(): void {
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    writeSync(fd, JSON.stringify(Object.fromEntries(this.data.entries())));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.dir, SNAPSHOT));
    closeSync(this.logFd);
    this.logFd = openSync(join(this.dir, LOG), 'w');
    this.logged = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.logFd);
    this.unlock();
  }
}
