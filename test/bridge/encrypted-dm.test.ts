/**
 * End-to-bridge encryption against a real Synapse: a Matrix user on matrix-js-sdk with Rust crypto,
 * in an encrypted DM with a GChat user's ghost, and the GChat user on the client SDK. 100 messages
 * each way with replies and edits, the bridge SIGKILLed and restarted in the middle while both sides
 * keep sending; every message arrives exactly once, decrypted, in order per sender; read receipts
 * and typing cross too.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { gchatUsernameFor } from '../../bridge/src/ids.js';
import type { GChatClient } from '../../src/client/client.js';
import { BridgeProcess } from '../helpers/bridge.js';
import { type Observer, registered, waitFor } from '../helpers/clients.js';
import { JsMatrixUser } from '../helpers/matrix-js.js';
import { ServerProcess } from '../helpers/server-process.js';
import { SERVER_NAME, Synapse, synapseMissing } from '../helpers/synapse.js';

const missing = synapseMissing();
const N = Number(process.env.BRIDGE_TEST_MESSAGES ?? 100);
const KILL_AT = Math.floor(N / 2);
const DOWN_SENDS = Math.min(10, N - KILL_AT);

describe.skipIf(missing)('Matrix bridge: encrypted DM through real Synapse, with a SIGKILL in the middle', () => {
  let gchat: ServerProcess;
  let synapse: Synapse;
  let bridge: BridgeProcess;
  let alice: JsMatrixUser;
  let bob: { client: GChatClient; seen: Observer };
  const ghost = `@gchat_bob:${SERVER_NAME}`;

  beforeAll(async () => {
    gchat = await ServerProcess.create({ prefix: 'bridge_e2e' });
    bridge = await BridgeProcess.prepare({ gchatUrl: gchat.url, allowed: [`@alice:${SERVER_NAME}`], encryption: true });
    synapse = await Synapse.start([bridge.registrationFile]);
    await bridge.start(synapse.url);
    alice = await JsMatrixUser.start(synapse.url, await synapse.register('alice'));
    bob = await registered(gchat.url, 'bob');
    await bob.client.start();
  });

  afterAll(async () => {
    alice?.stop();
    await bob?.client.stop();
    await bridge?.close();
    await synapse?.stop();
    await gchat?.close();
  });

  it(`${N} messages each way with replies and edits, exactly once, decrypted, in order`, async () => {
    // What a person would check first: which messages are missing on which side.
    let missing = (): string => '';
    onTestFailed(() => console.log(`${missing()}synapse log:\n${synapse.log.slice(-6_000)}\nbridge log:\n${bridge.log}`));
    const { room_id: room } = await alice.client.createRoom({
      invite: [ghost],
      is_direct: true,
      preset: 'trusted_private_chat' as never,
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    await waitFor('the ghost to join', async () => (await alice.client.getJoinedRoomMembers(room)).joined[ghost] !== undefined, 60_000);
    // As a person would: Alice's client knows the ghost's device before the first message (else its
    // first Megolm index goes to no bridge device and the bridge reports it undecryptable after 60 s).
    await waitFor("alice's client to see the ghost's device", async () => ((await alice.client.getCrypto()!.getUserDeviceInfo([ghost], true)).get(ghost)?.size ?? 0) > 0, 60_000);
    const aliceOnGChat = gchatUsernameFor(alice.userId);

    const fromBob = () => alice.messages(room, ghost);
    const fromAlice = () => bob.seen.messages.filter((m) => m.sender === aliceOnGChat);
    missing = () => {
      const absent = (want: string, have: Set<unknown>) => Array.from({ length: N }, (_, i) => `${want} ${i}`).filter((b) => !have.has(b)).join(', ') || 'none';
      return `bob has ${fromAlice().length} from alice, missing: ${absent('m2g', new Set(fromAlice().map((m) => m.body)))}\n` +
        `alice has ${fromBob().length} from bob, missing: ${absent('g2m', new Set(fromBob().map((e) => e.content.body)))}\n`;
    };
    const aliceEvents: string[] = [];
    const bobIds: string[] = [];

    async function aliceSends(i: number) {
      if (i % 10 === 3) await waitFor('something from bob to reply to', () => fromBob().length > 0);
      const lastFromBob = fromBob().at(-1);
      const content: Record<string, unknown> = { msgtype: 'm.text', body: `m2g ${i}` };
      if (i % 10 === 3 && lastFromBob) content['m.relates_to'] = { 'm.in_reply_to': { event_id: lastFromBob.eventId } };
      const { event_id } = await alice.client.sendEvent(room, 'm.room.message' as never, content as never);
      aliceEvents.push(event_id);
      if (i % 10 === 7) {
        await alice.client.sendEvent(room, 'm.room.message' as never, { msgtype: 'm.text', body: `* m2g ${i} edited`, 'm.new_content': { msgtype: 'm.text', body: `m2g ${i} edited` }, 'm.relates_to': { rel_type: 'm.replace', event_id } } as never);
      }
    }
    async function bobSends(i: number) {
      if (i % 10 === 3) await waitFor('something from alice to reply to', () => fromAlice().length > 0);
      const lastFromAlice = fromAlice().at(-1);
      const id = await bob.client.sendText(aliceOnGChat, `g2m ${i}`, i % 10 === 3 && lastFromAlice ? { replyTo: lastFromAlice.messageId } : {});
      bobIds.push(id);
      if (i % 10 === 7) await bob.client.sendText(aliceOnGChat, `g2m ${i} edited`, { editOf: id });
    }
    const both = async (from: number, to: number) => {
      await Promise.all([
        (async () => {
          for (let i = from; i < to; i++) await aliceSends(i);
        })(),
        (async () => {
          for (let i = from; i < to; i++) await bobSends(i);
        })(),
      ]);
    };

    await both(0, KILL_AT);
    if (process.env.BRIDGE_TEST_NO_KILL) {
      await both(KILL_AT, N);
    } else {
      await bridge.kill('SIGKILL');
      await both(KILL_AT, KILL_AT + DOWN_SENDS); // while the bridge is down
      await bridge.start();
      await both(KILL_AT + DOWN_SENDS, N);
    }

    const edits = Array.from({ length: N }, (_, i) => i).filter((i) => i % 10 === 7).length;
    await waitFor(`bob to get alice's ${N + edits} messages`, () => fromAlice().length >= N + edits, 240_000);
    await waitFor(`alice to get bob's ${N + edits} messages`, () => fromBob().length >= N + edits, 240_000);

    // Matrix -> GChat: exactly once, in order, edits pointing at the right message.
    const gotByBob = fromAlice();
    expect(gotByBob.filter((m) => !m.editOf).map((m) => m.body)).toEqual(Array.from({ length: N }, (_, i) => `m2g ${i}`));
    expect(gotByBob.length).toBe(N + edits);
    for (const e of gotByBob.filter((m) => m.editOf)) {
      const target = gotByBob.find((m) => m.messageId === e.editOf)!;
      expect(e.body).toBe(`${target.body} edited`);
    }
    expect(gotByBob.filter((m) => m.replyTo).length).toBeGreaterThan(0);

    // GChat -> Matrix: decrypted, exactly once, in order; edits and replies as Matrix relations.
    const gotByAlice = fromBob();
    expect(gotByAlice.every((e) => e.encrypted && !e.decryptionFailed)).toBe(true);
    const plain = gotByAlice.filter((e) => !(e.content['m.relates_to'] as { rel_type?: string } | undefined)?.rel_type);
    expect(plain.map((e) => e.content.body)).toEqual(Array.from({ length: N }, (_, i) => `g2m ${i}`));
    expect(gotByAlice.length).toBe(N + edits);
    for (const e of gotByAlice.filter((x) => (x.content['m.relates_to'] as { rel_type?: string } | undefined)?.rel_type === 'm.replace')) {
      const target = gotByAlice.find((x) => x.eventId === (e.content['m.relates_to'] as { event_id: string }).event_id)!;
      expect((e.content['m.new_content'] as { body: string }).body).toBe(`${target.content.body as string} edited`);
    }
    expect(plain.some((e) => (e.content['m.relates_to'] as { 'm.in_reply_to'?: unknown } | undefined)?.['m.in_reply_to'])).toBe(true);
    expect(alice.events.some((e) => e.decryptionFailed)).toBe(false);

    // Read receipt: Alice reads Bob's last message; typing both ways.
    const lastEvent = alice.client.getRoom(room)!.findEventById(plain.at(-1)!.eventId)!;
    await alice.client.sendReadReceipt(lastEvent);
    await waitFor("bob's last message read", () => bob.seen.statuses.get(bobIds.at(-1)!) === 'read');
    const typing: string[] = [];
    bob.client.on('typing', (t) => typing.push(t.state));
    await alice.client.sendTyping(room, true, 30_000);
    await waitFor('bob to see alice typing', () => typing.includes('started'));
    await bob.client.sendTyping(aliceOnGChat, 'started');
    await waitFor('alice to see the ghost typing', () => alice.client.getRoom(room)?.getMember(ghost)?.typing === true);
  });
});
