/**
 * Concurrent bundle fetches against one device: every OPK and every one-time PQPK is handed out
 * exactly once, and the fetches that find none get no OPK and the last-resort PQPK.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fetchBundles } from '../../src/server/services/prekeys.js';
import { registerAccount, type BundlesJson, type ClientAccount } from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const FETCHES = 200;
const KEYS = 50;

await describeEachDatabase('concurrent bundle claims', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let target: ClientAccount;
  let fetcher: ClientAccount;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db);
    target = await registerAccount(server, 'target', { opks: KEYS, pqpks: KEYS });
    fetcher = await registerAccount(server, 'fetcher', { opks: 1, pqpks: 1 });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it(`${FETCHES} concurrent fetches against ${KEYS} OPKs and ${KEYS} one-time PQPKs: each key once, the rest none`, async () => {
    const results = await Promise.all(
      Array.from({ length: FETCHES }, () => server.call('POST', '/v1/accounts/target/bundles', { token: fetcher.devices[0]!.token, body: {} })),
    );
    expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const bundles = results.map((r) => (r.json as BundlesJson).bundles[0]!);
    const opkIds = bundles.flatMap((b) => (b.opk ? [b.opk.id] : []));
    const oneTimePq = bundles.filter((b) => !b.pqpk.last_resort).map((b) => b.pqpk.id);
    const device = target.devices[0]!;

    expect(opkIds).toHaveLength(KEYS);
    expect(new Set(opkIds).size).toBe(KEYS);
    expect(new Set(opkIds)).toEqual(new Set(device.opks.map((k) => k.id)));
    expect(bundles.filter((b) => b.opk === null)).toHaveLength(FETCHES - KEYS);

    expect(oneTimePq).toHaveLength(KEYS);
    expect(new Set(oneTimePq)).toEqual(new Set(device.pqpks.map((k) => k.id)));
    const lastResort = bundles.filter((b) => b.pqpk.last_resort);
    expect(lastResort).toHaveLength(FETCHES - KEYS);
    expect(new Set(lastResort.map((b) => b.pqpk.id))).toEqual(new Set([device.lastResort.id]));

    const left = await server.call('GET', '/v1/accounts/target/devices/1/keys', { token: device.token });
    expect(left.json).toMatchObject({ opk_count: 0, pqpk_count: 0 });
  });

  it(`${FETCHES} claims straight through the service, all in flight at once: each key once`, async () => {
    const victim = await registerAccount(server, 'victim', { opks: KEYS, pqpks: KEYS });
    const auth = { accountId: 'not-the-victim', username: 'fetcher', deviceId: 1 };
    const results = await Promise.all(Array.from({ length: FETCHES }, () => fetchBundles(server.deps, auth, 'victim', undefined, { count: 1_000_000, windowSeconds: 60 })));
    const bundles = results.map((r) => r.bundles[0]!);
    const opkIds = bundles.flatMap((b) => (b.opk ? [b.opk.id] : []));
    const pqIds = bundles.filter((b) => !b.pqpk.lastResort).map((b) => b.pqpk.id);
    expect(new Set(opkIds)).toEqual(new Set(victim.devices[0]!.opks.map((k) => k.id)));
    expect(opkIds).toHaveLength(KEYS);
    expect(new Set(pqIds)).toEqual(new Set(victim.devices[0]!.pqpks.map((k) => k.id)));
    expect(pqIds).toHaveLength(KEYS);
  });
});
