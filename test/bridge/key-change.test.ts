/**
 * A GChat contact's account key changes (Bob signs up again under the same name): the bridge
 * announces it in the portal and holds the Matrix user's messages until she accepts the new key
 * with `accept-key` in the bot's room; then the held message reaches the new Bob exactly once.
 * Unencrypted portal, real Synapse, real GChat server on PostgreSQL.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gchatUsernameFor } from '../../bridge/src/ids.js';
import type { GChatClient } from '../../src/client/client.js';
import { BridgeProcess, PlainMatrixUser } from '../helpers/bridge.js';
import { type Observer, registered, waitFor } from '../helpers/clients.js';
import { ServerProcess } from '../helpers/server-process.js';
import { SERVER_NAME, Synapse, synapseMissing } from '../helpers/synapse.js';

const missing = synapseMissing();

describe.skipIf(missing)('Matrix bridge: a GChat contact’s key change', () => {
  let gchat: ServerProcess;
  let synapse: Synapse;
  let bridge: BridgeProcess;
  let alice: PlainMatrixUser;
  const bobs: { client: GChatClient; seen: Observer }[] = [];
  const ghost = `@gchat_bob:${SERVER_NAME}`;
  const bot = `@gchatbot:${SERVER_NAME}`;

  beforeAll(async () => {
    gchat = await ServerProcess.create({ prefix: 'bridge_keys' });
    bridge = await BridgeProcess.prepare({ gchatUrl: gchat.url, allowed: [`@alice:${SERVER_NAME}`], encryption: false });
    synapse = await Synapse.start([bridge.registrationFile]);
    await bridge.start(synapse.url);
    const a = await synapse.register('alice');
    alice = new PlainMatrixUser(synapse.url, a.userId, a.accessToken);
    const bob = await registered(gchat.url, 'bob');
    await bob.client.start();
    bobs.push(bob);
  });

  afterAll(async () => {
    await alice?.stop();
    for (const b of bobs) await b.client.stop();
    await bridge?.close();
    await synapse?.stop();
    await gchat?.close();
  });

  it('announces the change, holds Alice’s message until she accepts the key, then delivers it once', async () => {
    const dbUrl = gchat.databaseUrl;
    if (!dbUrl) throw new Error('this test re-registers Bob by deleting his account row: it needs the GChat server on PostgreSQL');
    const aliceOnGChat = gchatUsernameFor(alice.userId);
    const path = (room: string) => `/_matrix/client/v3/rooms/${encodeURIComponent(room)}`;

    // Alice's room with the bridge bot (for commands) and her portal with Bob.
    const { room_id: mgmt } = await alice.call<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { invite: [bot], is_direct: true });
    await waitFor('the bot’s help', () => alice.messages(mgmt, bot).length === 1);
    const { room_id: room } = await alice.call<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { invite: [ghost], is_direct: true, preset: 'trusted_private_chat' });
    await waitFor('the ghost to join', async () => (await alice.call<{ joined: Record<string, unknown> }>('GET', `${path(room)}/joined_members`)).joined[ghost] !== undefined);
    await alice.send(room, { msgtype: 'm.text', body: 'before' });
    const [oldBob] = bobs;
    await waitFor('bob to get the first message (his key is pinned)', () => oldBob!.seen.messages.length === 1);

    // Bob's account goes away on the server and he signs up again under the same name: a new account key.
    await oldBob!.client.stop();
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    await c.query('DELETE FROM accounts WHERE username = $1', ['bob']);
    await c.end();
    const newBob = await registered(gchat.url, 'bob');
    await newBob.client.start();
    bobs.push(newBob);

    // Alice writes meanwhile: the portal tells her the key changed, and the message is held.
    await alice.send(room, { msgtype: 'm.text', body: 'is this still you?' });
    const isKeyNotice = (e: { content: Record<string, unknown> }) => e.content.msgtype === 'm.notice' && String(e.content.body).includes('key changed') && String(e.content.body).includes('accept-key bob');
    await waitFor('the key-change notice in the portal', () => alice.messages(room, ghost).some(isKeyNotice), 90_000);
    // Nothing has reached the new Bob (a grace period for a wrongly sent message to arrive).
    await new Promise((r) => setTimeout(r, 2000));
    expect(newBob.seen.messages).toEqual([]);
    expect(await newBob.client.messages(aliceOnGChat)).toEqual([]);

    // Alice accepts the new key in the bot's room: the held message goes out, exactly once.
    await alice.send(mgmt, { msgtype: 'm.text', body: 'accept-key bob' });
    await waitFor('the bot to confirm', () => alice.messages(mgmt, bot).some((e) => String(e.content.body).startsWith('Accepted bob')));
    await waitFor('the new bob to get the held message', () => newBob.seen.messages.some((m) => m.body === 'is this still you?'), 90_000);
    await alice.send(room, { msgtype: 'm.text', body: 'after' });
    await waitFor('the new bob to get the next message', () => newBob.seen.messages.some((m) => m.body === 'after'), 90_000);
    expect(newBob.seen.messages.map((m) => [m.sender, m.body])).toEqual([
      [aliceOnGChat, 'is this still you?'],
      [aliceOnGChat, 'after'],
    ]);
    // The old Bob's device got only what was sent before the change; the notice was shown once.
    expect(oldBob!.seen.messages.map((m) => m.body)).toEqual(['before']);
    expect(alice.messages(room, ghost).filter(isKeyNotice).length).toBe(1);
  });
});
