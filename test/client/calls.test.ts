/**
 * The SDK's call signalling and push registration against a real server process: offer, answer,
 * ICE and hang-up travel end to end encrypted and arrive as `call` events; a call offer is sent
 * urgent, so an offline device registered for Web Push gets an immediate "call" wake-up even
 * inside the coalescing window of an ordinary one; ICE servers come from /v1/turn.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallSignal } from '../../src/client/core.js';
import { registered, waitFor } from '../helpers/clients.js';
import { LoopbackPushService } from '../helpers/push-service.js';
import { ServerProcess } from '../helpers/server-process.js';

let server: ServerProcess;
let push: LoopbackPushService;
let n = 0;
const uniq = (name: string) => `${name}${++n}${Date.now() % 100000}`;

beforeAll(async () => {
  push = await LoopbackPushService.start();
  server = await ServerProcess.create({
    prefix: 'gchat_calls',
    env: {
      GCHAT_WEBPUSH_ALLOW_HTTP: 'true',
      GCHAT_PUSH_GRACE_MS: '1000',
      GCHAT_PUSH_COALESCE_SECONDS: '60',
      GCHAT_TURN_SECRET: 'a-turn-secret-of-some-length',
      GCHAT_TURN_URLS: 'turn:127.0.0.1:3478?transport=udp,turns:turn.example.org:5349',
    },
  });
}, 300_000);
afterAll(async () => {
  await server?.close();
  await push?.close();
});

describe('client SDK: calls and push registration', () => {
  it('carries offer, answer, ICE and hang-up end to end as call events', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const atAlice: CallSignal[] = [];
    const atBob: CallSignal[] = [];
    alice.client.on('call', (c) => atAlice.push(c));
    bob.client.on('call', (c) => atBob.push(c));
    await alice.client.start();
    await bob.client.start();
    try {
      const callId = alice.client.newCallId();
      expect(callId).toMatch(/^[0-9a-f]{32}$/);
      await alice.client.sendCallOffer(bob.client.userId, callId, 'v=0 offer-sdp');
      await waitFor('bob sees the offer', () => atBob.some((c) => c.kind === 'offer'));
      expect(atBob[0]).toMatchObject({ kind: 'offer', callId, sdp: 'v=0 offer-sdp', peer: alice.client.userId, own: false, from: { user: alice.client.userId, device: 1 } });
      await bob.client.sendCallAnswer(alice.client.userId, callId, 'v=0 answer-sdp');
      await bob.client.sendCallIce(alice.client.userId, callId, [{ candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 }]);
      await alice.client.sendCallIce(bob.client.userId, callId, [{ candidate: 'candidate:2 1 udp 41885439 203.0.113.9 3478 typ relay', sdpMid: '0', sdpMLineIndex: 0 }]);
      await waitFor('alice sees answer and ICE', () => atAlice.some((c) => c.kind === 'answer') && atAlice.some((c) => c.kind === 'ice'));
      expect(atAlice.find((c) => c.kind === 'answer')).toMatchObject({ callId, sdp: 'v=0 answer-sdp', peer: bob.client.userId });
      const ice = atAlice.find((c) => c.kind === 'ice');
      expect(ice?.kind === 'ice' && ice.candidates[0]?.candidate).toContain('typ host');
      await alice.client.sendCallHangup(bob.client.userId, callId, 'hangup');
      await waitFor('bob sees the hang-up', () => atBob.some((c) => c.kind === 'hangup'));
      expect(atBob.filter((c) => c.kind === 'ice')).toHaveLength(1);
      expect(atBob.find((c) => c.kind === 'hangup')).toMatchObject({ callId, reason: 'hangup' });
      // Calls are not conversation messages.
      expect(await bob.client.messages(alice.client.userId)).toEqual([]);
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });

  it('registers a Web Push subscription; a message wakes the offline device, a call offer wakes it again at once, urgently', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const sub = push.subscribe();
    expect(Buffer.from(await bob.client.vapidPublicKey(), 'base64url')).toHaveLength(65);
    await bob.client.registerWebPush({ endpoint: sub.endpoint, keys: sub.keys });
    expect(await bob.client.pushRegistrations()).toEqual([{ kind: 'webpush', address: sub.endpoint, bundle: null }]);
    await alice.client.start();
    try {
      await alice.client.sendText(bob.client.userId, 'are you there?');
      await waitFor('a wake-up', () => push.pushesTo(sub).length === 1);
      await alice.client.sendCallOffer(bob.client.userId, alice.client.newCallId(), 'v=0 offer');
      await waitFor('a call wake-up', () => push.pushesTo(sub).length === 2);
      const [wake, call] = push.pushesTo(sub);
      expect(JSON.parse(wake!.plaintext)).toEqual({ v: 1, kind: 'wake' });
      expect(JSON.parse(call!.plaintext)).toEqual({ v: 1, kind: 'call' });
      expect(call!.urgency).toBe('high');
      expect(push.violations).toEqual([]);
    } finally {
      await alice.client.stop();
    }
    await bob.client.unregisterPush('webpush');
    expect(await bob.client.pushRegistrations()).toEqual([]);
  });

  it('gives ICE servers from the server TURN configuration', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const servers = await alice.client.iceServers();
    expect(servers).toHaveLength(1);
    expect(servers![0]!.urls).toEqual(['turn:127.0.0.1:3478?transport=udp', 'turns:turn.example.org:5349']);
    expect(servers![0]!.username).toMatch(new RegExp(`^\\d+:${alice.client.userId}\\.1$`));
    expect(servers![0]!.credential).toMatch(/^[A-Za-z0-9+/]{27}=$/);
  });
});
