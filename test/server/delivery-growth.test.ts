/**
 * The delivery paths whose cost must not grow with the data (issue 13), by what they do, on
 * PGlite and PostgreSQL: a removed device's queue is collected once and then never looked at
 * again; the per-device queue bounds count exactly what waits, through sends from several
 * senders, acks, collection of removed queues and expiry.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REMOVED_QUEUE_GRACE_MS } from '../../src/server/delivery/limits.js';
import { QueueRepository, deviceRef } from '../../src/server/delivery/queue-repository.js';
import type { SqlDatabase } from '../../src/server/delivery/sql.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { type SeededAccount, type TestServer, makeSend, rest, seedAccounts, startServer, uuidv7 } from './delivery-fixture.js';

const DAY = 24 * 3600 * 1000;

await describeEachDatabase('delivery: growth', (kind) => {
  let t: TestDatabase;
  let srv: TestServer;
  let clock = Date.UTC(2030, 0, 1);
  const now = (): number => clock;
  let alice: SeededAccount;
  let dave: SeededAccount;
  let bob: SeededAccount;
  let carol: SeededAccount;
  const exec = async (sql: string, params: unknown[] = []): Promise<{ rows: Record<string, unknown>[] }> => ({
    rows: (await t.db.query<Record<string, unknown>>(sql, params)).rows,
  });
  const queueLength = async (a: SeededAccount, device: number): Promise<number> =>
    Number((await exec('SELECT count(*) AS n FROM delivery_envelopes WHERE account_id = $1 AND device_id = $2', [a.accountId, device])).rows[0]!.n);
  const send = (from: SeededAccount, to: SeededAccount, label = 'aGk'): Promise<{ status: number; body: any }> =>
    rest(srv.url, from.devices[0]!.token, 'POST', '/v1/messages', makeSend(from, 1, to, label, uuidv7(clock)));

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    [alice, dave, bob, carol] = (await seedAccounts(exec, [
      { username: 'alice', devices: 1 },
      { username: 'dave', devices: 1 },
      { username: 'bob', devices: 2 },
      { username: 'carol', devices: 1 },
    ])) as [SeededAccount, SeededAccount, SeededAccount, SeededAccount];
    srv = await startServer({ db: t.db, now, env: { GCHAT_MAX_QUEUE_PER_DEVICE: '10', GCHAT_MAX_QUEUE_PER_SENDER: '8' } });
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  it("collects a removed device's queue once; the orphan step then leaves every queue alone", async () => {
    for (let i = 0; i < 5; i++) expect((await send(alice, bob)).status).toBe(200);
    expect(await queueLength(bob, 2)).toBe(5);
    expect((await rest(srv.url, bob.devices[0]!.token, 'DELETE', '/v1/accounts/bob/devices/2')).status).toBe(204);
    expect(await srv.delivery.repo.pendingRemovedQueues()).toEqual([deviceRef(bob.accountId, 2)]);

    expect((await srv.delivery.gc()).orphanedEnvelopes).toBe(5);
    expect(await queueLength(bob, 2)).toBe(0);
    // Listed through the grace period (a send that read the old device list may still land)...
    expect((await srv.delivery.gc()).orphanedEnvelopes).toBe(0);
    expect(await srv.delivery.repo.pendingRemovedQueues()).toHaveLength(1);
    clock += REMOVED_QUEUE_GRACE_MS + 1;
    await srv.delivery.gc();
    // ...then forgotten: GC no longer looks at that queue at all. An envelope that still reached
    // it (planted here) waits for the retention, like any undelivered envelope.
    expect(await srv.delivery.repo.pendingRemovedQueues()).toEqual([]);
    await exec(
      `INSERT INTO delivery_envelopes (account_id, device_id, message_id, sender, sender_device, type, body, server_ts, sender_account)
       VALUES ($1, 2, $2, 'alice', 1, 2, 'AQI', $3, $4)`,
      [bob.accountId, uuidv7(clock), clock, alice.accountId],
    );
    expect((await srv.delivery.gc()).orphanedEnvelopes).toBe(0);
    expect(await queueLength(bob, 2)).toBe(1);
    // The remaining device kept its queue.
    expect(await queueLength(bob, 1)).toBe(5);
    clock += 31 * DAY;
    expect((await srv.delivery.gc()).expiredEnvelopes).toBe(6);
  });

  it('bounds a queue by exactly what waits in it, from every sender, through acks and expiry', async () => {
    // Device bound 10, sender share 8: alice fills 7, dave 3, and the 11th is refused as the device's.
    for (let i = 0; i < 7; i++) expect((await send(alice, carol)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await send(dave, carol)).status).toBe(200);
    const full = await send(dave, carol);
    expect(full.status).toBe(507);
    expect(full.body.error.code).toBe('queue_full');

    // Carol acks 4 of alice's: exactly 4 more fit, whoever sends them; alice's share stops her at 8.
    const page = await rest(srv.url, carol.devices[0]!.token, 'GET', '/v1/messages');
    const alices = page.body.envelopes.filter((e: { sender: string }) => e.sender === 'alice').map((e: { id: string }) => e.id);
    expect((await rest(srv.url, carol.devices[0]!.token, 'POST', '/v1/messages/ack', { ids: alices.slice(0, 4) })).status).toBeLessThan(300);
    expect((await send(dave, carol)).status).toBe(200);
    expect((await send(alice, carol)).status).toBe(200);
    expect((await send(alice, carol)).status).toBe(200);
    expect((await send(dave, carol)).status).toBe(200);
    expect((await send(alice, carol)).status).toBe(507);
    expect(await queueLength(carol, 1)).toBe(10);

    // Everything expires: the queue is empty for GC and for the bound alike.
    clock += 31 * DAY;
    expect((await srv.delivery.gc()).expiredEnvelopes).toBe(10);
    for (let i = 0; i < 8; i++) expect((await send(alice, carol)).status).toBe(200);
    expect((await send(alice, carol)).status).toBe(507); // alice's share
    expect((await send(dave, carol)).status).toBe(200);
    expect((await send(dave, carol)).status).toBe(200);
    expect((await send(dave, carol)).status).toBe(507); // the device's
  });

  it("a send's dedup lookup reads its own key's entry, however many sends are remembered", async () => {
    // 20,000 unexpired dedup entries of alice's device, as a day of her sends would leave.
    await exec(
      `INSERT INTO delivery_sends (sender_account, sender_device, message_id, content_hash, answer, expires_at)
       SELECT $1, 1, gen_random_uuid(), decode(repeat('00', 32), 'hex'), '{}', $2 FROM generate_series(1, 20000)`,
      [alice.accountId, clock + DAY],
    );
    await exec('ANALYZE delivery_sends');
    // The statement the batch read runs, as it runs it, explained.
    const seen: { text: string; params: readonly unknown[] }[] = [];
    const spy: SqlDatabase = { kind: t.kind === 'pglite' ? 'embedded' : 'postgres', query: async (text, params = []) => (seen.push({ text, params }), (await t.db.query(text, params)).rows as never) };
    // A full batch of fresh sends (512 keys, as under load): a lookup per key, not a pass over every entry.
    const keys = Array.from({ length: 512 }, (_, i) => ({ senderDevice: deviceRef(alice.accountId, 1), messageId: uuidv7(clock + i), recipient: 'bob' }));
    await new QueueRepository(spy).readBatch({ keys, usernames: ['alice', 'bob'], idCount: 1, now: clock });
    const plan = (await t.db.query<Record<string, unknown>>(`EXPLAIN (ANALYZE, FORMAT JSON) ${seen[0]!.text}`, seen[0]!.params as unknown[])).rows[0]!;
    type PlanNode = { 'Relation Name'?: string; 'Actual Rows'?: number; 'Actual Loops'?: number; Plans?: PlanNode[] };
    const root = (JSON.parse(typeof plan['QUERY PLAN'] === 'string' ? (plan['QUERY PLAN'] as string) : JSON.stringify(plan['QUERY PLAN'])) as { Plan: PlanNode }[])[0]!.Plan;
    const rowsOf = (n: PlanNode, table: string): number =>
      (n['Relation Name'] === table ? (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1) : 0) + (n.Plans ?? []).reduce((sum, c) => sum + rowsOf(c, table), 0);
    expect(rowsOf(root, 'delivery_sends')).toBeLessThanOrEqual(keys.length);
  });
});
