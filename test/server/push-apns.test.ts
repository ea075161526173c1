/**
 * APNs end to end on loopback: a real server sends through @parse/node-apn to a loopback HTTP/2
 * APNs that verifies the ES256 provider token against the .p8 key and enforces the headers and
 * payload limits. A call offer to an offline iOS device is one VoIP push carrying only an opaque
 * call id; a message is one content-free alert; 410 Unregistered and BadDeviceToken remove the token.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientAccount, registerAccount } from '../helpers/accounts.js';
import { LoopbackApns } from '../helpers/apns-service.js';
import { openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { metric, pushesSettled, send, uniqueName } from './push-fixture.js';

const BUNDLE = 'chat.gchat.ios';

describe('push: APNs (loopback HTTP/2)', () => {
  let t: TestDatabase;
  let apns: LoopbackApns;
  let server: TestServer;
  let alice: ClientAccount;

  beforeAll(async () => {
    t = await openTestDatabase('pglite');
    apns = await LoopbackApns.start();
    server = await startTestServer(t.db, { delivery: true, env: { ...apns.env(), GCHAT_PUSH_GRACE_MS: '1000', GCHAT_PUSH_COALESCE_SECONDS: '30' } });
    alice = await registerAccount(server, uniqueName('alice'));
  });
  afterAll(async () => {
    await server?.close();
    await apns?.close();
    await t?.close();
  });

  /** An iOS device with its regular and its PushKit (VoIP) token. */
  async function iosDevice(): Promise<{ account: ClientAccount; alertToken: string; voipToken: string }> {
    const account = await registerAccount(server, uniqueName('bob'));
    const token = account.devices[0]!.token;
    const alertToken = randomBytes(32).toString('hex');
    const voipToken = randomBytes(32).toString('hex');
    for (const [kind, tok] of [['apns', alertToken], ['apns-voip', voipToken]] as const) {
      const r = await server.call('PUT', '/v1/push/registrations', { token, body: { kind, token: tok.toUpperCase(), bundle: BUNDLE } });
      expect(r.status, JSON.stringify(r.json)).toBe(204);
    }
    return { account, alertToken, voipToken };
  }

  it('sends one VoIP push for a call offer to an offline iOS device, holding only an opaque call id', async () => {
    const { account: bob, alertToken, voipToken } = await iosDevice();
    const offer = await send(server, alice, bob, { urgent: true });
    await pushesSettled(server);
    expect(apns.violations).toEqual([]);
    const voip = apns.pushesTo(voipToken);
    expect(voip).toHaveLength(1);
    const p = voip[0]!;
    expect(p).toMatchObject({ pushType: 'voip', topic: `${BUNDLE}.voip`, priority: '10', expiration: '0' });
    expect(p.bytes).toBeLessThanOrEqual(5120);
    // Only the call id: the offer's message_id, which the device finds in its queue. No sender, no content.
    expect(p.payload).toEqual({ call_id: offer.messageId });
    expect(JSON.stringify(p.payload)).not.toContain(alice.username);
    expect(JSON.stringify(p.payload)).not.toContain(offer.body.slice(0, 16));
    // The VoIP push stands in for the regular one.
    expect(apns.pushesTo(alertToken)).toEqual([]);
  });

  it('wakes an offline iOS device for a message with one content-free alert on the regular token, never on the VoIP token', async () => {
    const { account: bob, alertToken, voipToken } = await iosDevice();
    const m1 = await send(server, alice, bob);
    await send(server, alice, bob);
    await pushesSettled(server);
    expect(apns.violations).toEqual([]);
    expect(apns.pushesTo(voipToken)).toEqual([]);
    const alerts = apns.pushesTo(alertToken);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ pushType: 'alert', topic: BUNDLE });
    expect(alerts[0]!.bytes).toBeLessThanOrEqual(4096);
    const text = JSON.stringify(alerts[0]!.payload);
    for (const secret of [m1.messageId, m1.body.slice(0, 16), alice.username]) expect(text).not.toContain(secret);
  });

  it('removes a token APNs answers 410 Unregistered or 400 BadDeviceToken', async () => {
    const { account: bob, alertToken, voipToken } = await iosDevice();
    const token = bob.devices[0]!.token;
    const removed = await metric(server, 'gchat_push_registrations_removed_total', { provider: 'apns' });
    apns.kill(voipToken, 'Unregistered');
    await send(server, alice, bob, { urgent: true });
    await pushesSettled(server);
    let list = (await server.call('GET', '/v1/push/registrations', { token })).json as { registrations: { kind: string }[] };
    expect(list.registrations.map((r) => r.kind)).toEqual(['apns']);
    apns.kill(alertToken, 'BadDeviceToken');
    await send(server, alice, bob);
    await pushesSettled(server);
    list = (await server.call('GET', '/v1/push/registrations', { token })).json as { registrations: { kind: string }[] };
    expect(list.registrations).toEqual([]);
    expect(await metric(server, 'gchat_push_registrations_removed_total', { provider: 'apns' })).toBe(removed + 2);
    expect(apns.violations).toEqual([]);
  });
});
