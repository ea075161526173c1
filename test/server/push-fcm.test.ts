/**
 * FCM HTTP v1 end to end on loopback: the server exchanges a service-account JWT for an access
 * token at the file's token_uri and sends data-only, high-priority wake-ups to a stand-in that
 * enforces the v1 contract. One wake-up for a burst to an offline Android device, none to an
 * online one; UNREGISTERED removes the token.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientAccount, registerAccount } from '../helpers/accounts.js';
import { openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { LoopbackFcm } from '../helpers/fcm-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { StreamClient } from './delivery-fixture.js';
import { metric, pushesSettled, send, uniqueName } from './push-fixture.js';

describe('push: FCM HTTP v1 (loopback)', () => {
  let t: TestDatabase;
  let fcm: LoopbackFcm;
  let server: TestServer;
  let alice: ClientAccount;

  beforeAll(async () => {
    t = await openTestDatabase('pglite');
    fcm = await LoopbackFcm.start();
    server = await startTestServer(t.db, { delivery: true, env: { ...fcm.env(), GCHAT_PUSH_GRACE_MS: '1500', GCHAT_PUSH_COALESCE_SECONDS: '30' } });
    alice = await registerAccount(server, uniqueName('alice'));
  });
  afterAll(async () => {
    await server?.close();
    await fcm?.close();
    await t?.close();
  });

  async function androidDevice(): Promise<{ account: ClientAccount; fcmToken: string }> {
    const account = await registerAccount(server, uniqueName('bob'));
    const fcmToken = `${randomBytes(11).toString('base64url')}:APA91b${randomBytes(100).toString('base64url')}`;
    const r = await server.call('PUT', '/v1/push/registrations', { token: account.devices[0]!.token, body: { kind: 'fcm', token: fcmToken } });
    expect(r.status, JSON.stringify(r.json)).toBe(204);
    return { account, fcmToken };
  }

  it('sends one data-only, high-priority wake-up with no content for a burst to an offline Android device', async () => {
    const { account: bob, fcmToken } = await androidDevice();
    const sent = [await send(server, alice, bob), await send(server, alice, bob), await send(server, alice, bob)];
    await pushesSettled(server);
    expect(fcm.violations).toEqual([]);
    const msgs = fcm.messagesTo(fcmToken);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.data).toEqual({ v: '1', kind: 'wake' });
    expect(msgs[0]!.android.priority).toBe('HIGH');
    const text = JSON.stringify(msgs[0]);
    for (const s of sent) for (const secret of [s.messageId, s.body.slice(0, 16)]) expect(text).not.toContain(secret);
    expect(text).not.toContain(alice.username);
    expect(fcm.tokenExchanges).toBe(1);
  });

  it('sends nothing to an Android device whose stream takes the message; reuses the access token', async () => {
    const { account: bob, fcmToken } = await androidDevice();
    const stream = await StreamClient.connect(server.port, bob.devices[0]!.token);
    try {
      await stream.until(() => stream.drained);
      const m = await send(server, alice, bob);
      await stream.until(() => stream.received.some((e) => e.message_id === m.messageId) && stream.confirmed.size > 0);
      await pushesSettled(server);
      expect(fcm.messagesTo(fcmToken)).toEqual([]);
    } finally {
      await stream.close();
    }
    const offer = await send(server, alice, bob, { urgent: true });
    await pushesSettled(server);
    const msgs = fcm.messagesTo(fcmToken);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.data).toEqual({ v: '1', kind: 'call', call_id: offer.messageId });
    expect(fcm.tokenExchanges).toBe(1);
    expect(fcm.violations).toEqual([]);
  });

  it('removes a token FCM answers 404 UNREGISTERED', async () => {
    const { account: bob, fcmToken } = await androidDevice();
    const removed = await metric(server, 'gchat_push_registrations_removed_total', { provider: 'fcm' });
    fcm.unregister(fcmToken);
    await send(server, alice, bob);
    await pushesSettled(server);
    expect((await server.call('GET', '/v1/push/registrations', { token: bob.devices[0]!.token })).json).toEqual({ registrations: [] });
    expect(await metric(server, 'gchat_push_registrations_removed_total', { provider: 'fcm' })).toBe(removed + 1);
    expect(fcm.violations).toEqual([]);
  });
});
