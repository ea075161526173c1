/**
 * Web Push end to end on loopback: a real server (PostgreSQL and PGlite) sends wake-ups to a
 * loopback RFC 8030 push service that checks the VAPID JWT and decrypts each payload with the
 * subscription's private key. An offline device gets exactly one content-free wake-up for a
 * burst of messages, an online one none, a call offer an urgent one; 404/410 removes the
 * subscription; bad registrations are refused and change nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ClientAccount, registerAccount } from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { LoopbackPushService, type Subscription } from '../helpers/push-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { StreamClient } from './delivery-fixture.js';
import { metric, pushesSettled, send, uniqueName } from './push-fixture.js';

// The grace leaves an online device ample time to ack on a slow, shared machine.
const ENV = { GCHAT_WEBPUSH_ALLOW_HTTP: 'true', GCHAT_PUSH_GRACE_MS: '1500', GCHAT_PUSH_COALESCE_SECONDS: '30', GCHAT_VAPID_SUBJECT: 'mailto:ops@gchat.test' };

await describeEachDatabase('push: Web Push', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let service: LoopbackPushService;
  let alice: ClientAccount;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    service = await LoopbackPushService.start();
    server = await startTestServer(t.db, { delivery: true, env: ENV });
    alice = await registerAccount(server, uniqueName('alice'));
  });
  afterAll(async () => {
    await server?.close();
    await service?.close();
    await t?.close();
  });

  async function subscribed(prefix: string): Promise<{ account: ClientAccount; sub: Subscription }> {
    const account = await registerAccount(server, uniqueName(prefix));
    const sub = service.subscribe();
    const r = await server.call('PUT', '/v1/push/registrations', { token: account.devices[0]!.token, body: { kind: 'webpush', endpoint: sub.endpoint, keys: sub.keys } });
    expect(r.status, JSON.stringify(r.json)).toBe(204);
    return { account, sub };
  }

  it('wakes an offline device exactly once for a burst of messages, with no content, signed with the server VAPID key', async () => {
    const { account: bob, sub } = await subscribed('bob');
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await send(server, alice, bob));
    await pushesSettled(server);
    const pushes = service.pushesTo(sub);
    expect(service.violations).toEqual([]);
    expect(pushes).toHaveLength(1);
    const p = pushes[0]!;
    expect(JSON.parse(p.plaintext)).toEqual({ v: 1, kind: 'wake' });
    for (const s of sent) {
      expect(p.plaintext).not.toContain(s.messageId);
      expect(p.plaintext).not.toContain(s.body.slice(0, 16));
    }
    expect(p.plaintext).not.toContain(alice.username);
    expect(p.urgency).toBe('normal');
    expect(p.ttl).toBeGreaterThan(0);
    const vapid = await server.call('GET', '/v1/push/vapid');
    expect(p.vapidKey).toBe((vapid.json as { public_key: string }).public_key);
    expect(p.claims.sub).toBe('mailto:ops@gchat.test');
    expect(await metric(server, 'gchat_push_sent_total', { provider: 'webpush' })).toBeGreaterThanOrEqual(1);
    // The messages are still there for the device to fetch when it wakes.
    const q = await server.call('GET', '/v1/messages', { token: bob.devices[0]!.token });
    expect((q.json as { envelopes: { message_id: string }[] }).envelopes.map((e) => e.message_id)).toEqual(sent.map((s) => s.messageId));
  });

  it('sends nothing to a device whose stream takes the message', async () => {
    const { account: bob, sub } = await subscribed('bob');
    const stream = await StreamClient.connect(server.port, bob.devices[0]!.token);
    try {
      await stream.until(() => stream.drained);
      const m = await send(server, alice, bob);
      await stream.until(() => stream.confirmed.size > 0 && stream.received.some((e) => e.message_id === m.messageId));
      await pushesSettled(server);
      expect(service.pushesTo(sub)).toEqual([]);
    } finally {
      await stream.close();
    }
    // Once the device is gone again, the next message wakes it.
    await send(server, alice, bob);
    await pushesSettled(server);
    expect(service.pushesTo(sub)).toHaveLength(1);
  });

  it('wakes for a call offer at once with Urgency high, even inside the coalescing window', async () => {
    const { account: bob, sub } = await subscribed('bob');
    await send(server, alice, bob);
    await pushesSettled(server);
    const offer = await send(server, alice, bob, { urgent: true });
    await pushesSettled(server);
    const pushes = service.pushesTo(sub);
    expect(service.violations).toEqual([]);
    expect(pushes).toHaveLength(2);
    expect(pushes[1]!.urgency).toBe('high');
    expect(JSON.parse(pushes[1]!.plaintext)).toEqual({ v: 1, kind: 'call' });
    expect(pushes[1]!.plaintext).not.toContain(offer.messageId);
  });

  it('removes a subscription the push service answers 410 (and 404), and sends to it no more', async () => {
    for (const status of [410, 404]) {
      const { account: bob, sub } = await subscribed('bob');
      const removedBefore = await metric(server, 'gchat_push_registrations_removed_total', { provider: 'webpush' });
      service.answer(sub, status);
      await send(server, alice, bob);
      await pushesSettled(server);
      const list = await server.call('GET', '/v1/push/registrations', { token: bob.devices[0]!.token });
      expect(list.json).toEqual({ registrations: [] });
      expect(await metric(server, 'gchat_push_registrations_removed_total', { provider: 'webpush' })).toBe(removedBefore + 1);
      // A send still works; no push is attempted.
      const failedBefore = await metric(server, 'gchat_push_failed_total', { provider: 'webpush' });
      await send(server, alice, bob);
      await pushesSettled(server);
      expect(await metric(server, 'gchat_push_failed_total', { provider: 'webpush' })).toBe(failedBefore);
    }
  });

  it('keeps one registration per kind: a new subscription replaces the old; DELETE removes it', async () => {
    const { account: bob, sub: old } = await subscribed('bob');
    const fresh = service.subscribe();
    const token = bob.devices[0]!.token;
    expect((await server.call('PUT', '/v1/push/registrations', { token, body: { kind: 'webpush', endpoint: fresh.endpoint, keys: fresh.keys } })).status).toBe(204);
    await send(server, alice, bob);
    await pushesSettled(server);
    expect(service.pushesTo(old)).toEqual([]);
    expect(service.pushesTo(fresh)).toHaveLength(1);
    expect((await server.call('DELETE', '/v1/push/registrations/webpush', { token })).status).toBe(204);
    expect((await server.call('DELETE', '/v1/push/registrations/webpush', { token })).status).toBe(404);
    expect((await server.call('GET', '/v1/push/registrations', { token })).json).toEqual({ registrations: [] });
  });

  it('refuses bad registrations with a 4xx and stores nothing', async () => {
    const bob = await registerAccount(server, uniqueName('bob'));
    const token = bob.devices[0]!.token;
    const sub = service.subscribe();
    const offCurve = Buffer.alloc(65, 1);
    offCurve[0] = 4;
    // What the schema says is 400; what only the service can judge (a URL, a point on the curve) is 422.
    const bad: [unknown, number, string][] = [
      [{}, 400, 'invalid_request'],
      [{ kind: 'webpush', endpoint: sub.endpoint }, 400, 'invalid_request'],
      [{ kind: 'webpush', endpoint: 'not a url', keys: sub.keys }, 422, 'bad_endpoint'],
      [{ kind: 'webpush', endpoint: 'ftp://127.0.0.1/x', keys: sub.keys }, 422, 'bad_endpoint'],
      [{ kind: 'webpush', endpoint: sub.endpoint.replace('://', '://user:pw@'), keys: sub.keys }, 422, 'bad_endpoint'],
      [{ kind: 'webpush', endpoint: sub.endpoint, keys: { ...sub.keys, p256dh: offCurve.toString('base64url') } }, 422, 'bad_key'],
      [{ kind: 'webpush', endpoint: sub.endpoint, keys: { ...sub.keys, auth: 'short' } }, 400, 'invalid_request'],
      [{ kind: 'webpush', endpoint: `${sub.endpoint}${'x'.repeat(3000)}`, keys: sub.keys }, 400, 'invalid_request'],
      [{ kind: 'apns', token: 'zz', bundle: 'com.example.app' }, 400, 'invalid_request'],
      [{ kind: 'apns', token: 'ab'.repeat(32), bundle: 'no dots' }, 400, 'invalid_request'],
      [{ kind: 'fcm', token: 'bad token with spaces' }, 400, 'invalid_request'],
      [{ kind: 'carrier-pigeon', token: 'x' }, 400, 'invalid_request'],
    ];
    for (const [body, status, code] of bad) {
      const r = await server.call('PUT', '/v1/push/registrations', { token, body });
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect((r.json as { error: { code: string } }).error.code).toBe(code);
    }
    expect((await server.call('PUT', '/v1/push/registrations', { body: { kind: 'webpush', endpoint: sub.endpoint, keys: sub.keys } })).status).toBe(401);
    expect((await server.call('GET', '/v1/push/registrations')).status).toBe(401);
    expect((await server.call('DELETE', '/v1/push/registrations/pigeon', { token })).status).toBe(400);
    expect((await server.call('GET', '/v1/push/registrations', { token })).json).toEqual({ registrations: [] });
  });

  it("removing a device removes its registrations", async () => {
    const { account: bob } = await subscribed('bob');
    const token = bob.devices[0]!.token;
    expect((await server.call('DELETE', `/v1/accounts/${bob.username}/devices/1`, { token })).status).toBe(204);
    const rows = await t.db.transaction((tx) => tx.query('SELECT 1 FROM push_registrations r JOIN accounts a ON a.id = r.account_id WHERE a.username = $1', [bob.username]));
    expect(rows.rows).toEqual([]);
  });

  it('documents the push and TURN routes in the OpenAPI document', async () => {
    const doc = (await server.call('GET', '/v1/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/v1/push/registrations'] ?? {}).sort()).toEqual(['get', 'put']);
    expect(Object.keys(doc.paths['/v1/push/registrations/{kind}'] ?? {})).toEqual(['delete']);
    expect(Object.keys(doc.paths['/v1/push/vapid'] ?? {})).toEqual(['get']);
    expect(Object.keys(doc.paths['/v1/turn'] ?? {})).toEqual(['get']);
    const put = doc.paths['/v1/push/registrations']!.put as { requestBody: { content: Record<string, { schema: { $ref?: string } }> }; security: unknown[] };
    expect(put.requestBody.content['application/json']!.schema.$ref).toBe('#/components/schemas/PushRegistrationIn');
    expect(put.security).toEqual([{ deviceToken: [] }]);
  });

  it('keeps the VAPID key across restarts and instances: it lives in the database', async () => {
    const first = (await server.call('GET', '/v1/push/vapid')).json as { public_key: string };
    expect(Buffer.from(first.public_key, 'base64url')).toHaveLength(65);
    const other = await startTestServer(t.db, { delivery: true, env: ENV });
    try {
      expect((await other.call('GET', '/v1/push/vapid')).json).toEqual(first);
    } finally {
      await other.close();
    }
  });
});
