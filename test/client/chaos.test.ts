/**
 * Three users with two devices each exchange 1,000 messages through a proxy that delays, refuses
 * and cuts connections, while the server is killed (SIGKILL) and restarted twice. Every message
 * must reach every device of its recipient and the sender's other device exactly once, and end
 * "delivered" on the sender.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GChatClient } from '../../src/client/client.js';
import { PASSWORD, memoryOptions, waitFor } from '../helpers/clients.js';
import { ChaosProxy } from '../helpers/chaos-proxy.js';
import { ServerProcess } from '../helpers/server-process.js';

const MESSAGES = 1000;
const SEED = Number(process.env.CHAOS_SEED ?? 20261127);

let server: ServerProcess;
let proxy: ChaosProxy;

beforeAll(async () => {
  server = await ServerProcess.create({ prefix: 'gchat_chaos' });
  proxy = new ChaosProxy({ targetPort: server.port, seed: SEED, refuse: 0.05, cut: 0.3, cutWithinMs: 3000, maxDelayMs: 15 });
  await proxy.start();
}, 300_000);
afterAll(async () => {
  await proxy?.stop();
  await server?.close();
});

describe('delivery through a misbehaving network and server crashes', () => {
  it(`${MESSAGES} messages, 3 users x 2 devices: each reaches each device once and ends delivered`, async () => {
    const tag = Date.now() % 100000;
    const users = ['ann', 'ben', 'cat'].map((u) => `${u}${tag}`);
    const viaProxy: { user: string; client: GChatClient }[] = [];
    // Accounts are made with the proxy behaving; everything after that goes through its chaos.
    proxy.enabled = false;
    for (const user of users) {
      const { client, recoveryCode } = await GChatClient.register(memoryOptions(), { serverUrl: proxy.url, username: user, password: PASSWORD });
      const second = await GChatClient.addDevice(memoryOptions(), { serverUrl: proxy.url, username: user, password: PASSWORD, secret: recoveryCode! });
      viaProxy.push({ user, client }, { user, client: second });
    }
    proxy.enabled = true;
    const received = new Map<string, Map<string, number>>(); // device key -> message id -> count
    const delivered = new Set<string>();
    for (const { user, client } of viaProxy) {
      const key = `${user}/${client.deviceId}`;
      received.set(key, new Map());
      client.on('message', (m) => received.get(key)!.set(m.messageId, (received.get(key)!.get(m.messageId) ?? 0) + 1));
      client.on('status', (s) => s.status === 'delivered' && delivered.add(s.messageId));
      await client.start();
    }

    // Who sent what to whom, to know which devices must see each message.
    const sent: { id: string; from: string; fromDevice: number; to: string }[] = [];
    let state = SEED;
    const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < MESSAGES; i++) {
      const sender = viaProxy[Math.floor(rand() * viaProxy.length)]!;
      const others = users.filter((u) => u !== sender.user);
      const to = others[Math.floor(rand() * others.length)]!;
      sent.push({ id: await sender.client.sendText(to, `m${i}`), from: sender.user, fromDevice: sender.client.deviceId, to });
      if (i === Math.floor(MESSAGES / 3) || i === Math.floor((2 * MESSAGES) / 3)) await server.restart();
    }

    await waitFor(
      'every message delivered',
      () => sent.every((m) => delivered.has(m.id)),
      900_000,
    );
    // Let late duplicates (if any were to surface) arrive before counting.
    proxy.enabled = false;
    await new Promise((r) => setTimeout(r, 1000));

    for (const m of sent) {
      const mustSee = viaProxy.filter((d) => d.user === m.to || (d.user === m.from && d.client.deviceId !== m.fromDevice));
      for (const d of mustSee) expect(received.get(`${d.user}/${d.client.deviceId}`)!.get(m.id), `${m.id} on ${d.user}/${d.client.deviceId}`).toBe(1);
      const sender = viaProxy.find((d) => d.user === m.from && d.client.deviceId === m.fromDevice)!;
      expect(received.get(`${sender.user}/${sender.client.deviceId}`)!.has(m.id)).toBe(false);
    }
    const total = [...received.values()].reduce((a, m) => a + [...m.values()].reduce((x, y) => x + y, 0), 0);
    expect(total).toBe(MESSAGES * 3);
    expect(proxy.stats.cut + proxy.stats.refused).toBeGreaterThan(0);
    console.log(`chaos: ${JSON.stringify(proxy.stats)} connections through the proxy, 2 server crashes, seed ${SEED}`);
    for (const d of viaProxy) await d.client.stop();
  }, 1_200_000);
});
