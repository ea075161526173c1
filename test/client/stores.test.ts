/**
 * The KeyValueStore contract the client relies on, for the memory and the file store (the browser
 * test runs IndexedDB against the same expectations): prefix lists in key order, atomic batches,
 * values copied in and out; and for the file store, what survives a restart or a crash.
 */
import fc from 'fast-check';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Json, KeyValueStore } from '../../src/client/storage.js';
import { FileKeyValueStore, StoreLockedError } from '../../src/client/stores/file.js';
import { MemoryKeyValueStore } from '../../src/client/stores/memory.js';

const root = mkdtempSync(join(tmpdir(), 'gchat-stores-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `s${++dirs}`);
const diskBytes = (dir: string): number => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

const kinds: [string, () => KeyValueStore][] = [
  ['memory', () => new MemoryKeyValueStore()],
  ['file', () => FileKeyValueStore.open(freshDir())],
];

describe.each(kinds)('%s store', (_name, open) => {
  it('lists a prefix in key order, whatever order the keys were written in, and nothing else', async () => {
    const key = fc.stringMatching(/^[a-c]{1,2}\/[a-z0-9%/]{0,6}$/);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(key, fc.option(fc.integer(), { nil: undefined })), { maxLength: 60 }), fc.constantFrom('', 'a', 'a/', 'b/x', 'c'), async (ops, prefix) => {
        const kv = open();
        const model = new Map<string, number>();
        for (const [k, v] of ops) {
          await kv.write([[k, v]]);
          if (v === undefined) model.delete(k);
          else model.set(k, v);
        }
        const expected = [...model].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
        expect(await kv.list(prefix)).toEqual(expected);
        for (const [k, v] of model) expect(await kv.get(k)).toBe(v);
        await kv.close();
      }),
      { numRuns: 40 },
    );
  });

  it('copies values in and out: changing one after a write or a read changes nothing stored', async () => {
    const kv = open();
    const value = { list: [1, 2], nested: { a: 'x' } };
    await kv.write([['k', value]]);
    value.list.push(3);
    const read = (await kv.get('k')) as { list: number[] };
    read.list.push(4);
    ((await kv.list('k'))[0]![1] as { nested: { a: string } }).nested.a = 'y';
    expect(await kv.get('k')).toEqual({ list: [1, 2], nested: { a: 'x' } });
    await kv.close();
  });

  it('a batch writes and deletes together; a later op on the same key wins', async () => {
    const kv = open();
    await kv.write([['a', 1], ['b', 2]]);
    await kv.write([['a', undefined], ['c', 3], ['c', 4]]);
    expect(await kv.list('')).toEqual([['b', 2], ['c', 4]]);
    await kv.close();
  });
});

describe('file store across restarts', () => {
  const values = (n: number): [string, Json][] => Array.from({ length: n }, (_, i) => [`m/${String(i).padStart(5, '0')}`, { i, text: 'x'.repeat(600) }]);

  it('keeps every resolved write, through the log and through compactions', async () => {
    const dir = freshDir();
    let kv = FileKeyValueStore.open(dir);
    // More bytes than one log holds, so the snapshot is rewritten on the way.
    for (const op of values(2500)) await kv.write([op]);
    await kv.write([['m/00007', undefined]]);
    await kv.close();
    kv = FileKeyValueStore.open(dir);
    const listed = await kv.list('m/');
    expect(listed).toHaveLength(2499);
    expect(listed.slice(0, 8).map(([k]) => k)).toEqual(['m/00000', 'm/00001', 'm/00002', 'm/00003', 'm/00004', 'm/00005', 'm/00006', 'm/00008']);
    expect(await kv.get('m/02499')).toEqual({ i: 2499, text: 'x'.repeat(600) });
    await kv.write([['z', 'after reopen']]);
    expect((await kv.list('')).at(-1)).toEqual(['z', 'after reopen']);
    await kv.close();
  });

  it('lists every group in key order after a reopen, keys with escapes included', async () => {
    const dir = freshDir();
    let kv = FileKeyValueStore.open(dir);
    const written: [string, Json][] = [['b/2', 2], ['a', 0], ['ab/1', 1], ['a/"q"\\t', 'escaped'], ['b', 'bare'], ['a/1', 1]];
    for (const op of written) await kv.write([op]);
    await kv.compact();
    await kv.write([['c/1', 'in the log'], ['b/2', undefined]]);
    await kv.close();
    kv = FileKeyValueStore.open(dir);
    const expected = [...written.filter(([k]) => k !== 'b/2'), ['c/1', 'in the log'] as [string, Json]].sort(([x], [y]) => (x < y ? -1 : 1));
    expect(await kv.list('')).toEqual(expected);
    expect(await kv.list('a')).toEqual(expected.filter(([k]) => k.startsWith('a')));
    await kv.close();
  });

  it('reads a store written by the earlier one-object snapshot, and keeps it through the next fold', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ 'contacts/bob': { ak: 'x' }, identity: { userId: 'alice' } }));
    writeFileSync(join(dir, 'state.log'), JSON.stringify([['contacts/carol', { ak: 'y' }, 0]]) + '\n');
    let kv = FileKeyValueStore.open(dir);
    expect(await kv.list('contacts/')).toEqual([['contacts/bob', { ak: 'x' }], ['contacts/carol', { ak: 'y' }]]);
    await kv.compact();
    await kv.close();
    expect(existsSync(join(dir, 'state.json'))).toBe(false);
    kv = FileKeyValueStore.open(dir);
    expect(await kv.get('identity')).toEqual({ userId: 'alice' });
    expect((await kv.list('contacts/')).length).toBe(2);
    await kv.close();
  });

  it('a large group stays on disk until read, and writes made meanwhile (and replayed from the log) are not lost', async () => {
    const dir = freshDir();
    let kv = FileKeyValueStore.open(dir);
    await kv.write(values(600));
    await kv.write([['c/1', 'small']]);
    await kv.compact();
    await kv.close();
    kv = FileKeyValueStore.open(dir);
    await kv.write([['m/00001', undefined], ['m/99999', 'new'], ['c/2', 'small too']]);
    expect(await kv.list('c/')).toEqual([['c/1', 'small'], ['c/2', 'small too']]);
    await kv.close();
    kv = FileKeyValueStore.open(dir);
    const m = await kv.list('m/');
    expect(m).toHaveLength(600);
    expect(m.map(([k]) => k).slice(0, 2)).toEqual(['m/00000', 'm/00002']);
    expect(m.at(-1)).toEqual(['m/99999', 'new']);
    expect(await kv.get('m/00002')).toEqual({ i: 2, text: 'x'.repeat(600) });
    await kv.compact();
    await kv.close();
    kv = FileKeyValueStore.open(dir);
    expect(await kv.get('m/00001')).toBeUndefined();
    expect((await kv.list('')).length).toBe(602);
    await kv.close();
  });

  it('compacting after a large deletion gives the space back', async () => {
    const dir = freshDir();
    const kv = FileKeyValueStore.open(dir);
    for (let i = 0; i < 10; i++) await kv.write(values(500).map(([k, v]) => [`${k}/${i}`, v] as const));
    const full = diskBytes(dir);
    await kv.write((await kv.list('m/')).filter((_, i) => i % 10 !== 0).map(([k]) => [k, undefined] as const));
    await kv.compact();
    expect(diskBytes(dir)).toBeLessThan(full / 5);
    expect((await kv.list('m/')).length).toBe(500);
    await kv.close();
  });

  it('ignores a torn last line, a batch that never resolved, and keeps what came before', async () => {
    const dir = freshDir();
    let kv = FileKeyValueStore.open(dir);
    await kv.write([['a', 1]]);
    await kv.write([['b', 2]]);
    await kv.close();
    appendFileSync(join(dir, 'state.log'), '[["c",3,0],["a",nu');
    kv = FileKeyValueStore.open(dir);
    expect(await kv.list('')).toEqual([['a', 1], ['b', 2]]);
    await kv.close();
  });

  it('one process at a time: a second open of a held directory is refused', async () => {
    const dir = freshDir();
    const kv = FileKeyValueStore.open(dir);
    // The lock names a live process that is not this one.
    writeFileSync(join(dir, 'lock'), String(process.ppid));
    expect(() => FileKeyValueStore.open(dir)).toThrow(StoreLockedError);
    await kv.close();
  });
});
