/**
 * The bridge against a real Synapse and a real GChat server: an unencrypted DM both ways (text,
 * reply, edit, receipt, typing, delivery status), and a Matrix user the configuration does not
 * allow, who gets a polite refusal and no GChat account.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSAL } from '../../bridge/src/bridge.js';
import { gchatUsernameFor } from '../../bridge/src/ids.js';
import type { GChatClient } from '../../src/client/client.js';
import { BridgeProcess, PlainMatrixUser, TransactionTap } from '../helpers/bridge.js';
import { type Observer, registered, waitFor } from '../helpers/clients.js';
import { ServerProcess } from '../helpers/server-process.js';
import { SERVER_NAME, Synapse, synapseMissing } from '../helpers/synapse.js';

const missing = synapseMissing();

describe.skipIf(missing)('Matrix bridge: unencrypted DM through real Synapse', () => {
  let gchat: ServerProcess;
  let synapse: Synapse;
  let bridge: BridgeProcess;
  let tap: TransactionTap;
  let alice: PlainMatrixUser;
  let bob: { client: GChatClient; seen: Observer };
  const ghost = `@gchat_bob:${SERVER_NAME}`;
  let dm = ''; // the portal the first test opens

  beforeAll(async () => {
    gchat = await ServerProcess.create({ prefix: 'bridge_plain' });
    tap = await TransactionTap.start();
    bridge = await BridgeProcess.prepare({ gchatUrl: gchat.url, allowed: [`@alice:${SERVER_NAME}`], encryption: false, messageStatusEvents: true, homeserverSees: tap.url });
    tap.target = bridge.url;
    synapse = await Synapse.start([bridge.registrationFile]);
    await bridge.start(synapse.url);
    const a = await synapse.register('alice');
    alice = new PlainMatrixUser(synapse.url, a.userId, a.accessToken);
    bob = await registered(gchat.url, 'bob');
    await bob.client.start();
  });

  afterAll(async () => {
    await alice?.stop();
    await bob?.client.stop();
    await bridge?.close();
    await tap?.close();
    await synapse?.stop();
    await gchat?.close();
  });

  it('bridges text, replies, edits, cumulative read receipts, typing and delivery status both ways, once each', async () => {
    const { room_id: room } = await alice.call<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { invite: [ghost], is_direct: true, preset: 'trusted_private_chat' });
    dm = room;
    await waitFor('the ghost to join', async () => (await alice.call<{ joined: Record<string, unknown> }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/joined_members`)).joined[ghost] !== undefined);
    const aliceOnGChat = gchatUsernameFor(alice.userId);

    const first = await alice.send(room, { msgtype: 'm.text', body: 'hello bob' });
    await waitFor('bob to get the first message', () => bob.seen.messages.length === 1);
    expect(bob.seen.messages[0]).toMatchObject({ sender: aliceOnGChat, body: 'hello bob', replyTo: null, editOf: null });
    const firstId = bob.seen.messages[0]!.messageId;

    // Bob answers with a reply to it; Alice sees it from the ghost, as a reply to her event.
    await bob.client.sendText(aliceOnGChat, 'hi alice', { replyTo: firstId });
    await waitFor('alice to get the reply', () => alice.messages(room, ghost).length === 1);
    const reply = alice.messages(room, ghost)[0]!;
    expect(reply.content.body).toBe('hi alice');
    expect(reply.content['m.relates_to']).toEqual({ 'm.in_reply_to': { event_id: first } });

    // Alice edits her message; Bob gets an edit of the same message id.
    await alice.send(room, { msgtype: 'm.text', body: '* hello Bob', 'm.new_content': { msgtype: 'm.text', body: 'hello Bob' }, 'm.relates_to': { rel_type: 'm.replace', event_id: first } });
    await waitFor('bob to get the edit', () => bob.seen.messages.length === 2);
    expect(bob.seen.messages[1]).toMatchObject({ body: 'hello Bob', editOf: firstId });

    // Bob sends another; Alice's read receipt on that later one marks both of Bob's messages read
    // (a Matrix receipt covers everything up to its event).
    await bob.client.sendText(aliceOnGChat, 'are you there?');
    await waitFor('alice to get the second message', () => alice.messages(room, ghost).length === 2);
    const later = alice.messages(room, ghost)[1]!;
    expect(later.content.body).toBe('are you there?');
    const bobMsgIds = (await bob.client.messages(aliceOnGChat)).filter((m) => m.outgoing).map((m) => m.messageId);
    expect(bobMsgIds.length).toBe(2);
    expect(bobMsgIds.map((id) => bob.seen.statuses.get(id))).not.toContain('read');
    await alice.call('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/receipt/m.read/${encodeURIComponent(later.event_id)}`, {});
    await waitFor('bob to see both his messages read', () => bobMsgIds.every((id) => bob.seen.statuses.get(id) === 'read'));

    // Typing from Alice reaches Bob.
    const typing: string[] = [];
    bob.client.on('typing', (t) => typing.push(`${t.from}:${t.state}`));
    await alice.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/typing/${encodeURIComponent(alice.userId)}`, { typing: true, timeout: 30000 });
    await waitFor('bob to see alice typing', () => typing.includes(`${aliceOnGChat}:started`));

    // The GChat delivery state of Alice's message is shown in Matrix.
    await waitFor('a send status for the first message', () =>
      alice.timeline.some((e) => e.room_id === room && e.type === 'com.beeper.message_send_status' && (e.content['m.relates_to'] as { event_id?: string } | undefined)?.event_id === first && e.content.status === 'SUCCESS'),
    );
    // Exactly once, no echo.
    expect(bob.seen.messages.length).toBe(2);
    expect(alice.messages(room, ghost).length).toBe(2);
    expect(alice.messages(room, alice.userId).length).toBe(2);

    // What an admin watches: /health answers, and /metrics counted what crossed each way.
    expect((await fetch(`${bridge.url}/health`)).status).toBe(200);
    const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
    for (const direction of ['matrix_to_gchat', 'gchat_to_matrix']) {
      const n = Number(new RegExp(`^gchat_bridge_events_bridged_total\\{direction="${direction}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
      expect(n, direction).toBeGreaterThanOrEqual(2);
    }
  });

  it('after a crash, pings the homeserver out of its recovery mode: what was sent meanwhile arrives, then typing crosses again', async () => {
    // Synapse marks a bridge down when a transaction fails, retries on a backoff, and until then
    // drops ephemeral events (typing, receipts): the bridge's ping on start makes it retry at once.
    expect(dm, 'the portal of the first test').not.toBe('');
    const room = dm;
    const aliceOnGChat = gchatUsernameFor(alice.userId);
    await bridge.kill('SIGKILL');
    await alice.send(room, { msgtype: 'm.text', body: 'sent while the bridge was down' });
    await new Promise((r) => setTimeout(r, 3_000)); // Synapse's first retry (after 2 s) fails too: its next is 4 s later
    await bridge.start();
    await waitFor('the homeserver to reach the restarted bridge', async () => ((await (await fetch(`${bridge.url}/health`)).json()) as { homeserver_reaches_bridge?: boolean }).homeserver_reaches_bridge === true, 10_000);
    await waitFor('bob to get what was sent while the bridge was down', () => bob.seen.messages.some((m) => m.body === 'sent while the bridge was down'), 10_000);
    const typing: string[] = [];
    bob.client.on('typing', (t) => typing.push(`${t.from}:${t.state}`));
    // (She was still typing from the first test: Synapse sends typing only when it changes.)
    const typingPath = `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/typing/${encodeURIComponent(alice.userId)}`;
    await alice.call('PUT', typingPath, { typing: false });
    await alice.call('PUT', typingPath, { typing: true, timeout: 30000 });
    await waitFor('bob to see alice typing after the restart', () => typing.includes(`${aliceOnGChat}:started`), 10_000);
  });

  it('after a restart, bridges a message the homeserver stored and never sent, before the next one', async () => {
    // Synapse, recovering an appservice, can store a transaction made as it marks it up and never
    // send it (matrix/gaps.ts); the tap plays that homeserver for one message.
    const room = dm;
    await bridge.kill('SIGKILL');
    await bridge.start();
    tap.dropNextWith('the homeserver never sent this');
    await alice.send(room, { msgtype: 'm.text', body: 'the homeserver never sent this' });
    await waitFor('the homeserver to have sent it (to the tap)', () => tap.dropped === 1, 30_000);
    await alice.send(room, { msgtype: 'm.text', body: 'and then this' });
    await waitFor('bob to get both', () => bob.seen.messages.some((m) => m.body === 'and then this'), 30_000);
    const bodies = bob.seen.messages.map((m) => m.body);
    expect(bodies.slice(-2)).toEqual(['the homeserver never sent this', 'and then this']);
    expect(bodies.filter((b) => b === 'the homeserver never sent this').length).toBe(1);
  });

  it('politely refuses a Matrix user the configuration does not allow, and makes no GChat account', async () => {
    const m = await synapse.register('mallory');
    const mallory = new PlainMatrixUser(synapse.url, m.userId, m.accessToken);
    try {
      const { room_id: room } = await mallory.call<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { invite: [ghost], is_direct: true });
      await waitFor('the refusal', () => mallory.messages(room, ghost).some((e) => e.content.body === REFUSAL));
      const r = await fetch(`${gchat.url}/v1/accounts/${gchatUsernameFor(m.userId)}`);
      expect(r.status).toBe(404);
    } finally {
      await mallory.stop();
    }
  });
});
