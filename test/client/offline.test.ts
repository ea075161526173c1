/**
 * Offline catch-up with a controlled clock: Bob's device is closed for 3 days while his contacts
 * rotate their SPKs (and a new contact starts a session with him) and send 200 messages; when it
 * opens it reads all 200, once each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GChatClient } from '../../src/client/client.js';
import { Observer, registered, waitFor } from '../helpers/clients.js';
import { ServerProcess } from '../helpers/server-process.js';

const DAY = 24 * 3600 * 1000;
let server: ServerProcess;

beforeAll(async () => {
  server = await ServerProcess.create({ prefix: 'gchat_offline' });
}, 300_000);
afterAll(async () => {
  await server?.close();
});

describe('offline catch-up', () => {
  it('a device closed for 3 days reads all 200 messages sent meanwhile', async () => {
    let t = Date.UTC(2026, 10, 1);
    const now = () => t;
    const tag = Date.now() % 100000;
    const alice = await registered(server.url, `alice${tag}`, { now });
    const bob = await registered(server.url, `bob${tag}`, { now });
    const carol = await registered(server.url, `carol${tag}`, { now });
    await alice.client.start();
    await bob.client.start();
    await carol.client.start();
    const hello = await alice.client.sendText(bob.client.userId, 'before the trip');
    await waitFor('bob reads the first', () => bob.seen.messages.some((m) => m.messageId === hello));

    t += 5 * DAY;
    await bob.client.stop();
    const bobStore = bob.options.store;

    const sent: string[] = [];
    for (let day = 1; day <= 3; day++) {
      t += DAY;
      // Contacts' key upkeep runs as their apps do; on day 2 their SPKs are 7 days old and rotate.
      await alice.client.upkeep();
      await carol.client.upkeep();
      for (let i = 0; i < 34 && sent.length < 200; i++) {
        const from = i % 2 ? carol : alice;
        sent.push(await from.client.sendText(bob.client.userId, `day ${day} #${i}`));
      }
    }
    while (sent.length < 200) sent.push(await alice.client.sendText(bob.client.userId, 'late'));
    await waitFor('all 200 accepted by the server', async () => (await alice.client.pendingCount()) + (await carol.client.pendingCount()) === 0, 400_000);
    const aliceSpks = (await alice.options.store.list('prekeys/spk/')).length;
    expect(aliceSpks).toBe(2); // the rotated-out SPK stays 30 days for late prekey messages

    const reopened = await GChatClient.open({ ...bob.options, store: bobStore });
    const seen = new Observer(reopened);
    await reopened.start();
    try {
      await waitFor('bob catches up', () => seen.messages.length >= 200, 400_000);
      await new Promise((r) => setTimeout(r, 500));
      expect(seen.messages.map((m) => m.messageId).sort()).toEqual([...sent].sort());
      // his own upkeep rotated his 8-day-old SPK on opening, and messages still flow both ways
      await waitFor('bob rotated', async () => (await bobStore.list('prekeys/spk/')).length === 2);
      const after = await carol.client.sendText(bob.client.userId, 'welcome back');
      await waitFor('after rotation', () => seen.messages.some((m) => m.messageId === after));
    } finally {
      await reopened.stop();
      await alice.client.stop();
      await carol.client.stop();
    }
  }, 900_000);
});
