/**
 * Durable IndexedDB figures: commit latency of one small readwrite transaction at a time (each
 * waits for its fsync), throughput with many in flight (group commit), snapshot and reopen times.
 * Run: npx tsx scripts/bench-durable-idb.ts [DIR]   (DIR defaults to a temporary directory)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDurableIndexedDB } from '../bridge/src/crypto/durable-idb.js';
import { printMachine } from './bench/machine.js';

printMachine();
const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'bench-durable-idb-'));
const N = 500;
/** Transactions on different stores run side by side, so their records can share an fsync. */
const STORES = Array.from({ length: 8 }, (_, i) => `s${i}`);
const value = () => ({ pickle: crypto.getRandomValues(new Uint8Array(400)), when: Date.now() });

function openDb(factory: IDBFactory): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = factory.open('bench', 1);
    r.onupgradeneeded = () => STORES.forEach((s) => r.result.createObjectStore(s));
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
function put(conn: IDBDatabase, key: number): Promise<void> {
  const store = STORES[key % STORES.length]!;
  return new Promise((resolve, reject) => {
    const tx = conn.transaction(store, 'readwrite');
    tx.objectStore(store).put(value(), key);
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
}
const pct = (xs: number[], p: number) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

const db = await openDurableIndexedDB(dir, { snapshotEvery: 1_000_000 });
const conn = await openDb(db.indexedDB);
const lat: number[] = [];
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await put(conn, i);
  lat.push(performance.now() - t);
}
console.log(`${N} sequential commits (fsync each): ${(performance.now() - t0).toFixed(0)} ms; p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms`);
let t = performance.now();
for (let round = 0; round < N / 50; round++) await Promise.all(Array.from({ length: 50 }, (_, i) => put(conn, N + round * 50 + i)));
console.log(`${N} commits, 50 at a time over ${STORES.length} stores (group commit): ${(performance.now() - t).toFixed(0)} ms`);
t = performance.now();
await db.snapshot();
console.log(`snapshot of ${2 * N} records: ${(performance.now() - t).toFixed(1)} ms`);
conn.close();
await db.close();
t = performance.now();
const again = await openDurableIndexedDB(dir);
console.log(`reopen from snapshot: ${(performance.now() - t).toFixed(1)} ms`);
const c2 = await openDb(again.indexedDB);
for (let i = 0; i < N; i++) await put(c2, i);
c2.close();
// A journal of N records to replay: copy before close (close would fold it into a snapshot).
const copy = `${dir}-copy`;
const { cpSync } = await import('node:fs');
cpSync(dir, copy, { recursive: true });
await again.close();
t = performance.now();
const replayed = await openDurableIndexedDB(copy);
console.log(`reopen replaying ${N} journal records: ${(performance.now() - t).toFixed(1)} ms`);
await replayed.close();
if (!process.argv[2]) rmSync(dir, { recursive: true, force: true });
rmSync(copy, { recursive: true, force: true });
