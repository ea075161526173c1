/** Real clients for tests: memory stores (or file stores), node:crypto, `ws`, an optional clock. */
import { GChatClient, type ClientOptions } from '../../src/client/client.js';
import type { IncomingMessage } from '../../src/client/core.js';
import { nodeWebSocket } from '../../src/client/node.js';
import { MemoryKeyValueStore } from '../../src/client/stores/memory.js';
import type { MessageStatus } from '../../src/client/state.js';
import { nodeCryptoProvider } from '../../src/platform/node-crypto.js';

export const PASSWORD = 'correct horse battery';

export function memoryOptions(extra: Partial<ClientOptions> = {}): ClientOptions {
  return { store: new MemoryKeyValueStore(), webSocket: nodeWebSocket, crypto: nodeCryptoProvider, ...extra };
}

/** Collects what a client sees, for assertions. */
export class Observer {
  readonly messages: IncomingMessage[] = [];
  readonly statuses = new Map<string, MessageStatus>();
  readonly keyChanges: string[] = [];
  constructor(readonly client: GChatClient) {
    client.on('message', (m) => this.messages.push(m));
    client.on('status', (s) => this.statuses.set(s.messageId, s.status));
    client.on('keyChange', (k) => this.keyChanges.push(k.userId));
  }
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function registered(serverUrl: string, username: string, extra: Partial<ClientOptions> = {}) {
  const options = memoryOptions(extra);
  const { client, recoveryCode } = await GChatClient.register(options, { serverUrl, username, password: PASSWORD });
  return { client, recoveryCode: recoveryCode!, options, seen: new Observer(client) };
}
