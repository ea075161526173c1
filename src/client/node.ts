/** Client options for Node (CLI, bridge, tests): a file store, node:crypto, and `ws`. */
import { WebSocket } from 'ws';
import { nodeCryptoProvider } from '../platform/node-crypto.js';
import type { ClientOptions } from './client.js';
import { FileKeyValueStore } from './stores/file.js';
import type { WebSocketFactory, WebSocketLike } from './transport/stream.js';

export const nodeWebSocket: WebSocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike;

export function nodeClientOptions(dataDir: string, extra: Partial<ClientOptions> = {}): ClientOptions {
  return { store: FileKeyValueStore.open(dataDir), webSocket: nodeWebSocket, crypto: nodeCryptoProvider, ...extra };
}
