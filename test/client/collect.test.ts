/**
 * Collection of dedup records and claimed one-time prekeys (src/client/collect.ts), against a real
 * server whose retention is one minute. The receiving device runs on a clock the test moves; the
 * server's collection is off, so an envelope waits as long as the test needs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepFor } from '../../src/client/collect.js';
import { keys, type StoredIdentity } from '../../src/client/state.js';
import type { KeyValueStore } from '../../src/client/storage.js';
import { nodeWebSocket } from '../../src/client/node.js';
import { type FetchLike, GChatApi } from '../../src/client/transport/api.js';
import type { WebSocketFactory } from '../../src/client/transport/stream.js';
import { registered, waitFor } from '../helpers/clients.js';
import { ServerProcess } from '../helpers/server-process.js';

const RETENTION_MS = 60_000;
const LIFETIME_MS = keepFor(RETENTION_MS);

let server: ServerProcess;
let n = 0;
const uniq = (name: string) => `${name}${++n}${Date.now() % 100000}`;

beforeAll(async () => {
  server = await ServerProcess.create({
    prefix: 'gchat_collect',
    env: { GCHAT_MESSAGE_RETENTION_SECONDS: String(RETENTION_MS / 1000), GCHAT_DELIVERY_GC_INTERVAL_SECONDS: '0' },
  });
}, 300_000);
afterAll(async () => {
  await server?.close();
});

/** A clock the test moves by hand. */
function manualClock() {
  const c = { t: Date.now(), now: () => c.t };
  return c;
}

async function storedIds(store: KeyValueStore, prefix: string, oneTimeOnly = false): Promise<number[]> {
  return (await store.list(prefix)).map(([, v]) => v as { id: number; oneTime?: boolean }).filter((k) => !oneTimeOnly || k.oneTime).map((k) => k.id);
}

/** The one-time prekey ids the server holds for the device in `store`, asked with its own token. */
async function heldOnServer(store: KeyValueStore): Promise<{ opks: number[]; pqpks: number[] }> {
  const id = (await store.get(keys.identity)) as unknown as StoredIdentity;
  const status = await new GChatApi(server.url, id.token).prekeyStatus(id.userId, id.deviceId);
  return status.oneTimeIds!;
}

/** Alice sends Bob one text and stops once the server has it: it waits in Bob's queue. */
async function sendWhileBobIsAway(alice: Awaited<ReturnType<typeof registered>>, bob: string, body: string): Promise<string> {
  await alice.client.start();
  try {
    const id = await alice.client.sendText(bob, body);
    await waitFor('the server accepts it', () => alice.seen.statuses.get(id) === 'sent');
    return id;
  } finally {
    await alice.client.stop();
  }
}

describe('client collection', () => {
  it('the key status tells the device its retention and the one-time prekeys still held', async () => {
    const bob = await registered(server.url, uniq('bob'));
    const held = await heldOnServer(bob.options.store);
    expect(held.opks).toEqual(await storedIds(bob.options.store, keys.opkPrefix));
    expect(held.pqpks).toEqual(await storedIds(bob.options.store, keys.pqpkPrefix, true));
    const id = (await bob.options.store.get(keys.identity)) as unknown as StoredIdentity;
    expect((await new GChatApi(server.url, id.token).prekeyStatus(id.userId, id.deviceId)).retentionMs).toBe(RETENTION_MS);
  });

  it('a prekey message arriving late, within the lifetime of the key it uses, still decrypts', async () => {
    const clock = manualClock();
    const bob = await registered(server.url, uniq('bob'), { now: clock.now });
    const alice = await registered(server.url, uniq('alice'));
    await bob.client.sync(); // Bob has read his (empty) queue: collection may run from now on
    const id = await sendWhileBobIsAway(alice, bob.client.userId, 'sent while you were away');
    await bob.client.upkeep(); // Bob sees the OPK Alice claimed gone from the server
    clock.t += LIFETIME_MS - 1000;
    await bob.client.upkeep();
    await bob.client.collect();
    await bob.client.sync();
    expect(bob.seen.messages.map((m) => [m.messageId, m.body])).toEqual([[id, 'sent while you were away']]);
  });

  it('a message that waited while the device was off longer than the lifetime is read before its key goes', async () => {
    const clock = manualClock();
    // The stream comes up only on the third try, after the upkeep that start() runs has had its answer.
    let tries = 0;
    const slowSocket: WebSocketFactory = (url, protocols) => {
      if (++tries < 3) throw new Error('not yet');
      return nodeWebSocket(url, protocols);
    };
    const bob = await registered(server.url, uniq('bob'), { now: clock.now, webSocket: slowSocket });
    const alice = await registered(server.url, uniq('alice'));
    await bob.client.sync();
    await bob.client.upkeep();
    const id = await sendWhileBobIsAway(alice, bob.client.userId, 'read me first');
    await bob.client.upkeep(); // the claim is noted...
    clock.t += LIFETIME_MS + 1000; // ...and Bob's device is off for longer than the lifetime
    await bob.client.start();
    try {
      await waitFor('bob reads it', () => bob.seen.messages.length === 1, 30_000);
      expect(bob.seen.messages[0]).toMatchObject({ messageId: id, body: 'read me first' });
    } finally {
      await bob.client.stop();
    }
  });

  it('claimed one-time prekeys are forgotten after their lifetime: the store holds what the server holds, not every key ever made', async () => {
    const clock = manualClock();
    const bob = await registered(server.url, uniq('bob'), { now: clock.now });
    const carol = await registered(server.url, uniq('carol'));
    const carolApi = new GChatApi(server.url, ((await carol.options.store.get(keys.identity)) as unknown as StoredIdentity).token);
    await bob.client.sync();
    const made = new Set(await storedIds(bob.options.store, keys.opkPrefix));
    // Three rounds of claims, each taking the pool below its low-water mark, so Bob tops up each time.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 90; i++) await carolApi.bundles(bob.client.userId);
      await bob.client.upkeep();
      for (const k of await storedIds(bob.options.store, keys.opkPrefix)) made.add(k);
      clock.t += LIFETIME_MS / 4;
    }
    expect(made.size).toBeGreaterThan(300);
    // Within the lifetime the claimed keys are still there for late prekey messages.
    expect((await storedIds(bob.options.store, keys.opkPrefix)).length).toBeGreaterThan(200);
    clock.t += LIFETIME_MS;
    await bob.client.upkeep();
    const held = await heldOnServer(bob.options.store);
    expect(await storedIds(bob.options.store, keys.opkPrefix)).toEqual(held.opks);
    expect(await storedIds(bob.options.store, keys.pqpkPrefix, true)).toEqual(held.pqpks);
  }, 120_000);

  it('a message delivered again within the lifetime is shown once; past the lifetime its dedup record goes and the message stays', async () => {
    const clock = manualClock();
    let dropAcks = true;
    // The ack of the first fetch is lost, so the server delivers the same envelope again.
    const lossyFetch: FetchLike = async (url, init) => {
      if (dropAcks && url.endsWith('/v1/messages/ack')) throw new TypeError('fetch failed');
      return globalThis.fetch(url, init);
    };
    const bob = await registered(server.url, uniq('bob'), { now: clock.now, fetch: lossyFetch });
    const alice = await registered(server.url, uniq('alice'));
    await bob.client.upkeep(); // learns the server's retention
    const id = await sendWhileBobIsAway(alice, bob.client.userId, 'once only');
    await expect(bob.client.sync()).rejects.toThrow();
    dropAcks = false;
    expect(bob.seen.messages).toHaveLength(1);
    clock.t += LIFETIME_MS - 1000;
    await bob.client.collect();
    expect(await bob.client.sync()).toBe(1); // the same envelope, again
    expect(bob.seen.messages).toHaveLength(1);
    expect((await bob.options.store.list(keys.seenPrefix)).length).toBe(1);

    clock.t += 2000;
    expect((await bob.client.collect()).seen).toBe(1);
    expect(await bob.options.store.list(keys.seenPrefix)).toEqual([]);
    expect((await bob.client.messages(alice.client.userId)).map((m) => m.messageId)).toEqual([id]);
  });
});
