/**
 * The IndexedDB that crypto-wasm keeps its Olm/Megolm state in: the durable journaled store
 * (durable-idb.ts) in `dir`, installed as the global indexedDB (with every IDB* class: crypto-wasm
 * checks the classes of what it gets) before any OlmMachine starts. Olm accounts, sessions and
 * Megolm keys survive a restart or SIGKILL, so each ghost keeps its one device.
 */
import { openDurableIndexedDB, installGlobals } from './durable-idb.js';

export interface CryptoStore {
  indexedDB: IDBFactory;
  /** True when the state survives a restart (then existing devices are reused). */
  durable: boolean;
  /** Resolves when every committed write is on disk: call before anything leaves the process. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function openCryptoStore(dir: string): Promise<CryptoStore> {
  const db = await openDurableIndexedDB(dir);
  installGlobals(db);
  return { indexedDB: db.indexedDB, durable: true, flush: () => db.flush(), close: () => db.close() };
}
