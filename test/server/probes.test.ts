/**
 * The hostile probes of issue 10, kept as regression tests: requests as an attacker sends them, to
 * the real server on PGlite and on PostgreSQL. Each refusal is a 4xx in the error format and
 * leaves the queues and the dedup table as they were; no attacker's request fails anybody else's.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deviceRef } from '../../src/server/delivery/queue-repository.js';
import type { Sender } from '../../src/server/delivery/send-service.js';
import { loggableError } from '../../src/server/errors.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type SeededAccount, StreamClient, makeSend, sealed, seedAccounts, uuidv7 } from './delivery-fixture.js';

const root = new URL('../..', import.meta.url).pathname;
/** Past PostgreSQL's bigint: the id pattern used to admit it. */
const OVERFLOW_ID = '9223372036854775808';
/** Written into hostile strings; it must never show up in a log line. */
const MARK = 'PROBEMARK7f3a';

interface Answer {
  readonly status: number;
  readonly json: any;
}

await describeEachDatabase('hostile probes', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  const logLines: string[] = [];
  let alice: SeededAccount;
  let bob: SeededAccount;
  /** Accounts whose traffic must not suffer from the attacker's. */
  let victims: SeededAccount[];

  const exec = (sql: string, params: unknown[]) => t.db.transaction(async (tx) => ({ rows: (await tx.query<Record<string, unknown>>(sql, params)).rows }));

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
    server = await startTestServer(t.db, { delivery: true, overrides: { log }, env: { GCHAT_HEADERS_TIMEOUT_SECONDS: '2' } });
    [alice, bob, ...victims] = (await seedAccounts(exec, [
      { username: 'alice', devices: 2 },
      { username: 'bob', devices: 2 },
      ...Array.from({ length: 6 }, (_, i) => ({ username: `victim${i}`, devices: 1 })),
    ])) as [SeededAccount, SeededAccount, ...SeededAccount[]];
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const call = async (token: string, method: string, path: string, body?: unknown): Promise<Answer> => {
    const r = await server.call(method, path, { token, ...(body === undefined ? {} : { body }) });
    return { status: r.status, json: r.json };
  };
  const tokenOf = (a: SeededAccount, i = 0): string => a.devices[i]!.token;
  /** Every queued envelope and dedup entry, to show a refusal changed nothing. */
  const state = async (): Promise<string> =>
    JSON.stringify(
      await t.db.transaction(async (tx) => [
        (await tx.query('SELECT id::text, account_id::text, device_id::text, message_id::text, type, body FROM delivery_envelopes ORDER BY id')).rows,
        (await tx.query("SELECT sender_account::text, sender_device::text, message_id::text, encode(content_hash, 'hex') AS h, answer FROM delivery_sends ORDER BY 1, 2, 3")).rows,
      ]),
    );
  const queueOf = async (a: SeededAccount, i = 0): Promise<{ id: string; message_id: string; body: string }[]> =>
    (await call(tokenOf(a, i), 'GET', '/v1/messages?limit=256')).json.envelopes;
  const drainAll = async (): Promise<void> => {
    for (const a of [alice, bob, ...victims]) {
      for (let i = 0; i < a.devices.length; i++) {
        const ids = (await queueOf(a, i)).map((e) => e.id);
        if (ids.length > 0) await call(tokenOf(a, i), 'POST', '/v1/messages/ack', { ids });
      }
    }
  };
  const expectRefused = (r: Answer, status: number, code: string): void => {
    expect(r.status, JSON.stringify(r.json)).toBe(status);
    expect(r.json.error).toEqual({ code, message: expect.any(String) });
  };
  /** One message from alice to each victim, so each victim has something to ack. */
  const queueForVictims = async (): Promise<string[]> => {
    const ids: string[] = [];
    for (const v of victims) {
      const r = await call(tokenOf(alice), 'POST', '/v1/messages', makeSend(alice, 1, v, 'dmljdGlt'));
      expect(r.status).toBe(200);
      ids.push(r.json.envelopes.find((e: { user: string }) => e.user === v.username).id);
    }
    return ids;
  };

  it('1. an ack id past bigint is 400, and acks sharing its batch (REST, stream, service) all succeed', async () => {
    await drainAll();
    const ids = await queueForVictims();
    const before = await state();
    expectRefused(await call(tokenOf(bob), 'POST', '/v1/messages/ack', { ids: [OVERFLOW_ID] }), 400, 'invalid_request');
    expectRefused(await call(tokenOf(bob), 'POST', '/v1/messages/ack', { ids: ['99999999999999999999'] }), 400, 'invalid_request');
    expect(await state()).toBe(before);
    // The largest bigint is a valid id (of nothing in this queue).
    expect(await call(tokenOf(bob), 'POST', '/v1/messages/ack', { ids: ['9223372036854775807'] })).toEqual({ status: 200, json: { acked: 0 } });

    // Concurrent: the attacker's acks and the victims' in the same tick.
    const hostile = Array.from({ length: 5 }, () => call(tokenOf(bob), 'POST', '/v1/messages/ack', { ids: ['1', OVERFLOW_ID] }));
    const own = victims.map((v, i) => call(tokenOf(v), 'POST', '/v1/messages/ack', { ids: [ids[i]!] }));
    for (const r of await Promise.all(hostile)) expectRefused(r, 400, 'invalid_request');
    for (const r of await Promise.all(own)) expect(r).toEqual({ status: 200, json: { acked: 1 } });

    // Over the stream: the attacker's frame is refused, the victim's stream keeps its ack and stays open.
    const [idA] = await queueForVictims();
    const victim = await StreamClient.connect(server.port, tokenOf(victims[0]!));
    const attacker = await StreamClient.connect(server.port, tokenOf(bob));
    const errors: unknown[] = [];
    attacker.ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as { op: string };
      if (f.op === 'error') errors.push(f);
    });
    attacker.ws.send(JSON.stringify({ op: 'ack', ids: [OVERFLOW_ID] }));
    await victim.until(() => victim.confirmed.has(idA!));
    await attacker.until(() => errors.length > 0);
    expect(errors[0]).toMatchObject({ op: 'error', code: 'bad_frame' });
    expect(victim.closed).toBe(false);
    expect(attacker.closed).toBe(false);
    await victim.close();
    await attacker.close();

    // Behind the schema, the batch itself isolates a member PostgreSQL refuses.
    const ids2 = await queueForVictims();
    const acks = delivery().acks;
    const bad = acks.count(deviceRef(victims[0]!.accountId, 1), [OVERFLOW_ID]);
    const good = victims.map((v, i) => acks.count(deviceRef(v.accountId, 1), [ids2[i]!]));
    await expect(bad).rejects.toThrow();
    expect(await Promise.all(good)).toEqual(victims.map(() => 1));
  });

  /** The delivery model of the running server (for the service-level probes). */
  const delivery = () => server.delivery!;
  const senderOf = async (a: SeededAccount): Promise<Sender> => ({ username: a.username, deviceRef: deviceRef(a.accountId, 1), device: 1 });

  it('2. a NUL or control character in a recipient or user is 400, and the sends sharing its batch all succeed', async () => {
    await drainAll();
    const before = await state();
    const good = makeSend(alice, 1, bob, 'Z29vZA');
    const hostile = [
      { ...good, message_id: uuidv7(), recipient: `bob\u0000${MARK}` },
      { ...good, message_id: uuidv7(), recipient: `bob\n${MARK}` },
      { ...good, message_id: uuidv7(), copies: good.copies.map((c) => ({ ...c, user: `${c.user}\u0000${MARK}` })) },
    ];
    for (const h of hostile) expectRefused(await call(tokenOf(alice), 'POST', '/v1/messages', h), 400, 'invalid_request');
    const resend = { message_id: good.message_id, recipient: `bob\u0000${MARK}`, copy: good.copies[0] };
    expectRefused(await call(tokenOf(alice), 'POST', '/v1/messages/resend', resend), 400, 'invalid_request');
    expect(await state()).toBe(before);

    // Concurrent REST sends: every victim's send is accepted whatever the attacker sends beside it.
    const sends = victims.map((v) => makeSend(v, 1, bob, 'b2s'));
    const res = await Promise.all([
      ...hostile.map((h) => call(tokenOf(alice), 'POST', '/v1/messages', h)),
      ...sends.map((s, i) => call(tokenOf(victims[i]!), 'POST', '/v1/messages', s)),
    ]);
    for (const r of res.slice(0, hostile.length)) expectRefused(r, 400, 'invalid_request');
    for (const r of res.slice(hostile.length)) expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(new Set((await queueOf(bob)).map((e) => e.message_id))).toEqual(new Set(sends.map((s) => s.message_id)));

    // Behind the schema, the batch isolates a member PostgreSQL refuses: at its read (a
    // message_id that is no UUID) and at its write (a NUL in a body).
    const sendsSvc = delivery().sends;
    const sender = senderOf;
    let nulBody = `${sealed('bnVs')}\u0000`;
    while (nulBody.length % 4 === 1) nulBody += '\u0000';
    const badRead = { ...makeSend(alice, 1, bob, 'YQ'), message_id: `${MARK}-not-a-uuid` };
    const badWrite = { ...makeSend(alice, 1, bob, 'YQ'), copies: makeSend(alice, 1, bob, 'YQ').copies.map((c) => ({ ...c, body: nulBody })) };
    const fromAlice = await sender(alice);
    const victimSends = victims.map((v) => makeSend(v, 1, bob, 'c3Zj'));
    const victimSenders = await Promise.all(victims.map(sender));
    const all = [
      sendsSvc.send(fromAlice, badRead),
      ...victimSends.slice(0, 3).map((s, i) => sendsSvc.send(victimSenders[i]!, s)),
      sendsSvc.send(fromAlice, badWrite),
      ...victimSends.slice(3).map((s, i) => sendsSvc.send(victimSenders[i + 3]!, s)),
    ];
    const settled = await Promise.allSettled(all);
    expect(settled[0]!.status).toBe('rejected');
    expect(settled[4]!.status).toBe('rejected');
    for (const i of [1, 2, 3, 5, 6, 7]) expect(settled[i]).toMatchObject({ status: 'fulfilled', value: { kind: 'accepted' } });
    // A batch whose read passes and whose write fails: each send is written alone.
    const badWrite2 = { ...badWrite, message_id: uuidv7() };
    const victimSends2 = victims.map((v) => makeSend(v, 1, bob, 'd3JpdGU'));
    const settled2 = await Promise.allSettled([
      ...victimSends2.slice(0, 3).map((s, i) => sendsSvc.send(victimSenders[i]!, s)),
      sendsSvc.send(fromAlice, badWrite2),
      ...victimSends2.slice(3).map((s, i) => sendsSvc.send(victimSenders[i + 3]!, s)),
    ]);
    expect(settled2.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    for (const i of [0, 1, 2, 4, 5, 6]) expect(settled2[i]).toMatchObject({ status: 'fulfilled', value: { kind: 'accepted' } });
    const queued = new Set((await queueOf(bob)).map((e) => e.message_id));
    for (const s of [...victimSends, ...victimSends2]) expect(queued.has(s.message_id)).toBe(true);
    expect(queued.has(badWrite.message_id)).toBe(false);
    expect(queued.has(badWrite2.message_id)).toBe(false);
  });

  it('3. an upgrade to any other path is answered 404 and closed at once; silent and half-sent sockets are closed', async () => {
    const upgrade = (path: string, extra = '') =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;
    const probes = [
      ...Array.from({ length: 20 }, (_, i) => ({ send: upgrade(`/v1/other${i}`), status: '404' })),
      { send: upgrade('/'), status: '404' },
      { send: upgrade('/v1/stream'), status: '401' },
      { send: upgrade('/v1/stream', `Authorization: Bearer ${'x'.repeat(43)}\r\n`), status: '401' },
      // Never a byte, or a request head never finished: the headers timeout (2 s here) closes them.
      { send: '', status: '408' },
      { send: upgrade('/v1/stream').slice(0, 60), status: '408' },
    ];
    const started = Date.now();
    const outcomes = await Promise.all(probes.map((p) => rawExchange(server.port, p.send, 15_000)));
    outcomes.forEach((o, i) => {
      expect(o.closed, `probe ${i} still open`).toBe(true);
      expect(o.data.split('\r\n')[0]).toContain(` ${probes[i]!.status} `);
    });
    // 404/401 at once; the timeouts within the headers timeout and its check interval.
    for (const [i, o] of outcomes.entries()) if (probes[i]!.status !== '408') expect(o.ms).toBeLessThan(3000);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The server still serves.
    expect((await server.call('GET', '/live')).status).toBe(200);
  });

  it('4. a 21 MB frame of 200,000 copies is refused without stalling the event loop; a frame over the cap closes with 1009', async () => {
    const before = await state();
    // The longest event loop stall while an attacker in its own process sends; meanwhile another
    // client keeps being served (GET /live: no database work, which on PGlite runs in this loop).
    const stallDuring = async (mode: 'baseline' | 'hostile') => {
      const h = monitorEventLoopDelay({ resolution: 5 });
      let served = 0;
      let stop = false;
      const pinger = (async () => {
        while (!stop) {
          expect((await fetch(`${server.url}/live`)).status).toBe(200);
          served++;
        }
      })();
      h.enable();
      const out = await attackerProcess(server.port, tokenOf(alice), bob.devices[0]!.key, mode);
      h.disable();
      stop = true;
      await pinger;
      expect(served).toBeGreaterThan(0);
      return { out, ms: h.max / 1e6 };
    };
    // Any 21 MB frame costs its reading (receive, unmask, UTF-8 check): an ack padded with one long string.
    const baseline = await stallDuring('baseline');
    expect(baseline.out.frames[0]).toEqual({ op: 'acked', ids: ['9223372036854775807'] });
    const hostile = await stallDuring('hostile');
    expect(hostile.out.frameBytes).toBeGreaterThan(20_000_000);
    // The first frame: an error frame, the socket left open; the second, over the cap: 1009.
    expect(hostile.out.frames[0]).toMatchObject({ op: 'error', code: 'payload_too_large' });
    expect(hostile.out.closeCode).toBe(1009);
    // REST: the same send as a body is 413.
    expect(hostile.out.rest.status).toBe(413);
    expect(hostile.out.rest.json).toMatchObject({ error: { code: 'payload_too_large' } });
    console.log(`[${kind}] longest event loop stall: a 21 MB frame of one string ${baseline.ms.toFixed(0)} ms, of 200,000 copies (then 30 MB, then REST) ${hostile.ms.toFixed(0)} ms`);
    // Before the fix, parsing the copies held the loop for over half a second more than reading them.
    expect(hostile.ms).toBeLessThan(baseline.ms + 200);
    const mine = (st: string) => (JSON.parse(st)[0] as { account_id: string }[]).filter((e) => e.account_id === alice.accountId);
    expect(mine(await state())).toEqual(mine(before));
    await drainAll();
  });

  it('5. database errors reach the logs without the input that caused them', async () => {
    const hostile = [
      () => call(tokenOf(bob), 'POST', '/v1/messages/ack', { ids: [`9${MARK.length}${'9'.repeat(18)}`, OVERFLOW_ID] }),
      () => call(tokenOf(alice), 'POST', '/v1/messages', { ...makeSend(alice, 1, bob, 'eA'), recipient: `bob\u0000${MARK}` }),
      () => call(tokenOf(alice), 'POST', '/v1/messages/resend', { message_id: uuidv7(), recipient: `b\u0000${MARK}`, copy: makeSend(alice, 1, bob, 'eA').copies[0] }),
      () => call(tokenOf(alice), 'POST', '/v1/messages', { ...makeSend(alice, 1, bob, 'eA'), copies: [{ user: `\u0000${MARK}`, device: 1, key: 'k'.repeat(43), type: 2, body: sealed('eA') }] }),
    ];
    for (const h of hostile) expect((await h()).status).toBe(400);
    expect(logLines.join('')).not.toContain(MARK);
    expect(logLines.join('')).not.toContain(OVERFLOW_ID);

    // Errors PostgreSQL (or PGlite) raises over such input quote it; as the server logs them, they do not.
    const failures: unknown[] = [];
    const fail = (sql: string, params: unknown[]) => t.db.transaction((tx) => tx.query(sql, params)).catch((e: unknown) => void failures.push(e));
    await fail('SELECT $1::bigint', [`${OVERFLOW_ID}${MARK}`]);
    await fail('SELECT $1::uuid', [MARK]);
    await fail(
      "INSERT INTO accounts (username, password_hash, ak_pub, next_device_id) VALUES ($1, 'x', decode('00', 'hex'), 1), ($1, 'x', decode('00', 'hex'), 1)",
      [`dup${MARK}`],
    );
    expect(failures).toHaveLength(3);
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    for (const e of failures) {
      expect(rawText(e)).toContain(MARK);
      log.error({ error: loggableError(e) }, 'send failed');
      expect(loggableError(e)).toMatchObject({ sqlstate: expect.stringMatching(/^[0-9A-Z]{5}$/) });
    }
    expect(lines.join('')).not.toContain(MARK);
  });

  it('6. a REST send carries the delivery limits: 200 KiB to three devices is accepted, a copy over the message limit is 413', async () => {
    await drainAll();
    const label = Buffer.alloc(200 * 1024, 7).toString('base64url');
    const req = makeSend(alice, 1, bob, label);
    expect(req.copies).toHaveLength(3);
    expect(JSON.stringify(req).length).toBeGreaterThan(3 * 270_000);
    const r = await call(tokenOf(alice), 'POST', '/v1/messages', req);
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect((await queueOf(bob, 1))[0]!.body).toBe(req.copies[0]!.body);

    const before = await state();
    const over = makeSend(alice, 1, bob, Buffer.alloc(256 * 1024 - 57, 1).toString('base64url')); // 256 KiB + 1 with the §5 prefix
    expectRefused(await call(tokenOf(alice), 'POST', '/v1/messages', over), 413, 'payload_too_large');
    expect(await state()).toBe(before);
    // Other routes keep the app-wide limit.
    expectRefused(await call(tokenOf(alice), 'POST', '/v1/messages/ack', { ids: ['1'], pad: 'x'.repeat(600 * 1024) }), 413, 'payload_too_large');
    await drainAll();
  });

  it('7. the same resend twice queues one envelope and answers the same', async () => {
    await drainAll();
    const req = makeSend(alice, 1, bob, 'b3JpZw');
    expect((await call(tokenOf(alice), 'POST', '/v1/messages', req)).status).toBe(200);
    const copy = { ...req.copies.find((c) => c.user === 'bob' && c.device === 2)!, body: sealed('YWdhaW4', 1) , type: 1 };
    const resend = { message_id: req.message_id, recipient: 'bob', copy };
    const first = await call(tokenOf(alice), 'POST', '/v1/messages/resend', resend);
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    const again = await call(tokenOf(alice), 'POST', '/v1/messages/resend', resend);
    expect(again).toEqual(first);
    const [c1, c2] = await Promise.all([1, 2].map(() => call(tokenOf(alice), 'POST', '/v1/messages/resend', { ...resend, copy: { ...copy, body: sealed('dGhpcmQ', 1) } })));
    expect(c1!.status).toBe(200);
    expect(c2).toEqual(c1);
    const queue = await queueOf(bob, 1);
    expect(queue.map((e) => e.body)).toEqual([req.copies.find((c) => c.user === 'bob' && c.device === 2)!.body, copy.body, sealed('dGhpcmQ', 1)]);
    expect(queue.slice(1).map((e) => e.id)).toEqual([first.json.envelopes[0].id, c1!.json.envelopes[0].id]);
    await drainAll();
  });

  it('8. a copy whose type disagrees with its body, a wrong version byte or a too-short body is refused (422, or 400 where the schema says so) and queues nothing', async () => {
    await drainAll();
    const before = await state();
    const bodyOf = (bytes: number[]) => Buffer.from(bytes).toString('base64url');
    // What the schema can say (type 1 or 2, a body of 2+ characters) is 400; a body that
    // disagrees with its type is 422, like every refusal no schema can express.
    const cases: [number, string, number, string][] = [
      [1, sealed('AAAA', 2), 422, 'inconsistent_request'], // type 1, body says 2
      [2, sealed('AAAA', 1), 422, 'inconsistent_request'], // type 2, body says 1
      [2, bodyOf([0x02, 0x02, ...new Array(80).fill(0)]), 422, 'inconsistent_request'], // version 2
      [2, bodyOf([0x01, 0x02, ...new Array(20).fill(0)]), 422, 'inconsistent_request'], // shorter than a type 2 message
      [1, bodyOf([0x01, 0x01, 0x00, 0x05, ...new Array(1300).fill(0)]), 422, 'inconsistent_request'], // shorter than a type 1 message
      [2, '', 400, 'invalid_request'],
      [3, bodyOf([0x01, 0x03, ...new Array(80).fill(0)]), 400, 'invalid_request'], // no such type
    ];
    for (const [type, body, status, code] of cases) {
      const req = makeSend(alice, 1, bob, 'AAAA');
      const r = await call(tokenOf(alice), 'POST', '/v1/messages', { ...req, copies: req.copies.map((c) => ({ ...c, type, body })) });
      expectRefused(r, status, code);
    }
    const stream = await StreamClient.connect(server.port, tokenOf(alice));
    const req = makeSend(alice, 1, bob, 'AAAA');
    const r = await stream.send({ ...req, copies: req.copies.map((c) => ({ ...c, type: 1 })) });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ error: { code: 'inconsistent_request' } });
    await stream.close();
    expect(await state()).toBe(before);
  });
});

/** Everything an error says about itself (message, detail, the driver's error). */
function rawText(e: unknown): string {
  const o = e as { message?: unknown; detail?: unknown; driverError?: { message?: unknown; detail?: unknown } };
  return [o.message, o.detail, o.driverError?.message, o.driverError?.detail].map(String).join(' ');
}

/** Writes `send` on a raw TCP socket and collects what comes back until the server closes it. */
function rawExchange(port: number, send: string, timeoutMs: number): Promise<{ data: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let data = '';
    const s: Socket = connect(port, '127.0.0.1', () => {
      if (send) s.write(send);
    });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data, closed: false, ms: Date.now() - started });
    }, timeoutMs);
    s.on('data', (d) => (data += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true, ms: Date.now() - started });
    });
  });
}

/**
 * An attacker in its own process (its own work does not count against this event loop): builds a
 * send of 200,000 tiny copies (21 MB), sends it as a stream frame, then a 30 MB frame, and posts
 * the same send over REST. Reports the frames it got back, the close code and the REST answer.
 */
function attackerProcess(
  port: number,
  token: string,
  key: string,
  mode: 'baseline' | 'hostile',
): Promise<{ frames: unknown[]; closeCode: number; frameBytes: number; rest: { status: number; json: unknown } }> {
  const script = `
    const baseline = ${JSON.stringify(mode === 'baseline')};
    const { WebSocket } = require('ws');
    const copy = { user: 'bob', device: 1, key: ${JSON.stringify(key)}, type: 2, body: 'AQI' };
    const send = '"message_id":"0196f5a0-5c1e-7a3b-8c2d-d35335e0a478","recipient":"bob","copies":' + JSON.stringify(Array.from({ length: 200000 }, () => copy));
    const frames = baseline ? ['{"op":"ack","ids":["9223372036854775807"],"pad":"' + 'x'.repeat(send.length) + '"}'] : ['{"op":"send","rid":"x",' + send + '}', 'x'.repeat(30000000)];
    const got = [];
    const ws = new WebSocket('ws://127.0.0.1:${port}/v1/stream', ['gchat.v1'], { headers: { authorization: 'Bearer ${token}' }, perMessageDeflate: false });
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.op === 'envelopes' || f.op === 'drained') return;
      got.push(f);
      if (frames.length) ws.send(frames.shift());
      else if (baseline) ws.close();
    });
    ws.on('open', () => ws.send(frames[0]) || frames.shift());
    ws.on('error', () => {});
    ws.on('close', async (code) => {
      if (baseline) return done({ frames: got, closeCode: code, frameBytes: send.length, rest: null });
      const res = await fetch('http://127.0.0.1:${port}/v1/messages', { method: 'POST', headers: { authorization: 'Bearer ${token}', 'content-type': 'application/json' }, body: '{' + send + '}' });
      const rest = { status: res.status, json: await res.json().catch(() => null) };
      done({ frames: got, closeCode: code, frameBytes: send.length, rest });
    });
    function done(r) {
      process.stdout.write(JSON.stringify(r));
      process.exit(0);
    }
    setTimeout(() => process.exit(3), 90000);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as never) : reject(new Error(`attacker exited ${code}: ${out}`))));
  });
}
