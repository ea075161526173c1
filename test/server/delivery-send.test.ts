/**
 * Sends against a real PostgreSQL: device-list checks, exactly-once under retries, conflicts,
 * limits, per-sender order, the REST fallback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FreshDatabase,
  type SeededAccount,
  type TestServer,
  StreamClient,
  addDevice,
  freshDatabase,
  makeSend,
  pgExec,
  postgresReachable,
  rest,
  sealed,
  seedAccounts,
  startServer,
  uuidv7,
} from './delivery-fixture.js';

const reachable = await postgresReachable();

describe.skipIf(!reachable)('delivery: sends (PostgreSQL)', () => {
  let fdb: FreshDatabase;
  let sql: ReturnType<typeof pgExec>;
  let srv: TestServer;
  let alice: SeededAccount;
  let bob: SeededAccount;
  const queued = async (): Promise<number> => Number((await sql.exec('SELECT count(*) AS n FROM delivery_envelopes', [])).rows[0]!.n);

  beforeAll(async () => {
    fdb = await freshDatabase();
    sql = pgExec(fdb.url);
    [alice, bob] = (await seedAccounts(sql.exec, [
      { username: 'alice', devices: 2 },
      { username: 'bob', devices: 3 },
    ])) as [SeededAccount, SeededAccount];
    srv = await startServer({
      databaseUrl: fdb.url,
      env: { GCHAT_MAX_COPIES: '8', GCHAT_MAX_MESSAGE_BYTES: '2048' },
    });
  });
  afterAll(async () => {
    await srv?.close();
    await sql?.close();
    await fdb?.drop();
  });

  const tokenOf = (a: SeededAccount, i = 0): string => a.devices[i]!.token;
  const drain = async (a: SeededAccount): Promise<void> => {
    for (const d of a.devices) {
      for (;;) {
        const l = await rest(srv.url, d.token, 'GET', '/v1/messages');
        if (l.body.envelopes.length === 0) break;
        await rest(srv.url, d.token, 'POST', '/v1/messages/ack', { ids: l.body.envelopes.map((e: { id: string }) => e.id) });
      }
    }
  };

  it('refuses copies that do not match the device lists with 409 { missing, extra, stale }, queuing nothing', async () => {
    const before = await queued();
    const good = makeSend(alice, 1, bob, 'AAAA');
    const copies = good.copies
      .filter((c) => !(c.user === 'bob' && c.device === 1)) // missing bob:1
      .map((c) => (c.user === 'bob' && c.device === 2 ? { ...c, key: bob.devices[0]!.key } : c)); // stale bob:2
    copies.push({ user: 'bob', device: 9, key: bob.devices[0]!.key, type: 2, body: sealed('AAAA') }); // extra bob:9
    copies.push({ user: 'alice', device: 1, key: alice.devices[0]!.key, type: 2, body: sealed('AAAA') }); // the sending device itself: extra
    const r = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', { ...good, copies });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('device_mismatch');
    expect(r.body.missing).toEqual([{ user: 'bob', device: 1 }]);
    expect(r.body.stale).toEqual([{ user: 'bob', device: 2 }]);
    expect(r.body.extra).toEqual(expect.arrayContaining([{ user: 'bob', device: 9 }, { user: 'alice', device: 1 }]));
    expect(r.body.extra).toHaveLength(2);
    // The sender's other device is required too.
    const noOwn = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', { ...good, copies: good.copies.filter((c) => c.user === 'bob') });
    expect(noOwn.status).toBe(409);
    expect(noOwn.body.missing).toEqual([{ user: 'alice', device: 2 }]);
    expect(await queued()).toBe(before);
    // The unchanged request then goes through.
    expect((await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', good)).status).toBe(200);
    expect(await queued()).toBe(before + 4);
    await drain(bob);
    await drain(alice);
  });

  it('queues a send retried 5 times (before and after the first answer) once per device; each device sees it once', async () => {
    const receivers = await Promise.all([...bob.devices, alice.devices[1]!].map((d) => StreamClient.connect(srv.port, d.token)));
    await Promise.all(receivers.map((c) => c.until(() => c.drained)));
    const req = makeSend(alice, 1, bob, 'aGVsbG8');
    // Five at once over REST and the stream, then five after the first answer.
    const sender = await StreamClient.connect(srv.port, tokenOf(alice));
    const first = await Promise.all([
      rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', req),
      rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', req),
      sender.send(req),
      sender.send(req),
      rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', req),
    ]);
    const later = [];
    for (let i = 0; i < 5; i++) later.push(await (i % 2 ? sender.send(req) : rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', req)));
    const all = [...first, ...later];
    for (const r of all) expect(r.status).toBe(200);
    const ids = all.map((r) => JSON.stringify([...r.body.envelopes].sort((a, b) => Number(a.id) - Number(b.id))));
    expect(new Set(ids).size).toBe(1);
    expect(all[0]!.body.envelopes).toHaveLength(4);
    await Promise.all(receivers.map((c) => c.until(() => c.confirmed.size >= 1)));
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive by now
    for (const c of receivers) expect(c.received.filter((e) => e.message_id === req.message_id)).toHaveLength(1);
    expect(await queued()).toBe(0);
    // The receiver's view: exactly the fields the issue names.
    expect(Object.keys(receivers[0]!.received[0]!).sort()).toEqual(['body', 'id', 'message_id', 'sender', 'sender_device', 'server_ts', 'type']);
    expect(receivers[0]!.received[0]).toMatchObject({ message_id: req.message_id, sender: 'alice', sender_device: 1, type: 2, body: sealed('aGVsbG8') });
    for (const c of [...receivers, sender]) await c.close();
  });

  it('refuses a retry with the same message_id and other content with 409, changing nothing', async () => {
    const req = makeSend(alice, 1, bob, 'Zmlyc3Q');
    expect((await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', req)).status).toBe(200);
    const n = await queued();
    const other = { ...req, copies: req.copies.map((c) => ({ ...c, body: sealed('c2Vjb25k') })) };
    const r = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', other);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('message_id_conflict');
    expect(await queued()).toBe(n);
    // The same id from another device of the sender is another message.
    const fromTwo = makeSend(alice, 2, bob, 'Zmlyc3Q', req.message_id);
    expect((await rest(srv.url, tokenOf(alice, 1), 'POST', '/v1/messages', fromTwo)).status).toBe(200);
    await drain(bob);
    await drain(alice);
  });

  it('enforces body size (413), copies per send (413), queue length (507) and the send backlog (429), losing nothing accepted', async () => {
    const big = 'A'.repeat(Math.ceil((2049 * 4) / 3));
    const r1 = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', makeSend(alice, 1, bob, big));
    expect(r1.status).toBe(413);
    const [carol] = await seedAccounts(sql.exec, [{ username: 'carol', devices: 9 }]);
    const r2 = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', makeSend(alice, 1, carol!, 'AAAA'));
    expect(r2.status).toBe(413);
    expect(await queued()).toBe(0);

    // Fill the queues to the limit (20), then one more is 507 and nothing already queued is lost.
    const limited = await startServer({ databaseUrl: fdb.url, env: { GCHAT_MAX_QUEUE_PER_DEVICE: '20' } });
    try {
      const accepted: string[] = [];
      for (let i = 0; i < 20; i++) {
        const req = makeSend(alice, 1, bob, 'AAAA');
        expect((await rest(limited.url, tokenOf(alice), 'POST', '/v1/messages', req)).status).toBe(200);
        accepted.push(req.message_id);
      }
      const full = await rest(limited.url, tokenOf(alice), 'POST', '/v1/messages', makeSend(alice, 1, bob, 'AAAA'));
      expect(full.status).toBe(507);
      expect(full.body.error.code).toBe('queue_full');
      expect(full.body.devices).toEqual([...bob.devices.map((d) => ({ user: 'bob', device: d.device })), { user: 'alice', device: 2 }]);
      const page = await rest(limited.url, tokenOf(bob), 'GET', '/v1/messages?limit=100');
      expect(page.body.envelopes.map((e: { message_id: string }) => e.message_id)).toEqual(accepted);
      await drain(bob);
      await drain(alice);
      expect((await rest(limited.url, tokenOf(alice), 'POST', '/v1/messages', makeSend(alice, 1, bob, 'AAAA'))).status).toBe(200);
    } finally {
      await limited.close();
    }
    await drain(bob);
    await drain(alice);

    // Backlog: a server allowing 1 waiting send answers 429 to part of a burst; the rest arrive.
    const tight = await startServer({ databaseUrl: fdb.url, env: { GCHAT_MAX_PENDING_SENDS: '1' } });
    try {
      const reqs = Array.from({ length: 20 }, () => makeSend(alice, 1, bob, 'AAAA'));
      const res = await Promise.all(reqs.map((q) => rest(tight.url, tokenOf(alice), 'POST', '/v1/messages', q)));
      const ok = reqs.filter((_, i) => res[i]!.status === 200).map((q) => q.message_id);
      const busy = res.filter((r) => r.status === 429);
      expect(ok.length + busy.length).toBe(20);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy[0]!.body.error.code).toBe('rate_limited');
      const got = await rest(tight.url, tokenOf(bob), 'GET', '/v1/messages?limit=100');
      expect(got.body.envelopes.map((e: { message_id: string }) => e.message_id).sort()).toEqual([...ok].sort());
    } finally {
      await tight.close();
    }
    await drain(bob);
    await drain(alice);
  });

  it('keeps one sender\'s order on the stream, across a reconnect of the receiver', async () => {
    const sender = await StreamClient.connect(srv.port, tokenOf(alice));
    const sent: string[] = [];
    const answers: Promise<{ status: number }>[] = [];
    const rx = await StreamClient.connect(srv.port, tokenOf(bob));
    for (let i = 0; i < 300; i++) {
      const req = makeSend(alice, 1, bob, Buffer.from(`m${i}`).toString('base64url'));
      sent.push(req.message_id);
      answers.push(sender.send(req)); // pipelined: no wait for the answer
      if (i === 150) await rx.close();
    }
    for (const a of await Promise.all(answers)) expect(a.status).toBe(200);
    const rx2 = await StreamClient.connect(srv.port, tokenOf(bob));
    await rx2.until(() => new Set(rx2.received.map((e) => e.message_id)).size + new Set(rx.received.filter((e) => rx.confirmed.has(e.id)).map((e) => e.message_id)).size >= 300);
    // What the device saw, in arrival order, without the re-sent unconfirmed ones: the send order.
    const seen: string[] = [];
    for (const e of [...rx.received, ...rx2.received]) if (!seen.includes(e.message_id)) seen.push(e.message_id);
    expect(seen).toEqual(sent);
    const ids2 = rx2.received.map((e) => Number(e.id));
    expect(ids2).toEqual([...ids2].sort((a, b) => a - b));
    await rx2.until(() => rx2.confirmed.size === rx2.received.length);
    for (const c of [sender, rx2]) await c.close();
    await drain(bob);
    await drain(alice);
  });

  it('lists and acks the queue over REST, with a 404 for an unknown recipient and 401 without a token', async () => {
    const req = makeSend(bob, 2, alice, 'cmVzdA');
    expect((await rest(srv.url, tokenOf(bob, 1), 'POST', '/v1/messages', req)).status).toBe(200);
    const l = await rest(srv.url, tokenOf(alice, 1), 'GET', '/v1/messages?limit=1');
    expect(l.body.envelopes).toHaveLength(1);
    expect(l.body.more).toBe(false);
    expect(l.body.envelopes[0]).toMatchObject({ message_id: req.message_id, sender: 'bob', sender_device: 2, body: sealed('cmVzdA') });
    const a = await rest(srv.url, tokenOf(alice, 1), 'POST', '/v1/messages/ack', { ids: [l.body.envelopes[0].id] });
    expect(a.body.acked).toBe(1);
    // Acking an id of another device's queue removes nothing.
    const other = await rest(srv.url, tokenOf(bob, 0), 'GET', '/v1/messages');
    const wrong = await rest(srv.url, tokenOf(alice, 1), 'POST', '/v1/messages/ack', { ids: [other.body.envelopes[0].id] });
    expect(wrong.body.acked).toBe(0);
    expect((await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', { message_id: uuidv7(), recipient: 'nobody', copies: [{ user: 'nobody', device: 1, key: alice.devices[0]!.key, type: 2, body: sealed('AA') }] })).status).toBe(404);
    expect((await rest(srv.url, 'x'.repeat(43), 'GET', '/v1/messages')).status).toBe(401);
    expect((await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', { message_id: 'not-a-uuid', recipient: 'bob', copies: [] })).status).toBe(400);
    await drain(bob);
    await drain(alice);
  });

  it('takes a device added since the sender learned the list as missing, and a removed one as extra', async () => {
    const d4 = await addDevice(sql.exec, bob.accountId, 4);
    const old = makeSend(alice, 1, bob, 'AAAA');
    const r = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', old);
    expect(r.status).toBe(409);
    expect(r.body.missing).toEqual([{ user: 'bob', device: 4 }]);
    await sql.exec('UPDATE devices SET removed_at = now(), token_hash = NULL WHERE account_id = $1 AND device_id = 4', [bob.accountId]);
    const withRemoved = { ...old, copies: [...old.copies, { user: 'bob', device: 4, key: d4.key, type: 2, body: sealed('AAAA') }] };
    const r2 = await rest(srv.url, tokenOf(alice), 'POST', '/v1/messages', withRemoved);
    expect(r2.status).toBe(409);
    expect(r2.body.extra).toEqual([{ user: 'bob', device: 4 }]);
  });
});
