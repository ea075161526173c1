/**
 * Budgets an attacker can neither multiply nor turn against a victim, probed as an attacker
 * would, against the real server on PostgreSQL and on PGlite:
 * - rate limits hold across instances (two servers on one PostgreSQL share one budget);
 * - one account cannot drain a victim device's one-time prekeys;
 * - one sender cannot fill a victim device's queue;
 * - wrong passwords from a stranger's address cannot lock the owner out;
 * - recovery of an unknown username costs what recovery of a known one costs (no timing oracle).
 * Every refusal is a 4xx `{ error: { code, message } }`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/server/db.js';
import { registerAccount, registerBody } from '../helpers/accounts.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type CallResult, type TestServer } from '../helpers/server.js';

function expectRefusal(r: CallResult, status: number, code: string): void {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.json).toMatchObject({ error: { code, message: expect.any(String) } });
}

const kinds = await databaseKinds();

describe.skipIf(!kinds.includes('postgres'))('rate limits across instances [postgres]', () => {
  let t: TestDatabase;
  let second: Database;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    second = await openDatabase({ kind: 'postgres', url: t.db.url!, poolSize: 4 });
    const env = { GCHAT_RATE_LOOKUPS_IP: '6/600', GCHAT_RATE_REGISTER_IP: '3/3600' };
    a = await startTestServer(t.db, { env });
    b = await startTestServer(second, { env });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await second?.close();
    await t?.close();
  });

  it('two instances on one PostgreSQL share one budget: lookups', async () => {
    const got: number[] = [];
    // Alternate between the instances, as a load balancer would.
    for (let i = 0; i < 10; i++) got.push((await (i % 2 === 0 ? a : b).call('GET', '/v1/accounts/nobody')).status);
    expect(got.filter((s) => s === 404)).toHaveLength(6);
    expect(got.slice(6)).toEqual([429, 429, 429, 429]);
    const r = await b.call('GET', '/v1/accounts/nobody');
    expectRefusal(r, 429, 'rate_limited');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('two instances on one PostgreSQL share one budget: registrations, and a refused one stores nothing', async () => {
    await registerAccount(a, 'reg1');
    await registerAccount(b, 'reg2');
    await registerAccount(a, 'reg3');
    const { body } = await registerBody('reg4');
    expectRefusal(await b.call('POST', '/v1/accounts', { body }), 429, 'rate_limited');
    const n = await t.db.query<{ n: unknown }>(`SELECT count(*) AS n FROM accounts WHERE username = 'reg4'`);
    expect(Number(n.rows[0]!.n)).toBe(0);
  });
});
