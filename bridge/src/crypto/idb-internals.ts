/**
 * The parts of fake-indexeddb's in-memory engine that the durable store reads and hooks, typed
 * here because the package exports only the IndexedDB API. Checked against fake-indexeddb 6.2:
 * every write inside a transaction goes through the raw object store's `storeRecord`,
 * `deleteRecord` or `clear` with that transaction's rollback log, and a transaction reports its
 * commit by dispatching `complete` on itself.
 */
import { IDBFactory as FakeFactory, IDBKeyRange as FakeKeyRange, IDBTransaction as FakeTransaction } from 'fake-indexeddb';

export interface RawRecord {
  key: IDBValidKey;
  value: unknown;
}

export interface RawIndex {
  name: string;
  keyPath: string | string[];
  unique: boolean;
  multiEntry: boolean;
}

export interface RawObjectStore {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  keyGenerator: { num: number } | null;
  rawDatabase: RawDatabase;
  rawIndexes: Map<string, RawIndex>;
  records: { get(key: IDBValidKey): RawRecord | undefined; values(range?: IDBKeyRange): Iterable<RawRecord> };
  storeRecord(record: RawRecord, noOverwrite: boolean, rollbackLog?: unknown[]): IDBValidKey;
  deleteRecord(key: IDBValidKey | IDBKeyRange, rollbackLog?: unknown[]): void;
  clear(rollbackLog?: unknown[]): void;
}

export interface RawTransaction {
  mode: IDBTransactionMode;
  _state: 'active' | 'inactive' | 'committing' | 'finished';
  _rollbackLog: unknown[];
  db: { _rawDatabase: RawDatabase };
}

export interface RawDatabase {
  name: string;
  version: number;
  rawObjectStores: Map<string, RawObjectStore>;
  transactions: RawTransaction[];
  connections: (IDBDatabase & { _closed: boolean })[];
}

/** What one committed readwrite transaction changed in one object store. */
export interface StoreWrites {
  cleared: boolean;
  keys: IDBValidKey[];
  seen: Set<string>;
}
export type TxWrites = Map<RawObjectStore, StoreWrites>;

/** The durable store behind a factory's databases. */
export interface CommitSink {
  /** False while restoring from disk and after close: writes then are not journaled. */
  readonly recording: boolean;
  /** Called where fake-indexeddb would dispatch `complete`; `deliver` dispatches it. */
  onCommit(tx: RawTransaction, writes: TxWrites | undefined, deliver: () => void): void;
  /** Called when deleteDatabase removes a database. */
  onDrop(name: string): void;
}

const sinks = new WeakMap<RawDatabase, CommitSink>();
const writesByLog = new WeakMap<unknown[], TxWrites>();

/** A factory's database map that ties each database to the factory's sink. */
class OwnedDatabases extends Map<string, RawDatabase> {
  constructor(private readonly sink: CommitSink) {
    super();
  }
  override set(name: string, db: RawDatabase): this {
    sinks.set(db, this.sink);
    return super.set(name, db);
  }
  override delete(name: string): boolean {
    const had = super.delete(name);
    if (had && this.sink.recording) this.sink.onDrop(name);
    return had;
  }
}

export function databasesOf(factory: IDBFactory): Map<string, RawDatabase> {
  return (factory as unknown as { _databases: Map<string, RawDatabase> })._databases;
}

/** A fresh in-memory factory whose databases report their commits to `sink`. */
export function newFactory(sink: CommitSink): IDBFactory {
  const factory = new FakeFactory();
  (factory as unknown as { _databases: Map<string, RawDatabase> })._databases = new OwnedDatabases(sink);
  return factory;
}

function keyId(key: IDBValidKey): string | undefined {
  return typeof key === 'string' ? `s${key}` : typeof key === 'number' ? `n${key}` : undefined;
}

function noteWrite(store: RawObjectStore, rollbackLog: unknown[] | undefined, keys: IDBValidKey[] | 'clear'): void {
  // No rollback log: a rollback of an aborted transaction, or our own restore.
  if (!rollbackLog || !sinks.get(store.rawDatabase)?.recording) return;
  let tx = writesByLog.get(rollbackLog);
  if (!tx) writesByLog.set(rollbackLog, (tx = new Map()));
  let w = tx.get(store);
  if (!w) tx.set(store, (w = { cleared: false, keys: [], seen: new Set() }));
  if (keys === 'clear') {
    w.cleared = true;
    w.keys = [];
    w.seen.clear();
    return;
  }
  for (const key of keys) {
    const id = keyId(key);
    if (id !== undefined) {
      if (w.seen.has(id)) continue;
      w.seen.add(id);
    }
    w.keys.push(key);
  }
}

let hooked: Promise<void> | undefined;

/** Hooks fake-indexeddb's engine once per process (the raw store class is reached through an instance). */
export function installHooks(): Promise<void> {
  hooked ??= (async () => {
    const probe = new FakeFactory();
    const rawStore = await new Promise<RawObjectStore>((resolve, reject) => {
      const req = probe.open('probe', 1);
      let raw: RawObjectStore | undefined;
      req.onupgradeneeded = () => {
        raw = (req.result.createObjectStore('s') as unknown as { _rawObjectStore: RawObjectStore })._rawObjectStore;
      };
      req.onsuccess = () => {
        req.result.close();
        if (raw) resolve(raw);
        else reject(new Error('fake-indexeddb probe made no object store'));
      };
      req.onerror = () => reject(req.error ?? new Error('fake-indexeddb probe failed'));
    });
    const proto = Object.getPrototypeOf(rawStore) as RawObjectStore;
    const { storeRecord, deleteRecord, clear } = proto;
    if (typeof storeRecord !== 'function' || typeof deleteRecord !== 'function' || typeof clear !== 'function') {
      throw new Error('fake-indexeddb internals changed: raw object store methods not found');
    }
    proto.storeRecord = function (this: RawObjectStore, record, noOverwrite, rollbackLog) {
      const key = storeRecord.call(this, record, noOverwrite, rollbackLog);
      noteWrite(this, rollbackLog, [key]);
      return key;
    };
    proto.deleteRecord = function (this: RawObjectStore, key, rollbackLog) {
      if (rollbackLog && sinks.get(this.rawDatabase)?.recording) {
        const range = key instanceof FakeKeyRange ? key : FakeKeyRange.only(key);
        noteWrite(this, rollbackLog, Array.from(this.records.values(range), (r) => r.key));
      }
      deleteRecord.call(this, key, rollbackLog);
    };
    proto.clear = function (this: RawObjectStore, rollbackLog) {
      clear.call(this, rollbackLog);
      noteWrite(this, rollbackLog, 'clear');
    };
    const txProto = FakeTransaction.prototype as unknown as { dispatchEvent(e: Event): boolean };
    const dispatch = txProto.dispatchEvent;
    txProto.dispatchEvent = function (this: RawTransaction & { dispatchEvent(e: Event): boolean }, event: Event) {
      const sink = event.type === 'complete' ? sinks.get(this.db._rawDatabase) : undefined;
      if (!sink?.recording) return dispatch.call(this, event);
      sink.onCommit(this, writesByLog.get(this._rollbackLog), () => dispatch.call(this, event));
      return true;
    };
  })();
  return hooked;
}

// ---- dumps: a database as plain data, and back ----

export interface IndexDump {
  name: string;
  keyPath: string | string[];
  unique: boolean;
  multiEntry: boolean;
}
export interface StoreDump {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  generator: number | null;
  indexes: IndexDump[];
  records: [IDBValidKey, unknown][];
}
export interface DatabaseDump {
  name: string;
  version: number;
  stores: StoreDump[];
}
/** A readwrite transaction's effect on one store: its final value for every key it touched. */
export interface StoreChange {
  store: string;
  cleared: boolean;
  puts: [IDBValidKey, unknown][];
  deletes: IDBValidKey[];
  generator: number | null;
}

export function dumpDatabase(db: RawDatabase): DatabaseDump {
  return {
    name: db.name,
    version: db.version,
    stores: Array.from(db.rawObjectStores.values(), (s) => ({
      name: s.name,
      keyPath: s.keyPath,
      autoIncrement: s.autoIncrement,
      generator: s.keyGenerator ? s.keyGenerator.num : null,
      indexes: Array.from(s.rawIndexes.values(), (i) => ({ name: i.name, keyPath: i.keyPath, unique: i.unique, multiEntry: i.multiEntry })),
      records: Array.from(s.records.values(), (r) => [r.key, r.value] as [IDBValidKey, unknown]),
    })),
  };
}

export function changesOf(writes: TxWrites): StoreChange[] {
  return Array.from(writes, ([s, w]) => {
    const puts: [IDBValidKey, unknown][] = [];
    const deletes: IDBValidKey[] = [];
    for (const key of w.keys) {
      const r = s.records.get(key);
      if (r) puts.push([r.key, r.value]);
      else deletes.push(key);
    }
    return { store: s.name, cleared: w.cleared, puts, deletes, generator: s.keyGenerator ? s.keyGenerator.num : null };
  });
}

/** Builds `dump` in `factory` (not recording), replacing a database of the same name. */
export function restoreDatabase(factory: IDBFactory, dump: DatabaseDump): Promise<void> {
  databasesOf(factory).delete(dump.name);
  return new Promise((resolve, reject) => {
    const req = factory.open(dump.name, dump.version);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const s of dump.stores) {
        const os = db.createObjectStore(s.name, { keyPath: s.keyPath, autoIncrement: s.autoIncrement });
        const raw = (os as unknown as { _rawObjectStore: RawObjectStore })._rawObjectStore;
        for (const [key, value] of s.records) raw.storeRecord({ key, value }, false);
        if (raw.keyGenerator && s.generator !== null) raw.keyGenerator.num = s.generator;
        for (const i of s.indexes) os.createIndex(i.name, i.keyPath, { unique: i.unique, multiEntry: i.multiEntry });
      }
    };
    req.onsuccess = () => {
      req.result.close();
      resolve();
    };
    req.onerror = () => reject(req.error ?? new Error(`restoring database ${dump.name} failed`));
  });
}

/** Applies one journaled transaction to a restored database. */
export function applyChanges(factory: IDBFactory, dbName: string, changes: StoreChange[]): void {
  const db = databasesOf(factory).get(dbName);
  if (!db) throw new Error(`journal writes to database ${dbName}, which does not exist`);
  for (const c of changes) {
    const s = db.rawObjectStores.get(c.store);
    if (!s) throw new Error(`journal writes to object store ${dbName}/${c.store}, which does not exist`);
    if (c.cleared) s.clear();
    for (const [key, value] of c.puts) s.storeRecord({ key, value }, false);
    for (const key of c.deletes) s.deleteRecord(key);
    if (s.keyGenerator && c.generator !== null) s.keyGenerator.num = c.generator;
  }
}
