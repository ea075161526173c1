import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeDb, openBridgeDb } from '../../bridge/src/db.js';
import { SealedKeyValueStore } from '../../bridge/src/secret-kv.js';

describe('the sealed key-value store on the bridge database', () => {
  let dir: string;
  let db: BridgeDb;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-kv-'));
    db = await openBridgeDb({ dataDir: dir });
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies a batch of puts and deletes, the last op per key winning, owners kept apart', async () => {
    const key = randomBytes(32);
    const a = new SealedKeyValueStore(db, 'a', key);
    const b = new SealedKeyValueStore(db, 'b', key);
    await a.write([['x/1', { n: 1 }], ['x/2', { n: 2 }], ['x/3', 'three']]);
    await b.write([['x/1', 'other owner']]);
    await a.write([['x/1', undefined], ['x/2', { n: 22 }], ['x/2', undefined], ['x/3', undefined], ['x/3', [3]], ['x/4', null]]);
    expect(await a.list('x/')).toEqual([['x/3', [3]], ['x/4', null]]);
    expect(await a.get('x/1')).toBeUndefined();
    expect(await b.get('x/1')).toBe('other owner');
    await a.write([]);
    await a.write([['x/3', undefined], ['x/4', undefined]]);
    expect(await a.list('x/')).toEqual([]);
  });

  it('writes nothing of a batch that fails', async () => {
    const a = new SealedKeyValueStore(db, 'c', randomBytes(32));
    await a.write([['k', 1]]);
    // A value JSON cannot hold makes the batch throw before anything is written.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(a.write([['k', undefined], ['j', cyclic as never]])).rejects.toThrow();
    expect(await a.get('k')).toBe(1);
    expect(await a.get('j')).toBeUndefined();
  });

  it('reads what was last written, through its cache, and a caller changing a value read changes nothing stored', async () => {
    const key = randomBytes(32);
    const a = new SealedKeyValueStore(db, 'd', key);
    await a.write([['s', { n: 1 }]]);
    const read = (await a.get('s')) as { n: number };
    read.n = 99;
    expect(await a.get('s')).toEqual({ n: 1 });
    await a.write([['s', { n: 2 }]]);
    expect(await a.get('s')).toEqual({ n: 2 });
    await a.write([['s', undefined]]);
    expect(await a.get('s')).toBeUndefined();
    await a.write([['s', { n: 3 }]]);
    // A fresh store (a restarted bridge) reads the same from the database.
    expect(await new SealedKeyValueStore(db, 'd', key).get('s')).toEqual({ n: 3 });
  });
});
