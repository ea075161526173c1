/**
 * The IndexedDB that crypto-wasm keeps its Olm/Megolm state in, installed as the global
 * indexedDB before any OlmMachine starts. Today: fake-indexeddb in memory (state is lost on exit,
 * so the bridge gives its ghosts new devices after a restart). The durable journaled store
 * (durable-idb.ts, `openDurableIndexedDB(dir)`) replaces it here in one line.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';

export interface CryptoStore {
  indexedDB: IDBFactory;
  /** True when the state survives a restart (then existing devices are reused). */
  durable: boolean;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function openCryptoStore(_dir: string): Promise<CryptoStore> {
  const indexedDB = new IDBFactory();
  const g = globalThis as unknown as { indexedDB: IDBFactory; IDBKeyRange: typeof IDBKeyRange };
  g.indexedDB = indexedDB;
  g.IDBKeyRange = IDBKeyRange;
  return { indexedDB, durable: false, flush: async () => undefined, close: async () => undefined };
}
