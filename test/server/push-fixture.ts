/** What the push tests share: a server with push on a test database, accounts, and raw sends. */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { toBase64url as b64 } from '../../src/protocol/bytes.js';
import { newMessageId } from '../../src/protocol/content.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import type { ClientAccount } from '../helpers/accounts.js';
import type { TestServer } from '../helpers/server.js';

let n = 0;
/** A username no other test in the file uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}${(++n).toString(36)}${randomBytes(3).toString('hex')}`;
}

export interface SentMessage {
  readonly messageId: string;
  /** The (opaque, random) sealed body every copy carried. */
  readonly body: string;
}

/** One send from `from`'s first device to every device of `to` (and `from`'s other devices). */
export async function send(server: TestServer, from: ClientAccount, to: ClientAccount, opts: { urgent?: boolean } = {}): Promise<SentMessage> {
  const body = randomBytes(96).toString('base64url');
  const messageId = newMessageId(Date.now(), systemRandom);
  const copies = [
    ...to.devices.map((d) => ({ user: to.username, device: d.deviceId, key: b64(d.ik.publicKey), type: 2, body })),
    ...from.devices.slice(1).map((d) => ({ user: from.username, device: d.deviceId, key: b64(d.ik.publicKey), type: 2, body })),
  ];
  const r = await server.call('POST', '/v1/messages', {
    token: from.devices[0]!.token,
    body: { message_id: messageId, recipient: to.username, copies, ...(opts.urgent ? { urgent: true } : {}) },
  });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return { messageId, body };
}

/** Counter value from the server's metrics registry. */
export async function metric(server: TestServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await server.deps.metrics.registry.getSingleMetric(name)?.get();
  if (!m) return 0;
  return m.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

/** Waits until the server has decided and sent every wake-up so far. */
export async function pushesSettled(server: TestServer): Promise<void> {
  await server.push!.push.idle();
}
