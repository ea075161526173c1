/**
 * The durable IndexedDB behind the bridge's crypto-wasm store: what a committed transaction leaves
 * on disk survives a crash, what was not committed does not, and one process at a time writes.
 * A crash is modelled by copying the directory at an instant (what a SIGKILL would leave: the
 * kernel keeps every completed write); the real SIGKILL loop with crypto-wasm is in
 * durable-idb-crash.test.ts.
 */
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirLockedError } from '../../src/client/stores/dir-lock.js';
import { installGlobals, openDurableIndexedDB, type DurableIndexedDB } from '../../bridge/src/crypto/durable-idb.js';
import { readFrames } from '../../bridge/src/crypto/framed-file.js';

const root = mkdtempSync(join(tmpdir(), 'gchat-durable-idb-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${++dirs}`);

/** What a SIGKILL at this instant would leave on disk, as a new directory. */
function crashCopy(dir: string): string {
  const copy = freshDir();
  cpSync(dir, copy, { recursive: true });
  return copy;
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('aborted'));
  });
}

function open(db: DurableIndexedDB, name: string, version?: number, upgrade?: (db: IDBDatabase, tx: IDBTransaction, old: number) => void): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = db.indexedDB.open(name, version);
    r.onupgradeneeded = (e) => upgrade?.(r.result, r.transaction!, e.oldVersion);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function all(conn: IDBDatabase, store: string): Promise<[IDBValidKey, unknown][]> {
  const tx = conn.transaction(store);
  const keys = await req(tx.objectStore(store).getAllKeys());
  const values = await req(tx.objectStore(store).getAll());
  return keys.map((k, i) => [k, values[i]]);
}

const schemaV1 = (conn: IDBDatabase) => {
  const kv = conn.createObjectStore('kv');
  kv.createIndex('byTag', 'tag');
  conn.createObjectStore('log', { keyPath: 'id', autoIncrement: true });
};

describe('durable IndexedDB', () => {
  it('keeps every committed transaction, with structured-clone values, across a crash', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    const conn = await open(db, 'app', 1, schemaV1);
    const value = { tag: 'x', bytes: new Uint8Array([1, 2, 3]), buf: new Uint8Array([9]).buffer, map: new Map([['a', 1]]), when: new Date(5), nested: [{ n: 1n }] };
    let tx = conn.transaction(['kv', 'log'], 'readwrite');
    tx.objectStore('kv').put(value, 'k1');
    tx.objectStore('kv').put({ tag: 'y' }, 'k2');
    tx.objectStore('kv').put({ tag: 'z' }, ['compound', 2]);
    tx.objectStore('log').add({ text: 'first' });
    tx.objectStore('log').add({ text: 'second' });
    await done(tx);
    tx = conn.transaction(['kv', 'log'], 'readwrite');
    tx.objectStore('kv').delete('k2');
    tx.objectStore('kv').put({ tag: 'y2' }, 'k3');
    tx.objectStore('kv').delete('k3'); // written and deleted in one transaction: absent
    tx.objectStore('log').delete(2); // the generator stays past 2 all the same
    await done(tx);

    const db2 = await openDurableIndexedDB(crashCopy(dir));
    const conn2 = await open(db2, 'app');
    expect(await all(conn2, 'kv')).toEqual([
      ['k1', value],
      [['compound', 2], { tag: 'z' }],
    ]);
    expect(await req(conn2.transaction('kv').objectStore('kv').index('byTag').getKey('z'))).toEqual(['compound', 2]);
    const t = conn2.transaction('log', 'readwrite');
    const id = await req(t.objectStore('log').add({ text: 'third' }));
    await done(t);
    expect(id).toBe(3);
    expect(await all(conn2, 'log')).toEqual([
      [1, { id: 1, text: 'first' }],
      [3, { id: 3, text: 'third' }],
    ]);
    conn.close();
    conn2.close();
    await db.close();
    await db2.close();
  });

  it('keeps nothing of an aborted or failed transaction, and a clear is a clear', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    const conn = await open(db, 'app', 1, schemaV1);
    let tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').put({ tag: 'a' }, 'a');
    tx.objectStore('kv').put({ tag: 'b' }, 'b');
    await done(tx);

    tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').put({ tag: 'lost' }, 'a');
    tx.objectStore('kv').put({ tag: 'lost' }, 'c');
    await req(tx.objectStore('kv').get('a'));
    tx.abort();
    await expect(done(tx)).rejects.toThrow();

    tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').put({ tag: 'lost' }, 'd');
    tx.objectStore('kv').add({ tag: 'dup' }, 'a'); // ConstraintError aborts the transaction
    await expect(done(tx)).rejects.toThrow();

    tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').clear();
    tx.objectStore('kv').put({ tag: 'after' }, 'e');
    await done(tx);

    const db2 = await openDurableIndexedDB(crashCopy(dir));
    const conn2 = await open(db2, 'app');
    expect(await all(conn2, 'kv')).toEqual([['e', { tag: 'after' }]]);
    conn.close();
    conn2.close();
    await db.close();
    await db2.close();
  });

  it('has the record on disk when complete fires', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    const conn = await open(db, 'app', 1, schemaV1);
    const records = () => readFrames(readFileSync(join(dir, 'journal'))).records.length;
    const before = records();
    for (let i = 0; i < 5; i++) {
      const tx = conn.transaction('kv', 'readwrite');
      tx.objectStore('kv').put({ tag: String(i) }, i);
      await done(tx);
      expect(records()).toBe(before + i + 1);
    }
    // A read-only transaction adds no record.
    await all(conn, 'kv');
    expect(records()).toBe(before + 5);
    conn.close();
    await db.close();
  });

  it('keeps schema upgrades: new and deleted stores and indexes, data moved in the upgrade', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    let conn = await open(db, 'app', 1, schemaV1);
    const tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').put({ tag: 'old' }, 'k');
    await done(tx);
    conn.close();
    conn = await open(db, 'app', 2, (c, upgrade) => {
      const moved = c.createObjectStore('kv2', { keyPath: 'key' });
      moved.createIndex('byTag', 'tag', { unique: true });
      upgrade.objectStore('kv').get('k').onsuccess = (e) => {
        moved.put({ key: 'k', ...((e.target as IDBRequest).result as object) });
        c.deleteObjectStore('kv');
      };
      c.deleteObjectStore('log');
    });
    expect(conn.version).toBe(2);
    conn.close();
    await open(db, 'other', 3, (c) => c.createObjectStore('s'));

    const db2 = await openDurableIndexedDB(crashCopy(dir));
    const conn2 = await open(db2, 'app');
    expect(conn2.version).toBe(2);
    expect(Array.from({ length: conn2.objectStoreNames.length }, (_, i) => conn2.objectStoreNames.item(i))).toEqual(['kv2']);
    expect(await req(conn2.transaction('kv2').objectStore('kv2').index('byTag').get('old'))).toEqual({ key: 'k', tag: 'old' });
    const dup = conn2.transaction('kv2', 'readwrite');
    dup.objectStore('kv2').put({ key: 'k2', tag: 'old' }); // the unique index came back unique
    await expect(done(dup)).rejects.toThrow();
    expect((await db2.indexedDB.databases()).sort((a, b) => a.name!.localeCompare(b.name!))).toEqual([
      { name: 'app', version: 2 },
      { name: 'other', version: 3 },
    ]);
    conn2.close();
    await db.close();
    await db2.close();
  });

  it('forgets a deleted database', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    (await open(db, 'gone', 1, schemaV1)).close();
    (await open(db, 'kept', 1, schemaV1)).close();
    await req(db.indexedDB.deleteDatabase('gone') as unknown as IDBRequest<undefined>);
    const db2 = await openDurableIndexedDB(crashCopy(dir));
    expect(await db2.indexedDB.databases()).toEqual([{ name: 'kept', version: 1 }]);
    await db.close();
    await db2.close();
  });

  it('ignores a torn last record and appends after the last whole one', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    const conn = await open(db, 'app', 1, schemaV1);
    const put = async (c: IDBDatabase, k: string) => {
      const tx = c.transaction('kv', 'readwrite');
      tx.objectStore('kv').put({ tag: k }, k);
      await done(tx);
    };
    await put(conn, 'one');
    await put(conn, 'two');
    const torn = crashCopy(dir);
    const journal = join(torn, 'journal');
    truncateSync(journal, statSync(journal).size - 3); // the crash cut the last append short

    const db2 = await openDurableIndexedDB(torn);
    const conn2 = await open(db2, 'app');
    expect((await all(conn2, 'kv')).map(([k]) => k)).toEqual(['one']);
    await put(conn2, 'three');
    const db3 = await openDurableIndexedDB(crashCopy(torn));
    const conn3 = await open(db3, 'app');
    expect((await all(conn3, 'kv')).map(([k]) => k)).toEqual(['one', 'three']);

    // Garbage that passes no checksum is a torn tail too, even a long one.
    const noisy = crashCopy(torn);
    writeFileSync(join(noisy, 'journal'), Buffer.concat([readFileSync(join(noisy, 'journal')), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5])]));
    const db4 = await openDurableIndexedDB(noisy);
    const conn4 = await open(db4, 'app');
    expect((await all(conn4, 'kv')).map(([k]) => k)).toEqual(['one', 'three']);
    for (const c of [conn, conn2, conn3, conn4]) c.close();
    for (const d of [db, db2, db3, db4]) await d.close();
  });

  it('snapshots every N records and restores snapshot plus journal; a journal older than the snapshot is ignored', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir, { snapshotEvery: 4 });
    const conn = await open(db, 'app', 1, schemaV1);
    for (let i = 0; i < 10; i++) {
      const tx = conn.transaction(['kv', 'log'], 'readwrite');
      tx.objectStore('kv').put({ tag: `v${i}`, bytes: new Uint8Array([i]) }, i % 6);
      tx.objectStore('log').add({ i });
      await done(tx);
    }
    await db.flush();
    // Snapshots run in the background once the store is quiet.
    await expect.poll(() => existsSync(join(dir, 'snapshot'))).toBe(true);
    const expectedKv = await all(conn, 'kv');
    const expectedLog = await all(conn, 'log');
    const restored = async (d: string) => {
      const db2 = await openDurableIndexedDB(d);
      const conn2 = await open(db2, 'app');
      expect(await all(conn2, 'kv')).toEqual(expectedKv);
      expect(await all(conn2, 'log')).toEqual(expectedLog);
      conn2.close();
      await db2.close();
    };
    await restored(crashCopy(dir));

    // A crash after a snapshot was renamed in but before its new journal: the old journal is stale.
    const beforeSnap = crashCopy(dir);
    await db.snapshot();
    const between = crashCopy(dir);
    cpSync(join(beforeSnap, 'journal'), join(between, 'journal'));
    await restored(between);
    const tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').delete(0);
    await done(tx);
    expect(readFrames(readFileSync(join(dir, 'journal'))).records.length).toBe(2); // header + the delete
    conn.close();
    await db.close();
  });

  it('refuses to start on a damaged snapshot instead of starting empty', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    (await open(db, 'app', 1, schemaV1)).close();
    await db.close();
    const snap = join(dir, 'snapshot');
    const bytes = readFileSync(snap);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(snap, bytes);
    await expect(openDurableIndexedDB(dir)).rejects.toThrow(/damaged/);
    // and the failed open released the lock
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('close snapshots, closes connections and releases the lock; a reopen has everything', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    const conn = await open(db, 'app', 1, schemaV1);
    const tx = conn.transaction('kv', 'readwrite');
    tx.objectStore('kv').put({ tag: 'kept' }, 'k');
    await done(tx);
    await db.close();
    expect(() => conn.transaction('kv')).toThrow();
    expect(() => db.indexedDB.open('app')).toThrow(/closed/);
    expect(readFrames(readFileSync(join(dir, 'journal'))).records.length).toBe(1);
    const db2 = await openDurableIndexedDB(dir);
    const conn2 = await open(db2, 'app');
    expect(await all(conn2, 'kv')).toEqual([['k', { tag: 'kept' }]]);
    conn2.close();
    await db2.close();
  });

  it('lets one process at a time write: a live holder is refused, a dead one is taken over', async () => {
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    await expect(openDurableIndexedDB(dir)).rejects.toThrow(DirLockedError);
    await db.close();

    const holder = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'hold-durable-idb.ts'), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      holder.on('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    });
    await expect(openDurableIndexedDB(dir)).rejects.toThrow(new RegExp(`in use by process ${holder.pid}`));
    const exited = new Promise((r) => holder.once('exit', r));
    holder.kill('SIGKILL');
    await exited;
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(holder.pid)); // left behind by the dead
    const db2 = await openDurableIndexedDB(dir);
    const conn = await open(db2, 'app');
    expect(await all(conn, 'kv')).toEqual([['held', { tag: 'by the holder' }]]);
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid));
    conn.close();
    await db2.close();
  });

  it("is where crypto-wasm keeps its state: a machine opened on a crash copy has the same identity", async () => {
    const sdk = await import('@matrix-org/matrix-sdk-crypto-wasm');
    await sdk.initAsync();
    const user = new sdk.UserId('@bridge:durable.test');
    const device = new sdk.DeviceId('BRIDGEDEVICE');
    const dir = freshDir();
    const db = await openDurableIndexedDB(dir);
    installGlobals(db);
    const machine = await sdk.OlmMachine.initialize(user, device, 'bridge', 'store passphrase');
    const identity = machine.identityKeys.ed25519.toBase64();
    await db.flush();
    const copy = crashCopy(dir);
    machine.close();
    await db.close();

    const db2 = await openDurableIndexedDB(copy);
    installGlobals(db2);
    expect((await db2.indexedDB.databases()).map((d) => d.name).sort()).toEqual(['bridge::matrix-sdk-crypto', 'bridge::matrix-sdk-crypto-meta']);
    const again = await sdk.OlmMachine.initialize(user, device, 'bridge', 'store passphrase');
    expect(again.identityKeys.ed25519.toBase64()).toBe(identity);
    again.close();
    await expect(sdk.OlmMachine.initialize(user, device, 'bridge', 'another passphrase')).rejects.toThrow();
    await db2.close();
  });

  it('after a crash at any byte of the journal, holds exactly the transactions committed before it (property)', async () => {
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ t: fc.constant('put' as const), k: fc.integer({ min: 0, max: 9 }), v: fc.integer() }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), lo: fc.integer({ min: 0, max: 9 }), hi: fc.integer({ min: 0, max: 9 }) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('clear' as const) }) },
    );
    const txs = fc.array(fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 5 }), abort: fc.boolean() }), { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(txs, fc.array(fc.nat(), { minLength: 3, maxLength: 3 }), async (plan, cuts) => {
        const dir = freshDir();
        const db = await openDurableIndexedDB(dir);
        const conn = await open(db, 'p', 1, (c) => c.createObjectStore('s'));
        const model = new Map<number, { v: number; b: Uint8Array }>();
        const stateOf = () => JSON.stringify([...model].sort(([a], [b]) => a - b));
        const states = [stateOf()];
        for (const { ops, abort } of plan) {
          const next = new Map(model);
          const tx = conn.transaction('s', 'readwrite');
          const s = tx.objectStore('s');
          for (const o of ops) {
            if (o.t === 'put') {
              const value = { v: o.v, b: new Uint8Array([o.k, o.v & 255]) };
              s.put(value, o.k);
              next.set(o.k, value);
            } else if (o.t === 'del') {
              s.delete(IDBKeyRangeOf(db, Math.min(o.lo, o.hi), Math.max(o.lo, o.hi)));
              for (const k of [...next.keys()]) if (k >= Math.min(o.lo, o.hi) && k <= Math.max(o.lo, o.hi)) next.delete(k);
            } else {
              s.clear();
              next.clear();
            }
          }
          if (abort) {
            tx.abort();
            await done(tx).catch(() => undefined);
            continue;
          }
          await done(tx);
          model.clear();
          for (const [k, v] of next) model.set(k, v);
          states.push(stateOf());
        }
        const journal = readFileSync(join(dir, 'journal'));
        for (const cut of [journal.length, ...cuts.map((c) => c % (journal.length + 1))]) {
          const copy = crashCopy(dir);
          truncateSync(join(copy, 'journal'), cut);
          const db2 = await openDurableIndexedDB(copy);
          const conn2 = await open(db2, 'p', 1, (c) => c.createObjectStore('s'));
          const state = JSON.stringify((await all(conn2, 's')) as [number, { v: number; b: Uint8Array }][]);
          if (cut === journal.length) expect(state).toBe(states.at(-1));
          else expect(states).toContain(state);
          conn2.close();
          await db2.close();
        }
        conn.close();
        await db.close();
      }),
      { numRuns: 20 },
    );
  });
});

function IDBKeyRangeOf(db: DurableIndexedDB, lo: number, hi: number): IDBKeyRange {
  return db.IDBKeyRange.bound(lo, hi);
}
