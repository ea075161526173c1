/**
 * A KeyValueStore in a directory (Node only): snapshot files plus an append-only log of batches,
 * one JSON line each, fsynced before `write` resolves. Opening replays the log (a torn last line,
 * from a crash mid-append, is ignored: that batch never resolved); the log is folded into the
 * snapshot once it outgrows a share of it. One process at a time holds the directory (a lock file).
 *
 * The snapshot is one file per group of keys (ordered-map.ts's groupOf: one conversation's
 * messages, one sender's dedup records, the contacts...), named in a manifest that a rename replaces atomically. Opening reads small
 * groups and leaves large ones on disk until a key of theirs is read, so a CLI command that lists
 * contacts does not read a hundred thousand messages first; a fold rewrites only the groups that
 * changed. A group file holds one entry a line, `"key"<TAB>value`; values stay JSON text in memory
 * until read (JSON never holds a raw tab, so the first tab ends the key).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CompactingStore, Json, KeyValueStore, WriteOp } from '../storage.js';
import { lockDir } from './dir-lock.js';
import { OrderedMap, groupOf } from './ordered-map.js';

const MANIFEST = 'state.manifest';
/** The one-object snapshot of earlier versions: read, then replaced by group files at open. */
const OLD_SNAPSHOT = 'state.json';
const LOG = 'state.log';
const GROUP_FILE = /^group-\d+-\d+\.lines$/;
/** The log is folded once larger than this and a quarter of the snapshot: each byte is rewritten a bounded number of times. */
const COMPACT_MIN_BYTES = 1 << 20;
/** Groups up to this size are read at open; larger ones when first needed. */
const EAGER_GROUP_BYTES = 256 * 1024;

/** Another process (or another open in this one) holds the directory. */
export { DirLockedError as StoreLockedError } from './dir-lock.js';

interface GroupFile {
  file: string;
  bytes: number;
}
interface Manifest {
  generation: number;
  groups: Record<string, GroupFile>;
}

export class FileKeyValueStore implements KeyValueStore, CompactingStore {
  /** Entries of the groups in memory, values as JSON text. */
  private readonly data = new OrderedMap<string>();
  private manifest: Manifest = { generation: 0, groups: {} };
  /** The manifest's group files in bytes, kept with it: every write compares the log against it. */
  private snapshotBytes = 0;
  /** Groups still on disk only, with the writes (log replay, new batches) that wait for their load. */
  private readonly unloaded = new Map<string, [string, string | undefined][]>();
  /** Groups changed since the last fold: the next fold rewrites them. */
  private readonly dirty = new Set<string>();
  private logFd: number;
  private logBytes = 0;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly unlock: () => void,
  ) {
    const migrate = this.load();
    this.logFd = openSync(join(dir, LOG), 'a');
    if (migrate || this.foldDue()) this.fold();
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

  /** Reads the manifest (or the old snapshot) and the log; true when the old snapshot was read. */
  private load(): boolean {
    let migrate = false;
    if (existsSync(join(this.dir, MANIFEST))) {
      this.useManifest(JSON.parse(readFileSync(join(this.dir, MANIFEST), 'utf8')) as Manifest);
      for (const [name, g] of Object.entries(this.manifest.groups)) {
        if (g.bytes <= EAGER_GROUP_BYTES) this.data.load(groupEntries(readFileSync(join(this.dir, g.file), 'utf8')));
        else this.unloaded.set(name, []);
      }
    } else if (existsSync(join(this.dir, OLD_SNAPSHOT))) {
      const old = JSON.parse(readFileSync(join(this.dir, OLD_SNAPSHOT), 'utf8')) as Record<string, Json>;
      this.apply(Object.entries(old).map(([k, v]) => [k, JSON.stringify(v)] as const));
      migrate = true;
    }
    const log = join(this.dir, LOG);
    if (!existsSync(log)) return migrate;
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
      this.apply(ops.map(([k, v, del]) => [k, del ? undefined : JSON.stringify(v)] as const));
    }
    return migrate;
  }

  /** Applies writes in memory, or queues them for a group still on disk. */
  private apply(ops: Iterable<readonly [string, string | undefined]>): void {
    for (const [k, v] of ops) {
      const g = groupOf(k);
      this.dirty.add(g);
      const waiting = this.unloaded.get(g);
      if (waiting) waiting.push([k, v]);
      else if (v === undefined) this.data.delete(k);
      else this.data.set(k, v);
    }
  }

  /** Brings a group that was left on disk into memory, with the writes made to it since. */
  private need(group: string): void {
    const waiting = this.unloaded.get(group);
    if (!waiting) return;
    this.unloaded.delete(group);
    const file = this.manifest.groups[group]!.file;
    this.data.load(groupEntries(readFileSync(join(this.dir, file), 'utf8')));
    this.data.load(waiting);
  }

  async get(key: string): Promise<Json | undefined> {
    this.need(groupOf(key));
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as Json);
  }

  async list(prefix: string): Promise<[string, Json][]> {
    for (const g of [...this.unloaded.keys()]) if (g.startsWith(prefix) || prefix.startsWith(g)) this.need(g);
    return this.data.withPrefix(prefix).map(([k, v]) => [k, JSON.parse(v) as Json]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    if (!ops.length) return;
    const encoded = ops.map(([k, v]) => [k, v === undefined ? undefined : JSON.stringify(v)] as const);
    const line = `[${encoded.map(([k, v]) => (v === undefined ? `[${JSON.stringify(k)},null,1]` : `[${JSON.stringify(k)},${v},0]`)).join(',')}]\n`;
    this.logBytes += writeSync(this.logFd, line);
    fsyncSync(this.logFd);
    this.apply(encoded);
    if (this.foldDue()) this.fold();
  }

  /** Folds the log into the snapshot now (after a collection deleted much, say). */
  async compact(): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    this.fold();
  }

  private useManifest(m: Manifest): void {
    this.manifest = m;
    this.snapshotBytes = Object.values(m.groups).reduce((n, g) => n + g.bytes, 0);
  }

  private foldDue(): boolean {
    return this.logBytes > Math.max(COMPACT_MIN_BYTES, this.snapshotBytes / 4);
  }

  /**
   * Writes the changed groups to new files (fsynced), then a new manifest aside and renamed over
   * the old one, then empties the log and removes the files no manifest names. A crash before the
   * rename leaves the old manifest, its files and the log; after it, the log replays onto the new
   * files, which already hold its writes (replaying them again changes nothing).
   */
  private fold(): void {
    const generation = this.manifest.generation + 1;
    const groups: Record<string, GroupFile> = {};
    for (const [name, g] of Object.entries(this.manifest.groups)) if (!this.dirty.has(name)) groups[name] = g;
    for (const g of this.dirty) this.need(g);
    const lines = new Map<string, string[]>();
    for (const [k, v] of this.data.entries()) {
      const g = groupOf(k);
      if (!this.dirty.has(g)) continue;
      let out = lines.get(g);
      if (!out) lines.set(g, (out = []));
      out.push(`${JSON.stringify(k)}\t${v}\n`);
    }
    let i = 0;
    for (const [name, out] of lines) {
      const file = `group-${generation}-${i++}.lines`;
      groups[name] = { file, bytes: writeFileSynced(join(this.dir, file), out) };
    }
    const next: Manifest = { generation, groups };
    const tmp = join(this.dir, `${MANIFEST}.tmp`);
    writeFileSynced(tmp, [JSON.stringify(next)]);
    renameSync(tmp, join(this.dir, MANIFEST));
    this.useManifest(next);
    this.dirty.clear();
    closeSync(this.logFd);
    this.logFd = openSync(join(this.dir, LOG), 'w');
    this.logBytes = 0;
    const named = new Set(Object.values(groups).map((g) => g.file));
    for (const f of readdirSync(this.dir)) if ((GROUP_FILE.test(f) && !named.has(f)) || f === OLD_SNAPSHOT) unlinkSync(join(this.dir, f));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.logFd);
    this.unlock();
  }
}

function writeFileSynced(path: string, chunks: readonly string[]): number {
  const fd = openSync(path, 'w', 0o600);
  let bytes = 0;
  try {
    for (let i = 0; i < chunks.length; i += 4096) bytes += writeSync(fd, chunks.slice(i, i + 4096).join(''));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** The entries of a group file's text: values stay JSON text. */
function* groupEntries(text: string): Generator<readonly [string, string]> {
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
