/**
 * The data source: migrations build the same schema on both databases, run once, and PGlite's one
 * connection is shared by transactions one at a time, so a rollback never undoes another's commit.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Tx } from '../../src/server/db.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';

await describeEachDatabase('data source', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('has applied every migration once; running them again applies nothing', async () => {
    expect(await t.db.migrate()).toEqual([]);
    const tables = await t.db.transaction((tx) =>
      tx.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"),
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['accounts', 'devices', 'signed_prekeys', 'one_time_prekeys', 'pq_prekeys', 'migrations']));
  });

  it('keeps concurrent commits when other transactions roll back', async () => {
    await t.db.transaction((tx) => tx.query('CREATE TABLE scratch (n int PRIMARY KEY)'));
    const work = (n: number) =>
      t.db.transaction(async (tx: Tx) => {
        await tx.query('INSERT INTO scratch (n) VALUES ($1)', [n]);
        await new Promise((r) => setTimeout(r, n % 3));
        await tx.query('SELECT count(*) FROM scratch');
        if (n % 2 === 1) throw new Error('roll back');
      });
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, n) => work(n)));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(30);
    const kept = await t.db.transaction((tx) => tx.query<{ n: number }>('SELECT n FROM scratch ORDER BY n'));
    expect(kept.rows.map((r) => Number(r.n))).toEqual(Array.from({ length: 30 }, (_, i) => i * 2));
  });

  it('returns affected row counts and RETURNING rows alike on both drivers', async () => {
    const ins = await t.db.transaction((tx) => tx.query<{ n: number }>('INSERT INTO scratch (n) VALUES (1001), (1003) RETURNING n'));
    expect(ins.rowCount).toBe(2);
    expect(ins.rows.map((r) => Number(r.n))).toEqual([1001, 1003]);
    const del = await t.db.transaction((tx) => tx.query('DELETE FROM scratch WHERE n > 1000'));
    expect(del.rowCount).toBe(2);
    const bytes = await t.db.transaction((tx) => tx.query<{ b: Uint8Array }>('SELECT $1::bytea AS b', [Uint8Array.of(1, 2, 255)]));
    expect(new Uint8Array(bytes.rows[0]!.b)).toEqual(Uint8Array.of(1, 2, 255));
  });
});
