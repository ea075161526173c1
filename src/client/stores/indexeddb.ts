/**
 * A KeyValueStore in the browser's IndexedDB: one object store of JSON values by string key. A
 * batch is one readwrite transaction, so it lands whole or not at all; `list` is a key range scan.
 */
import type { Json, KeyValueStore, WriteOp } from '../storage.js';

const STORE = 'kv';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export class IndexedDbKeyValueStore implements KeyValueStore {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the database `name`; one per device. */
  static async open(name: string, factory: IDBFactory = globalThis.indexedDB): Promise<IndexedDbKeyValueStore> {
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    return new IndexedDbKeyValueStore(await request(req));
  }

  async get(key: string): Promise<Json | undefined> {
    const v = await request(this.db.transaction(STORE, 'readonly').objectStore(STORE).get(key));
    return v === undefined ? undefined : (v as Json);
  }

  async list(prefix: string): Promise<[string, Json][]> {
    const store = this.db.transaction(STORE, 'readonly').objectStore(STORE);
    // Every key that starts with `prefix` sorts between it and prefix + U+FFFF.
    const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
    const [keys, values] = await Promise.all([request(store.getAllKeys(range)), request(store.getAll(range))]);
    return keys.map((k, i) => [String(k), values[i] as Json]);
  }

  write(ops: readonly WriteOp[]): Promise<void> {
    if (!ops.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction(STORE, 'readwrite', { durability: 'strict' });
      const store = tx.objectStore(STORE);
      for (const [k, v] of ops) {
        if (v === undefined) store.delete(k);
        else store.put(v, k);
      }
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
