import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GChatClient } from '../../src/client/client.js';
import type { UnreadableMessage } from '../../src/client/core.js';
import { keys, type MessageRecord, type OutboxEntry, type StoredContact } from '../../src/client/state.js';
import type { Json } from '../../src/client/storage.js';
import { newMessageId } from '../../src/protocol/content.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { PASSWORD, Observer, memoryOptions, registered, waitFor } from '../helpers/clients.js';
import { ServerProcess } from '../helpers/server-process.js';

let server: ServerProcess;
let n = 0;
const uniq = (name: string) => `${name}${++n}${Date.now() % 100000}`;

beforeAll(async () => {
  server = await ServerProcess.create({ prefix: 'gchat_client' });
}, 300_000);
afterAll(async () => {
  await server?.close();
});

describe('client SDK against a real server', () => {
  it('sends, receives once, and moves the status pending -> sent -> delivered -> read', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    await alice.client.start();
    await bob.client.start();
    try {
      const id = await alice.client.sendText(bob.client.userId, 'hello bob');
      expect((await alice.client.message(bob.client.userId, id))?.status).toMatch(/pending|sent/);
      await waitFor('bob receives', () => bob.seen.messages.length === 1);
      expect(bob.seen.messages[0]).toMatchObject({ messageId: id, sender: alice.client.userId, body: 'hello bob', outgoing: false });
      await waitFor('delivered', () => alice.seen.statuses.get(id) === 'delivered');
      await bob.client.markRead(alice.client.userId, [id]);
      await waitFor('read', () => alice.seen.statuses.get(id) === 'read');
      expect((await alice.client.message(bob.client.userId, id))?.status).toBe('read');

      // a reply goes the other way, on the same session
      const reply = await bob.client.sendText(alice.client.userId, 'hi alice');
      await waitFor('alice receives', () => alice.seen.messages.some((m) => m.messageId === reply));
      expect(bob.seen.messages).toHaveLength(1);
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });

  it('safety numbers are equal on both sides; verification is remembered', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    await alice.client.lookup(bob.client.userId);
    await bob.client.lookup(alice.client.userId);
    const a = await alice.client.safetyNumber(bob.client.userId);
    expect(a).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(await bob.client.safetyNumber(alice.client.userId)).toBe(a);
    await alice.client.markVerified(bob.client.userId);
    expect((await alice.client.contact(bob.client.userId))?.verified).toBe(true);
  });

  it('adds a device from the key backup; both devices get every message, own copies filed by `to`', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const options = memoryOptions();
    const alice2 = await GChatClient.addDevice(options, { serverUrl: server.url, username: alice.client.userId, password: PASSWORD, secret: alice.recoveryCode });
    expect(alice2.deviceId).toBe(2);
    expect(await alice.client.verifyBackup(alice.recoveryCode)).toBe(true);
    const seen2 = new Observer(alice2);
    for (const c of [alice.client, alice2, bob.client]) await c.start();
    try {
      const fromBob = await bob.client.sendText(alice.client.userId, 'to both of you');
      await waitFor('both alice devices get it', () => alice.seen.messages.length === 1 && seen2.messages.length === 1);
      expect(seen2.messages[0]?.messageId).toBe(fromBob);
      const fromAlice = await alice.client.sendText(bob.client.userId, 'sent from device 1');
      await waitFor('copy on device 2', () => seen2.messages.some((m) => m.messageId === fromAlice));
      expect(seen2.messages.find((m) => m.messageId === fromAlice)).toMatchObject({ outgoing: true, conversation: bob.client.userId });
      await waitFor('bob gets it', () => bob.seen.messages.some((m) => m.messageId === fromAlice));
    } finally {
      for (const c of [alice.client, alice2, bob.client]) await c.stop();
    }
  });

  it('a removed device gets nothing more, and senders adapt without losing the message', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const bob2 = await GChatClient.addDevice(memoryOptions(), { serverUrl: server.url, username: bob.client.userId, password: PASSWORD, secret: bob.recoveryCode });
    await alice.client.start();
    await bob.client.start();
    try {
      await alice.client.sendText(bob.client.userId, 'first');
      await waitFor('bob gets first', () => bob.seen.messages.length === 1);
      await bob.client.removeDevice(bob2.deviceId);
      await expect(bob2.checkCredentials()).rejects.toMatchObject({ status: 401 });
      // alice still has a session with the removed device: the server's 409 makes her drop it
      const id = await alice.client.sendText(bob.client.userId, 'second');
      await waitFor('second delivered', () => alice.seen.statuses.get(id) === 'delivered');
      expect((await alice.client.contact(bob.client.userId))?.devices?.map((d) => d.id)).toEqual([1]);
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });

  it("blocks sending after a contact's key change until the user accepts it", async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    await alice.client.lookup(bob.client.userId);
    // Alice's pin no longer matches what the server publishes for bob: a key change.
    const store = alice.options.store;
    const pinned = (await store.get(keys.contact(bob.client.userId))) as unknown as StoredContact;
    await store.write([[keys.contact(bob.client.userId), { ...pinned, ak: 'A'.repeat(43), verified: true, devices: [] }]]);
    await alice.client.start();
    await bob.client.start();
    try {
      const id = await alice.client.sendText(bob.client.userId, 'after the change');
      await waitFor('key change reported', () => alice.seen.keyChanges.includes(bob.client.userId));
      await new Promise((r) => setTimeout(r, 500));
      expect(bob.seen.messages).toHaveLength(0);
      expect(alice.seen.statuses.get(id)).toBe('pending');
      expect((await alice.client.contact(bob.client.userId))?.changedAk).not.toBeNull();
      await alice.client.acceptKeyChange(bob.client.userId);
      await waitFor('sent after acceptance', () => bob.seen.messages.some((m) => m.messageId === id));
      expect((await alice.client.contact(bob.client.userId))?.verified).toBe(false);
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });

  it('refuses a sign-up with a taken username, one clear error', async () => {
    const name = uniq('carol');
    await registered(server.url, name);
    await expect(GChatClient.register(memoryOptions(), { serverUrl: server.url, username: name, password: PASSWORD })).rejects.toMatchObject({ status: 409, code: 'username_taken' });
  });
});

describe('key upkeep', () => {
  it('tops OPKs and one-time PQPKs back up to 100 once they fall below 20, ids never reused', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const { GChatApi } = await import('../../src/client/transport/api.js');
    const token = ((await alice.options.store.get(keys.identity)) as { token: string }).token;
    const asAlice = new GChatApi(server.url, token);
    const bobApi = new GChatApi(server.url, ((await bob.options.store.get(keys.identity)) as { token: string }).token);
    // Each claim uses up one OPK and one one-time PQPK of bob's device.
    for (let i = 0; i < 85; i++) await asAlice.bundles(bob.client.userId);
    expect(await bobApi.prekeyStatus(bob.client.userId, 1)).toMatchObject({ opks: 15, pqpks: 15 });
    await bob.client.upkeep();
    const after = await bobApi.prekeyStatus(bob.client.userId, 1);
    expect(after).toMatchObject({ opks: 100, pqpks: 100 });
    expect(after.maxIds.opk).toBe(185);
    // nothing to do the second time
    await bob.client.upkeep();
    expect((await bobApi.prekeyStatus(bob.client.userId, 1)).maxIds.opk).toBe(185);
    // a bundle claimed now still opens a session bob can read
    await alice.client.start();
    await bob.client.start();
    try {
      const id = await alice.client.sendText(bob.client.userId, 'with a fresh OPK');
      await waitFor('bob reads it', () => bob.seen.messages.some((m) => m.messageId === id));
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });
});

describe('session reset (SPEC §7)', () => {
  it('a device that lost its session asks for a resend, at most once an hour, and reads the message under its id', async () => {
    let skew = 0;
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'), { now: () => Date.now() + skew });
    await alice.client.start();
    await bob.client.start();
    let bob2: GChatClient | null = null;
    try {
      const m1 = await alice.client.sendText(bob.client.userId, 'one');
      await waitFor('bob reads one', () => bob.seen.messages.some((m) => m.messageId === m1));
      const r1 = await bob.client.sendText(alice.client.userId, 'reply');
      await waitFor('alice reads the reply', () => alice.seen.messages.some((m) => m.messageId === r1));
      // Bob's device loses its session state with Alice's device (say, restored from an old copy).
      await bob.client.stop();
      await bob.options.store.write([[keys.sessions(alice.client.userId, 1), undefined]]);
      bob2 = await GChatClient.open(bob.options);
      const seen = new Observer(bob2);
      await bob2.start();
      const m2 = await alice.client.sendText(bob.client.userId, 'two');
      await waitFor('bob reads two after the reset', () => seen.messages.some((m) => m.messageId === m2), 180_000);
      expect(seen.messages.filter((m) => m.messageId === m2)).toHaveLength(1);
      await waitFor('two delivered', () => alice.seen.statuses.get(m2) === 'delivered');
      // Lost again within the hour: the next unreadable message waits for the hour to pass.
      const resets = async () => (await bob.options.store.list('resets/'))[0]?.[1] as { sentAt: number | null; pending: string[] } | undefined;
      await bob2.stop();
      await bob.options.store.write([[keys.sessions(alice.client.userId, 1), undefined]]);
      bob2 = await GChatClient.open(bob.options);
      const seen2 = new Observer(bob2);
      await bob2.start();
      const m3 = await alice.client.sendText(bob.client.userId, 'three');
      await waitFor("m3 recorded as unreadable", async () => (await resets())?.pending.includes(m3) ?? false, 60_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(seen2.messages.some((m) => m.messageId === m3)).toBe(false);
      skew += 3600 * 1000 + 1000;
      await bob2.upkeep();
      await waitFor('bob reads three after the hour', () => seen2.messages.some((m) => m.messageId === m3), 180_000);
    } finally {
      await alice.client.stop();
      await bob2?.stop();
    }
  });
});

describe('what SPEC §6 allows only from certain senders', () => {
  it('drops `to`, device-sync and edits of others\' messages from another account, and reports them', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const mallory = await registered(server.url, uniq('mallory'));
    const suspicious: string[] = [];
    bob.client.on('suspicious', (s) => suspicious.push(`${s.from}: ${s.reason}`));
    for (const c of [alice.client, bob.client, mallory.client]) await c.start();
    try {
      const fromAlice = await alice.client.sendText(bob.client.userId, 'original');
      await waitFor('bob has it', () => bob.seen.messages.some((m) => m.messageId === fromAlice));
      // A modified client: the SDK's public API cannot send these.
      const forge = (body: object) => (mallory.client as unknown as { outbox: { enqueue(to: string, b: object): Promise<string> } }).outbox.enqueue(bob.client.userId, body);
      await forge({ kind: 'text', body: 'pretend I am one of your devices', to: alice.client.userId });
      await forge({ kind: 'device-sync', type: 'contacts', data: {} });
      await forge({ kind: 'text', body: 'edited by someone else', edit_of: fromAlice });
      const fine = await mallory.client.sendText(bob.client.userId, 'an honest message');
      await waitFor('the honest one arrives', () => bob.seen.messages.some((m) => m.messageId === fine));
      await waitFor('three reports', () => suspicious.length === 3);
      expect(suspicious.map((s) => s.split(': ')[1]).sort()).toEqual(['`to` from another account', 'device-sync from another account', 'edit of a message from another sender']);
      expect(bob.seen.messages.map((m) => m.body)).toEqual(['original', 'an honest message']);
      expect((await bob.client.messages(alice.client.userId)).map((m) => m.messageId)).toEqual([fromAlice]);
    } finally {
      for (const c of [alice.client, bob.client, mallory.client]) await c.stop();
    }
  });
});

/**
 * What an independent client, written from SPEC.md, may send: the plaintext JSON is built by hand
 * (an uppercase id as some platforms' UUID types print it, a ts written as 1767225600000.0, a kind
 * from a newer version, a malformed body) and encrypted and sent as it stands, through the sender
 * device's sessions and transport, with the uppercase id on the envelope too.
 */
async function sendHandBuilt(sender: Awaited<ReturnType<typeof registered>>, recipient: string, id: string, json: string): Promise<void> {
  const lower = id.toLowerCase();
  const now = Date.now();
  const entry: OutboxEntry & { silent: boolean } = { messageId: id, recipient, content: json, createdAt: now, copies: [], attempts: 0, nextAttemptAt: 0, silent: true };
  // The sender keeps its own record under the id as it compares ids (lowercase, SPEC §6), to see the receipt land.
  const record: MessageRecord = { messageId: lower, conversation: recipient, sender: sender.client.userId, senderDevice: 1, outgoing: true, kind: 'text', content: json, ts: now, serverTs: null, status: 'pending', failure: null };
  await sender.options.store.write([
    [keys.outbox(id), entry as unknown as Json],
    [keys.message(recipient, lower), record as unknown as Json],
    [keys.sentIndex(lower), { conversation: recipient }],
  ]);
  (sender.client as unknown as { outbox: { kick(): void } }).outbox.kick();
}

describe('content from an independent client (revised SPEC §6)', () => {
  it('reads uppercase ids and a ts of 1767225600000.0, surfaces what it cannot show, and answers every one with a delivered receipt', async () => {
    const alice = await registered(server.url, uniq('alice'));
    const bob = await registered(server.url, uniq('bob'));
    const unreadable: UnreadableMessage[] = [];
    const suspicious: string[] = [];
    bob.client.on('unreadable', (m) => unreadable.push(m));
    bob.client.on('suspicious', (s) => suspicious.push(s.reason));
    await alice.client.start();
    await bob.client.start();
    try {
      const B = bob.client.userId;
      const A = alice.client.userId;
      const upper = newMessageId(Date.now(), systemRandom).toUpperCase();
      await sendHandBuilt(alice, B, upper, `{"v":1,"id":"${upper}","ts":${Date.now()},"kind":"text","body":"from a UUID type that prints uppercase"}`);
      const fraction = newMessageId(Date.now(), systemRandom);
      await sendHandBuilt(alice, B, fraction, `{"v":1,"id":"${fraction}","ts":1767225600000.0,"kind":"text","body":"ts with a zero fraction"}`);
      const newer = newMessageId(Date.now(), systemRandom);
      await sendHandBuilt(alice, B, newer, `{"v":1,"id":"${newer}","ts":${Date.now()},"kind":"reaction","emoji":"+1","of":"${upper}"}`);
      const malformed = newMessageId(Date.now(), systemRandom).toUpperCase();
      await sendHandBuilt(alice, B, malformed, `{"v":1,"id":"${malformed}","ts":${Date.now()},"kind":"text","body":42}`);

      await waitFor('bob shows both texts', () => bob.seen.messages.length === 2);
      const byId = new Map(bob.seen.messages.map((m) => [m.messageId, m]));
      expect(byId.get(upper.toLowerCase())).toMatchObject({ sender: A, body: 'from a UUID type that prints uppercase' });
      expect(byId.get(fraction)).toMatchObject({ body: 'ts with a zero fraction', ts: 1767225600000 });
      expect((await bob.client.message(A, upper))?.kind).toBe('text');

      // What bob cannot show is shown as such: an event and a stored record, nothing silently lost.
      await waitFor('bob is told about the two he cannot show', () => unreadable.length === 2);
      const told = new Map(unreadable.map((u) => [u.messageId, u]));
      expect(told.get(newer)).toMatchObject({ sender: A, conversation: A, unsupported: true });
      expect(told.get(newer)!.reason).toMatch(/reaction/);
      expect(told.get(malformed.toLowerCase())).toMatchObject({ sender: A, unsupported: false });
      expect(told.get(malformed.toLowerCase())!.reason).toMatch(/body/);
      const stored = await bob.client.messages(A);
      expect(stored.map((m) => [m.messageId, m.kind]).sort()).toEqual(
        [
          [upper.toLowerCase(), 'text'],
          [fraction, 'text'],
          [newer, 'unreadable'],
          [malformed.toLowerCase(), 'unreadable'],
        ].sort(),
      );
      expect(stored.find((m) => m.messageId === newer)?.unreadable).toMatchObject({ unsupported: true });
      expect(suspicious).toEqual([]);

      // The sender's four messages all reach "delivered", none stays "sent" forever.
      for (const id of [upper, fraction, newer, malformed].map((x) => x.toLowerCase())) await waitFor(`delivered ${id}`, () => alice.seen.statuses.get(id) === 'delivered');

      // A duplicate (a retry of the uppercase one) is neither shown nor stored twice.
      await sendHandBuilt(alice, B, upper, `{"v":1,"id":"${upper}","ts":${Date.now()},"kind":"text","body":"from a UUID type that prints uppercase"}`);
      const probe = await bob.client.sendText(A, 'after the duplicate');
      await waitFor('alice has the probe', () => alice.seen.messages.some((m) => m.messageId === probe));
      await new Promise((r) => setTimeout(r, 1000));
      expect(bob.seen.messages).toHaveLength(2);
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });
});

describe('outbox while the server is down', () => {
  it('keeps retrying under the same id; a cancel or the retention passing ends in failed; nothing is sent after', async () => {
    let skew = 0;
    const alice = await registered(server.url, uniq('alice'), { now: () => Date.now() + skew });
    const bob = await registered(server.url, uniq('bob'));
    await alice.client.lookup(bob.client.userId);
    await server.kill();
    let restarted = false;
    try {
      await alice.client.start();
      const cancelled = await alice.client.sendText(bob.client.userId, 'never mind');
      const expired = await alice.client.sendText(bob.client.userId, 'too late');
      await new Promise((r) => setTimeout(r, 1500));
      expect(await alice.client.pendingCount()).toBe(2);
      expect(await alice.client.cancel(cancelled)).toBe(true);
      expect(alice.seen.statuses.get(cancelled)).toBe('failed');
      expect((await alice.client.message(bob.client.userId, cancelled))?.failure).toBe('cancelled');
      skew += 31 * 24 * 3600 * 1000;
      await waitFor('expired', () => alice.seen.statuses.get(expired) === 'failed', 240_000);
      expect((await alice.client.message(bob.client.userId, expired))?.failure).toMatch(/^expired/);
      await server.start();
      restarted = true;
      await bob.client.start();
      const after = await alice.client.sendText(bob.client.userId, 'back online');
      await waitFor('the new one arrives', () => bob.seen.messages.some((m) => m.messageId === after), 180_000);
      expect(bob.seen.messages.map((m) => m.body)).toEqual(['back online']);
    } finally {
      if (!restarted) await server.start();
      await alice.client.stop();
      await bob.client.stop();
    }
  }, 600_000);
});
