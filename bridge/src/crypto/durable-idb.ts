/**
 * IndexedDB that survives restarts and SIGKILL, for @matrix-org/matrix-sdk-crypto-wasm on Node.
 *
 * crypto-wasm keeps its Olm account and sessions in IndexedDB and cannot export them, so its
 * IndexedDB must be durable. This is fake-indexeddb (in memory) plus, in `dir`:
 * - `journal`: one framed record per committed readwrite transaction (the final value of every key
 *   it wrote), per committed upgrade (the whole database after it) and per deleted database. The
 *   record is written when the transaction commits, and its `complete` event is held back until
 *   an fsync covers it (group commit), so a caller that saw `complete` has its data on disk.
 * - `snapshot`: every database, written aside, fsynced and renamed in; it ends the journal it
 *   covers (the journal starts with the snapshot generation it follows, so a crash between the
 *   two steps leaves a stale journal that is ignored).
 * - `lock`: the pid of the one process that may write here.
 * Opening loads the snapshot and replays the journal, stopping at a torn last record.
 *
 * Usage with crypto-wasm (which reads the global `indexedDB` and checks `instanceof IDBRequest`
 * and friends against the globals):
 *   const db = await openDurableIndexedDB(dir);
 *   installGlobals(db);
 *   await initAsync();
 *   const machine = await OlmMachine.initialize(userId, deviceId, storeName, passphrase);
 *     (or, without a PBKDF2 of a second or more on every start: handle =
 *     await StoreHandle.openWithKey(storeName, key32); OlmMachine.initFromStore(userId, deviceId, handle))
 *   ...; await db.flush() before acting on a result outside the process (sending a request,
 *   acknowledging a transaction); machine.close(); await db.close();
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import * as fake from 'fake-indexeddb';
import { lockDir } from '../../../src/client/stores/dir-lock.js';
import { frame, readFrames, writeFileAtomic } from './framed-file.js';
import {
  applyChanges,
  changesOf,
  databasesOf,
  dumpDatabase,
  installHooks,
  newFactory,
  restoreDatabase,
  type CommitSink,
  type DatabaseDump,
  type RawTransaction,
  type StoreChange,
  type TxWrites,
} from './idb-internals.js';
import { JournalWriter } from './journal-writer.js';

export { DirLockedError } from '../../../src/client/stores/dir-lock.js';

export interface DurableIndexedDB {
  /** The factory to hand to IndexedDB users (see installGlobals for crypto-wasm). */
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  /** Resolves when every transaction committed so far is on disk. */
  flush(): Promise<void>;
  /** Writes a snapshot now and starts an empty journal (waits for running write transactions). */
  snapshot(): Promise<void>;
  /** Waits for running writes, snapshots, closes every connection and releases the lock. */
  close(): Promise<void>;
}

export interface DurableIndexedDBOptions {
  /** Journal records after which a snapshot is taken in the background (default 1000). */
  snapshotEvery?: number;
  /**
   * Called with a background snapshot failure (fatal false: the journal still holds everything)
   * or a journal write/fsync failure (fatal true: commits can no longer be made durable, the
   * process should exit and recover from disk). Default: a process warning for the first, an
   * uncaught exception for the second.
   */
  onError?: (error: Error, fatal: boolean) => void;
}

export class DurableStoreError extends Error {
  override readonly name = 'DurableStoreError';
}

const SNAPSHOT = 'snapshot';
const JOURNAL = 'journal';
const FORMAT = 1;
const POLL_MS = 2;
/** Journal size after which a snapshot is taken whatever the record count (upgrades journal whole databases). */
const SNAPSHOT_BYTES = 64 * 1024 * 1024;

type JournalRecord =
  | { t: 'header'; v: number; gen: number }
  | { t: 'tx'; db: string; changes: StoreChange[] }
  | { t: 'schema'; db: DatabaseDump }
  | { t: 'drop'; db: string };
interface SnapshotFile {
  v: number;
  gen: number;
  databases: DatabaseDump[];
}

function decode<T>(payload: Buffer, what: string): T {
  try {
    return deserialize(payload) as T;
  } catch (e) {
    throw new DurableStoreError(`${what} has a record that passes its checksum but does not decode: ${(e as Error).message}`);
  }
}

/** Writes a journal holding only its header (aside, then renamed in) and opens it for appending. */
function newJournal(path: string, gen: number): { fd: number; bytes: number } {
  const header = frame(serialize({ t: 'header', v: FORMAT, gen } satisfies JournalRecord));
  writeFileAtomic(path, header);
  return { fd: openSync(path, 'a', 0o600), bytes: header.length };
}

class DurableStore implements DurableIndexedDB, CommitSink {
  readonly indexedDB: IDBFactory;
  readonly IDBKeyRange = fake.IDBKeyRange;
  recording = false;
  private writer!: JournalWriter;
  private gen = 0;
  private sinceSnapshot = 0;
  private snapshotting: Promise<void> | undefined;
  private closed = false;
  private readonly snapshotEvery: number;

  constructor(
    private readonly dir: string,
    private readonly unlock: () => void,
    private readonly opts: DurableIndexedDBOptions,
  ) {
    this.indexedDB = newFactory(this);
    const every = opts.snapshotEvery ?? 1000;
    if (!Number.isInteger(every) || every < 1) throw new RangeError(`snapshotEvery must be a positive integer, got ${every}`);
    this.snapshotEvery = every;
  }

  async load(): Promise<void> {
    const snapPath = join(this.dir, SNAPSHOT);
    if (existsSync(snapPath)) {
      const buf = readFileSync(snapPath);
      const { records, validBytes } = readFrames(buf);
      if (records.length !== 1 || validBytes !== buf.length) {
        throw new DurableStoreError(`${snapPath} is damaged; refusing to start with an empty crypto store`);
      }
      const snap = decode<SnapshotFile>(records[0]!, snapPath);
      if (snap.v !== FORMAT) throw new DurableStoreError(`${snapPath} has format ${snap.v}, expected ${FORMAT}`);
      this.gen = snap.gen;
      for (const db of snap.databases) await restoreDatabase(this.indexedDB, db);
    }

    const journalPath = join(this.dir, JOURNAL);
    let fd: number | undefined;
    let bytes = 0;
    if (existsSync(journalPath)) {
      const buf = readFileSync(journalPath);
      const { records, validBytes } = readFrames(buf);
      const header = records[0] && decode<JournalRecord>(records[0], journalPath);
      if (header && (header.t !== 'header' || header.v !== FORMAT)) throw new DurableStoreError(`${journalPath} does not start with a format ${FORMAT} header`);
      if (header && header.gen > this.gen) {
        throw new DurableStoreError(`${journalPath} follows snapshot ${header.gen} but ${snapPath} is generation ${this.gen}: the snapshot is missing or old`);
      }
      if (header && header.gen === this.gen) {
        for (const payload of records.slice(1)) await this.replay(decode<JournalRecord>(payload, journalPath));
        this.sinceSnapshot = records.length - 1;
        fd = openSync(journalPath, 'a', 0o600);
        if (validBytes < buf.length) {
          ftruncateSync(fd, validBytes); // drop the torn tail so new records follow the last whole one
          fsyncSync(fd);
        }
        bytes = validBytes;
      }
      // A header older than the snapshot: the crash came after the snapshot and before the new journal.
    }
    if (fd === undefined) ({ fd, bytes } = newJournal(journalPath, this.gen));
    this.writer = new JournalWriter(fd, bytes);
    this.recording = true;
    if (this.sinceSnapshot >= this.snapshotEvery) this.snapshotInBackground();
  }

  private async replay(rec: JournalRecord): Promise<void> {
    switch (rec.t) {
      case 'tx':
        return applyChanges(this.indexedDB, rec.db, rec.changes);
      case 'schema':
        return restoreDatabase(this.indexedDB, rec.db);
      case 'drop':
        databasesOf(this.indexedDB).delete(rec.db);
        return;
      default:
        throw new DurableStoreError(`journal record of unknown type ${(rec as { t: unknown }).t}`);
    }
  }

  // ---- CommitSink: called by the hooked engine ----

  onCommit(tx: RawTransaction, writes: TxWrites | undefined, deliver: () => void): void {
    let rec: JournalRecord | undefined;
    if (tx.mode === 'versionchange') rec = { t: 'schema', db: dumpDatabase(tx.db._rawDatabase) };
    else if (tx.mode === 'readwrite' && writes?.size) rec = { t: 'tx', db: tx.db._rawDatabase.name, changes: changesOf(writes) };
    // A transaction that wrote nothing still waits for earlier records: it may have read their data.
    if (!rec && !this.writer.pending && !this.writer.failed) return deliver();
    let seq: number;
    try {
      seq = rec ? this.writer.append(serialize(rec)) : this.writer.written;
    } catch (e) {
      return this.fatal(e as Error);
    }
    this.writer.whenDurable(seq).then(deliver, (e: Error) => this.fatal(e));
    if (rec && (++this.sinceSnapshot >= this.snapshotEvery || this.writer.bytes >= SNAPSHOT_BYTES)) this.snapshotInBackground();
  }

  onDrop(name: string): void {
    try {
      const seq = this.writer.append(serialize({ t: 'drop', db: name } satisfies JournalRecord));
      this.writer.whenDurable(seq).catch((e: Error) => this.fatal(e));
    } catch (e) {
      this.fatal(e as Error);
    }
  }

  private fatal(e: Error): void {
    const err = new DurableStoreError(`crypto store journal in ${this.dir} failed; restart to recover from disk: ${e.message}`);
    if (this.opts.onError) this.opts.onError(err, true);
    else
      setImmediate(() => {
        throw err;
      });
  }

  // ---- snapshots ----

  private snapshotInBackground(): void {
    if (this.snapshotting || this.closed) return;
    this.snapshot().catch((e: Error) => {
      if (this.opts.onError) this.opts.onError(e, false);
      else process.emitWarning(`crypto store snapshot failed (the journal still has everything): ${e.message}`);
    });
  }

  /** No readwrite or upgrade transaction is running, and every journal record is on disk. */
  private async quiesce(): Promise<void> {
    for (;;) {
      await this.writer.whenDurable();
      const busy = [...databasesOf(this.indexedDB).values()].some((db) =>
        db.transactions.some((tx) => tx.mode !== 'readonly' && tx._state !== 'finished'),
      );
      if (!busy && this.writer.idle) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Runs synchronously once quiet, so no commit can come between the dump and the new journal. */
  private writeSnapshot(): void {
    const gen = this.gen + 1;
    const databases = [...databasesOf(this.indexedDB).values()].filter((db) => db.version > 0).map(dumpDatabase);
    writeFileAtomic(join(this.dir, SNAPSHOT), frame(serialize({ v: FORMAT, gen, databases } satisfies SnapshotFile)));
    const { fd, bytes } = newJournal(join(this.dir, JOURNAL), gen);
    closeSync(this.writer.replaceFile(fd, bytes));
    this.gen = gen;
    this.sinceSnapshot = 0;
  }

  snapshot(): Promise<void> {
    if (this.closed) return Promise.reject(new DurableStoreError('durable IndexedDB is closed'));
    this.snapshotting ??= (async () => {
      try {
        await this.quiesce();
        this.writeSnapshot();
      } finally {
        this.snapshotting = undefined;
      }
    })();
    return this.snapshotting;
  }

  flush(): Promise<void> {
    return this.writer.whenDurable();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.snapshotting?.catch(() => undefined);
    this.closed = true;
    await this.quiesce();
    const refuse = (): never => {
      throw new DurableStoreError('durable IndexedDB is closed');
    };
    Object.assign(this.indexedDB, { open: refuse, deleteDatabase: refuse });
    for (const db of databasesOf(this.indexedDB).values()) {
      for (const conn of db.connections) if (!conn._closed) fake.forceCloseDatabase(conn as unknown as typeof fake.IDBDatabase);
    }
    try {
      if (this.sinceSnapshot > 0) this.writeSnapshot();
    } finally {
      this.recording = false;
      closeSync(this.writer.replaceFile(-1, 0)); // -1: any later append fails loudly (EBADF)
      this.unlock();
    }
  }
}

/** Opens (creating if needed) the durable IndexedDB in `dir`; throws DirLockedError if another live process has it. */
export async function openDurableIndexedDB(dir: string, opts: DurableIndexedDBOptions = {}): Promise<DurableIndexedDB> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await installHooks();
  const unlock = lockDir(dir);
  try {
    const store = new DurableStore(dir, unlock, opts);
    await store.load();
    return store;
  } catch (e) {
    unlock();
    throw e;
  }
}

/**
 * Makes `db` the process's IndexedDB: crypto-wasm opens its stores through `globalThis.indexedDB`
 * and checks results with `instanceof IDBRequest`, `IDBDatabase`, `IDBCursor` (and friends), so
 * those globals must be fake-indexeddb's classes. Call before `OlmMachine.initialize`; one
 * durable IndexedDB per process (every OlmMachine of the process shares it, each under its own
 * store name).
 */
export function installGlobals(db: DurableIndexedDB): void {
  const globals: Record<string, unknown> = {
    indexedDB: db.indexedDB,
    IDBKeyRange: db.IDBKeyRange,
    IDBFactory: fake.IDBFactory,
    IDBDatabase: fake.IDBDatabase,
    IDBTransaction: fake.IDBTransaction,
    IDBObjectStore: fake.IDBObjectStore,
    IDBIndex: fake.IDBIndex,
    IDBCursor: fake.IDBCursor,
    IDBCursorWithValue: fake.IDBCursorWithValue,
    IDBRequest: fake.IDBRequest,
    IDBOpenDBRequest: fake.IDBOpenDBRequest,
    IDBVersionChangeEvent: fake.IDBVersionChangeEvent,
  };
  for (const [name, value] of Object.entries(globals)) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
}
