/**
 * Retention and garbage collection with a clock the test controls: expired envelopes and dedup
 * entries go, the queues of removed devices go, the job works in bounded steps and can run on
 * two instances at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGc } from '../../src/server/delivery/gc.js';
import {
  type FreshDatabase,
  type SeededAccount,
  type TestServer,
  StreamClient,
  freshDatabase,
  makeSend,
  pgExec,
  postgresReachable,
  rest,
  seedAccounts,
  startServer,
} from './delivery-fixture.js';

const reachable = await postgresReachable();
const DAY = 24 * 3600 * 1000;

describe.skipIf(!reachable)('delivery: retention and GC (PostgreSQL)', () => {
  let fdb: FreshDatabase;
  let sql: ReturnType<typeof pgExec>;
  let a: TestServer;
  let b: TestServer;
  let alice: SeededAccount;
  let bob: SeededAccount;
  let t = Date.UTC(2030, 0, 1);
  const now = (): number => t;
  const count = async (table: string): Promise<number> => Number((await sql.exec(`SELECT count(*) AS n FROM ${table}`, [])).rows[0]!.n);

  beforeAll(async () => {
    fdb = await freshDatabase();
    sql = pgExec(fdb.url);
    [alice, bob] = (await seedAccounts(sql.exec, [
      { username: 'alice', devices: 1 },
      { username: 'bob', devices: 3 },
    ])) as [SeededAccount, SeededAccount];
    // Retention 30 days (the default), both instances on the test's clock.
    a = await startServer({ databaseUrl: fdb.url, now });
    b = await startServer({ databaseUrl: fdb.url, now });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await sql?.close();
    await fdb?.drop();
  });

  it('deletes undelivered envelopes and dedup entries after the retention, and only then', async () => {
    const old = makeSend(alice, 1, bob, 'b2xk');
    const r1 = await rest(a.url, alice.devices[0]!.token, 'POST', '/v1/messages', old);
    expect(r1.status).toBe(200);
    t += 29 * DAY;
    const recent = makeSend(alice, 1, bob, 'bmV3');
    expect((await rest(a.url, alice.devices[0]!.token, 'POST', '/v1/messages', recent)).status).toBe(200);

    t += DAY - 1; // the old one is exactly 30 days old: kept
    expect((await a.delivery.gc()).expiredEnvelopes).toBe(0);
    // A retry inside the retention still answers the same ids.
    const retry = await rest(a.url, alice.devices[0]!.token, 'POST', '/v1/messages', old);
    expect(retry.body.envelopes).toEqual(r1.body.envelopes);

    t += 2;
    const report = await a.delivery.gc();
    expect(report.expiredEnvelopes).toBe(3);
    expect(report.expiredSends).toBe(1);
    const page = await rest(a.url, bob.devices[0]!.token, 'GET', '/v1/messages');
    expect(page.body.envelopes.map((e: { message_id: string }) => e.message_id)).toEqual([recent.message_id]);
    expect(await count('delivery_sends')).toBe(1);

    // Past its dedup entry, the same message_id is a new message (the receiver dedups again, SPEC §6).
    const again = await rest(a.url, alice.devices[0]!.token, 'POST', '/v1/messages', old);
    expect(again.status).toBe(200);
    expect(again.body.envelopes[0].id).not.toBe(r1.body.envelopes[0].id);
  });

  it('deletes the queue of a removed device, and closes its stream on the other instance at once', async () => {
    const before = await count('delivery_envelopes');
    const rx = await StreamClient.connect(b.port, bob.devices[2]!.token, false);
    await rx.until(() => rx.drained);
    expect(rx.received.length).toBeGreaterThan(0);
    const removed = await rest(a.url, bob.devices[0]!.token, 'DELETE', '/v1/accounts/bob/devices/3');
    expect(removed.status).toBe(204);
    await rx.until(() => rx.closed, 30_000);
    expect(rx.closeCode).toBe(4003);
    const rep = await a.delivery.gc();
    expect(rep.orphanedEnvelopes).toBe(rx.received.length);
    expect(await count('delivery_envelopes')).toBe(before - rx.received.length);
    expect((await StreamClient.connect(b.port, bob.devices[2]!.token).then(() => 'open', (e: Error) => e.message))).toMatch(/401/);
  });

  it('works in bounded steps, and two instances collecting at once delete each row once', async () => {
    // 300 sends to bob's 2 devices (600 envelopes), all expiring together.
    const bobNow = { ...bob, devices: bob.devices.slice(0, 2) };
    for (let i = 0; i < 300; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, () => rest(a.url, alice.devices[0]!.token, 'POST', '/v1/messages', makeSend(alice, 1, bobNow, 'Zw'))),
      );
    }
    const total = await count('delivery_envelopes');
    expect(total).toBeGreaterThanOrEqual(600);
    t += 31 * DAY;
    const step = await runGc(a.delivery.repo, { retentionMs: 30 * DAY, now, batch: 100, maxBatches: 2 });
    expect(step.expiredEnvelopes).toBe(200);
    expect(step.more).toBe(true);
    const [ra, rb] = await Promise.all([
      runGc(a.delivery.repo, { retentionMs: 30 * DAY, now, batch: 50, maxBatches: 100 }),
      runGc(b.delivery.repo, { retentionMs: 30 * DAY, now, batch: 50, maxBatches: 100 }),
    ]);
    const rest2 = await runGc(a.delivery.repo, { retentionMs: 30 * DAY, now });
    expect(200 + ra.expiredEnvelopes + rb.expiredEnvelopes + rest2.expiredEnvelopes).toBe(total);
    expect(await count('delivery_envelopes')).toBe(0);
    expect(await count('delivery_sends')).toBe(0);
  });
});
