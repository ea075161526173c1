/**
 * The IndexedDB that crypto-wasm keeps its Olm/Megolm state in, installed as the global indexedDB
 * (with every IDB* class: crypto-wasm checks the classes of what it gets) before any OlmMachine
 * starts. Today: fake-indexeddb in memory, so the state is lost on exit and the bridge gives its
 * ghosts new devices after a restart. The durable journaled store (durable-idb.ts,
 * `openDurableIndexedDB(dir)`) replaces it here in one line.
 */
import * as fake from 'fake-indexeddb';

export interface CryptoStore {
  indexedDB: IDBFactory;
  /** True when the state survives a restart (then existing devices are reused). */
  durable: boolean;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function openCryptoStore(_dir: string): Promise<CryptoStore> {
  const g = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(fake)) if (name.startsWith('IDB')) g[name] = value;
  const indexedDB = new fake.IDBFactory();
  g.indexedDB = indexedDB;
  return { indexedDB, durable: false, flush: async () => undefined, close: async () => undefined };
}
