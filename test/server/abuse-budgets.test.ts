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
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64url as b64 } from '../../src/protocol/bytes.js';
import { openDatabase, type Database } from '../../src/server/db.js';
import {
  addDevice,
  newDeviceJson,
  newDeviceKeys,
  registerAccount,
  registerBody,
  type BundlesJson,
  type ClientAccount,
  type ClientDevice,
} from '../helpers/accounts.js';
import { databaseKinds, describeEachDatabase, freshPglite, openTestDatabase, snapshotTables, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type CallResult, type TestServer } from '../helpers/server.js';
import { uuidv7 } from './delivery-fixture.js';

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

/** A client at `ip` (the server trusts X-Forwarded-For here, as behind a reverse proxy). */
const from = (ip: string) => ({ 'x-forwarded-for': ip });

/** Adds a device as a client at `ip` does: reads next_device_id, signs its DeviceCert over it, sends it. */
const guesserDevices = new Map<number, ClientDevice>();
async function addDeviceFrom(server: TestServer, account: ClientAccount, ip: string, password = account.password): Promise<CallResult> {
  const rec = await server.call('GET', `/v1/accounts/${account.username}`);
  const next = (rec.json as { next_device_id: number }).next_device_id;
  // (A guesser's device keys are made once per id: key generation is slow and beside the point.)
  let device = password === account.password ? undefined : guesserDevices.get(next);
  if (!device) device = await newDeviceKeys(account.ak, account.username, next, { opks: 1, pqpks: 1 });
  if (password !== account.password) guesserDevices.set(next, device);
  return server.call('POST', `/v1/accounts/${account.username}/devices`, { headers: from(ip), body: { password, device: newDeviceJson(device) } });
}

await describeEachDatabase('passwords: a stranger cannot lock the owner out', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let owner: ClientAccount;
  const BLOB = Buffer.from('the sealed key backup').toString('base64url');

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    // The shipped defaults for password checks, and addresses from X-Forwarded-For.
    server = await startTestServer(t.db, {
      env: { GCHAT_TRUST_PROXY: 'true', GCHAT_RATE_LOGIN_IP: '30/300', GCHAT_RATE_LOGIN_ACCOUNT: '10/300', GCHAT_RATE_LOGIN_ACCOUNT_IP: '5/300' },
    });
    owner = await registerAccount(server, 'owner');
    const put = await server.call('PUT', '/v1/accounts/owner/backup', { token: owner.devices[0]!.token, body: { blob: BLOB } });
    expect(put.status).toBe(204);
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('an attacker failing 50 times from one address, then once from each of 20 more, does not keep the owner out', async () => {
    const recover = (ip: string, password: string) => server.call('POST', '/v1/accounts/owner/backup/recover', { headers: from(ip), body: { password } });
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const r = i % 2 === 0 ? await recover('203.0.113.9', `guess number ${i}`) : await addDeviceFrom(server, owner, '203.0.113.9', `guess number ${i}`);
      statuses.push(r.status);
      if (r.status === 429) expectRefusal(r, 429, 'rate_limited');
    }
    // Five wrong guesses from that address, then it waits; every later try is refused before any password work.
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));
    // A spread-out attack: the account's count is exceeded, so an address that failed once waits,
    for (let i = 0; i < 20; i++) expect((await recover(`198.51.100.${i + 1}`, 'another guess')).status).toBe(401);
    expectRefusal(await recover('198.51.100.1', 'and again'), 429, 'rate_limited');
    // ...but the owner, from an address that has not failed, recovers the backup and adds a device.
    const ok = await recover('192.0.2.44', owner.password);
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    expect(ok.json).toMatchObject({ blob: BLOB });
    const added = await addDeviceFrom(server, owner, '192.0.2.44');
    expect(added.status, JSON.stringify(added.json)).toBe(201);
    // Their successes do not count as failures: they keep going.
    for (let i = 0; i < 8; i++) expect((await recover('192.0.2.44', owner.password)).status).toBe(200);
    // A stranger's wrong guesses never cost the owner's address anything, even at the same moment.
    const [stranger, mine] = await Promise.all([recover('203.0.113.77', 'a wrong password'), recover('192.0.2.45', owner.password)]);
    expect(stranger.status).toBe(401);
    expect(mine.status).toBe(200);
  });

  it('a refused attempt changes nothing', async () => {
    const before = await snapshotTables(t.db);
    expectRefusal(await addDeviceFrom(server, owner, '203.0.113.9', owner.password), 429, 'rate_limited');
    expect(await snapshotTables(t.db)).toBe(before);
  });
});

await describeEachDatabase('passwords: an unknown username answers as slowly as a known one', (kind) => {
  let t: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    // Argon2id at the shipped cost: the difference to hide is the hash.
    server = await startTestServer(t.db, { env: { GCHAT_ARGON2_MEMORY_KIB: '19456', GCHAT_ARGON2_ITERATIONS: '2' } });
    await registerAccount(server, 'known');
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('median time of a wrong-password recovery: known vs unknown username', async () => {
    const time = async (username: string): Promise<number> => {
      const t0 = performance.now();
      const r = await server.call('POST', `/v1/accounts/${username}/backup/recover`, { body: { password: 'not the password' } });
      const ms = performance.now() - t0;
      expectRefusal(r, 401, 'bad_credentials');
      return ms;
    };
    await time('known');
    await time('unknown1');
    const known: number[] = [];
    const unknown: number[] = [];
    // Interleaved, so a slow moment of a shared machine hits both.
    for (let i = 0; i < 11; i++) {
      known.push(await time('known'));
      unknown.push(await time(`unknown${i % 3}`));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratio = median(known) / median(unknown);
    console.log(`recovery with a wrong password, median: known ${median(known).toFixed(1)} ms, unknown ${median(unknown).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`);
    // Without the dummy hash the ratio is the hash's cost over a lookup's: 5 and more.
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});

await describeEachDatabase("one-time prekeys: one account cannot drain a victim's pool", (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  const POOL = 40;
  const BUDGET = 10;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, { env: { GCHAT_RATE_OPK_CLAIMS: `${BUDGET}/86400` } });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('an attacker claiming in a loop takes at most the budget; the bundle still comes, without one-time keys; an honest account still gets an OPK', async () => {
    const victim = await registerAccount(server, 'victim', { opks: POOL, pqpks: POOL });
    const attacker = await registerAccount(server, 'attacker');
    const honest = await registerAccount(server, 'honest');
    const claim = (token: string, body: object = {}) => server.call('POST', '/v1/accounts/victim/bundles', { token, body });
    const got: BundlesJson['bundles'] = [];
    for (let i = 0; i < 40; i++) {
      const r = await claim(attacker.devices[0]!.token, i % 2 === 0 ? {} : { device_ids: [1] });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      got.push(...(r.json as BundlesJson).bundles);
    }
    // A second device of the same account shares the account's budget.
    const second = await addDevice(server, attacker, { opks: 1, pqpks: 1 });
    for (let i = 0; i < 5; i++) got.push(...((await claim(second.token)).json as BundlesJson).bundles);
    expect(got).toHaveLength(45);
    expect(got.filter((b) => b.opk !== null)).toHaveLength(BUDGET);
    expect(got.filter((b) => !b.pqpk.last_resort)).toHaveLength(BUDGET);
    // Past the budget: still a complete bundle a session can start from (SPEC §3: no OPK, the last-resort PQPK).
    const last = got[got.length - 1]!;
    expect(last).toMatchObject({ device_id: 1, opk: null, pqpk: { id: victim.devices[0]!.lastResort.id, last_resort: true } });
    expect(last.spk.id).toBe(victim.devices[0]!.spk.id);

    const left = await server.call('GET', '/v1/accounts/victim/devices/1/keys', { token: victim.devices[0]!.token });
    expect((left.json as { opk_count: number }).opk_count).toBeGreaterThanOrEqual(POOL - BUDGET);
    expect((left.json as { pqpk_count: number }).pqpk_count).toBeGreaterThanOrEqual(POOL - BUDGET);

    const fair = await claim(honest.devices[0]!.token);
    expect(fair.status).toBe(200);
    const b = (fair.json as BundlesJson).bundles[0]!;
    expect(b.opk).not.toBeNull();
    expect(b.pqpk.last_resort).toBe(false);
  });
});

await describeEachDatabase("device queues: one sender cannot fill a victim's queue", (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  const SHARE = 30;
  const KIB = 1024;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, {
      delivery: true,
      env: {
        GCHAT_MAX_QUEUE_PER_SENDER: String(SHARE),
        GCHAT_MAX_QUEUE_BYTES_PER_SENDER: String(128 * KIB),
        GCHAT_MAX_QUEUE_PER_DEVICE: '1000',
        GCHAT_MAX_QUEUE_BYTES_PER_DEVICE: String(200 * KIB),
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  /** A §5 message of `bytes` bytes: version 1, type 2, then header and ciphertext. */
  const body = (bytes: number): string => {
    const b = randomBytes(bytes);
    b[0] = 0x01;
    b[1] = 0x02;
    return b.toString('base64url');
  };
  const send = (from: ClientAccount, to: ClientAccount, bytes = 100) =>
    server.call('POST', '/v1/messages', {
      token: from.devices[0]!.token,
      body: {
        message_id: uuidv7(),
        recipient: to.username,
        copies: to.devices.map((d) => ({ user: to.username, device: d.deviceId, key: b64(d.ik.publicKey), type: 2, body: body(bytes) })),
      },
    });
  const queued = async (who: ClientAccount): Promise<{ id: string; sender: string }[]> => {
    const r = await server.call('GET', '/v1/messages', { token: who.devices[0]!.token });
    expect(r.status).toBe(200);
    return (r.json as { envelopes: { id: string; sender: string }[] }).envelopes;
  };
  /** delivery_queue_usage agrees with what is really queued: each sender's rows and each device's total (migration 0006). */
  const expectUsageExact = async () => {
    const r = await t.db.query<{ bad: unknown }>(
      `SELECT count(*) AS bad FROM (
         SELECT account_id, device_id, coalesce(sender_account, 'ffffffff-ffff-ffff-ffff-ffffffffffff') AS sender_account,
                count(*) AS n, sum(octet_length(body) * 3 / 4) AS b
           FROM delivery_envelopes GROUP BY GROUPING SETS ((account_id, device_id, sender_account), (account_id, device_id))) e
       FULL JOIN (SELECT * FROM delivery_queue_usage WHERE envelopes <> 0) u USING (account_id, device_id, sender_account)
       WHERE e.n IS DISTINCT FROM u.envelopes OR e.b IS DISTINCT FROM u.bytes`,
    );
    expect(Number(r.rows[0]!.bad)).toBe(0);
  };

  it('an attacker fills its share (507, nothing more queued, even in a burst); another sender still delivers to the same device', async () => {
    const victim = await registerAccount(server, 'qvictim', { opks: 1, pqpks: 1 });
    const attacker = await registerAccount(server, 'qattacker', { opks: 1, pqpks: 1 });
    const friend = await registerAccount(server, 'qfriend', { opks: 1, pqpks: 1 });
    for (let i = 0; i < SHARE; i++) expect((await send(attacker, victim)).status).toBe(200);
    const over = await send(attacker, victim);
    expectRefusal(over, 507, 'queue_full');
    expect((over.json as { error: { message: string } }).error.message).toMatch(/share/);
    expect(over.json).toMatchObject({ devices: [{ user: 'qvictim', device: 1 }] });
    const burst = await Promise.all(Array.from({ length: 50 }, () => send(attacker, victim)));
    expect(new Set(burst.map((r) => r.status))).toEqual(new Set([507]));
    for (let i = 0; i < 5; i++) expect((await send(friend, victim)).status).toBe(200);
    const q = await queued(victim);
    expect(q.filter((e) => e.sender === 'qattacker')).toHaveLength(SHARE);
    expect(q.filter((e) => e.sender === 'qfriend')).toHaveLength(5);
    await expectUsageExact();
    // Once the victim takes some, the attacker's share has room again (acks free it).
    const ack = await server.call('POST', '/v1/messages/ack', { token: victim.devices[0]!.token, body: { ids: q.slice(0, 3).map((e) => e.id) } });
    expect(ack.status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await send(attacker, victim)).status).toBe(200);
    expectRefusal(await send(attacker, victim), 507, 'queue_full');
    await expectUsageExact();
  });

  it("bytes: a sender's byte share, then the device's byte cap; acks make room again", async () => {
    const victim = await registerAccount(server, 'bvictim', { opks: 1, pqpks: 1 });
    const a = await registerAccount(server, 'bsender1', { opks: 1, pqpks: 1 });
    const b = await registerAccount(server, 'bsender2', { opks: 1, pqpks: 1 });
    // 20 KiB each: six from a (120 KiB) fit its 128 KiB share, a seventh does not.
    for (let i = 0; i < 6; i++) expect((await send(a, victim, 20 * KIB)).status).toBe(200);
    const share = await send(a, victim, 20 * KIB);
    expectRefusal(share, 507, 'queue_full');
    expect((share.json as { error: { message: string } }).error.message).toMatch(/share/);
    // b fills the device to its 200 KiB cap: four fit, a fifth is refused for the device, not for b's share.
    for (let i = 0; i < 4; i++) expect((await send(b, victim, 20 * KIB)).status).toBe(200);
    const full = await send(b, victim, 20 * KIB);
    expectRefusal(full, 507, 'queue_full');
    expect((full.json as { error: { message: string } }).error.message).not.toMatch(/share/);
    // A refused send changes nothing.
    expect(await queued(victim)).toHaveLength(10);
    await expectUsageExact();
    const q = await queued(victim);
    const fromA = q.filter((e) => e.sender === 'bsender1').slice(0, 2).map((e) => e.id);
    expect((await server.call('POST', '/v1/messages/ack', { token: victim.devices[0]!.token, body: { ids: fromA } })).status).toBe(200);
    expect((await send(b, victim, 20 * KIB)).status).toBe(200);
    await expectUsageExact();
  });
});

describe('migration 0004 on a database with queued envelopes', () => {
  it('backfills each envelope its sender account and the usage of every (device, sender)', async () => {
    const { AccountsDevicesKeys0000000000001 } = await import('../../migrations/0001-accounts-devices-keys.js');
    const { DeliveryQueues0000000000002 } = await import('../../migrations/0002-delivery-queues.js');
    const { QueueUsage0000000000004 } = await import('../../migrations/0004-queue-usage.js');
    const pg = await freshPglite();
    const runner = { query: (s: string) => pg.exec(s) } as unknown as Parameters<InstanceType<typeof QueueUsage0000000000004>['up']>[0];
    try {
      await new AccountsDevicesKeys0000000000001().up(runner);
      await new DeliveryQueues0000000000002().up(runner);
      const acc = async (u: string) =>
        String((await pg.query<{ id: string }>(`INSERT INTO accounts (username, password_hash, ak_pub) VALUES ($1, 'x', $2) RETURNING id`, [u, new Uint8Array(32)])).rows[0]!.id);
      const rx = await acc('rxx');
      const s1 = await acc('sender1');
      const s2 = await acc('sender2');
      const put = (sender: string, bodyChars: number) =>
        pg.query(
          `INSERT INTO delivery_envelopes (account_id, device_id, message_id, sender, sender_device, type, body, server_ts)
           VALUES ($1, 1, gen_random_uuid(), $2, 1, 2, repeat('A', $3), 0)`,
          [rx, sender, bodyChars],
        );
      for (let i = 0; i < 3; i++) await put('sender1', 400);
      await put('sender2', 8);
      await new QueueUsage0000000000004().up(runner);
      const usage = await pg.query<{ sender_account: string; envelopes: number; bytes: number }>(
        `SELECT sender_account, envelopes::int AS envelopes, bytes::int AS bytes FROM delivery_queue_usage ORDER BY envelopes DESC`,
      );
      expect(usage.rows).toEqual([
        { sender_account: s1, envelopes: 3, bytes: 900 },
        { sender_account: s2, envelopes: 1, bytes: 6 },
      ]);
      const missing = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM delivery_envelopes WHERE sender_account IS NULL`);
      expect(missing.rows[0]!.n).toBe(0);
    } finally {
      await pg.close();
    }
  });
});
