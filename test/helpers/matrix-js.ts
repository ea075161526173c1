/** A real Matrix user for the bridge tests: matrix-js-sdk 37 with its Rust crypto (in-memory store). */
import 'fake-indexeddb/auto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as sdk from 'matrix-js-sdk';
import { type Logger, logger } from 'matrix-js-sdk/lib/logger.js';

const noop = () => undefined;

// The global logger (modules that do not take the client's): errors only. Its children are made at
// debug level and copy its methodFactory, so the filter goes there.
type Factory = (method: string, level: number, name: string | symbol) => (...a: unknown[]) => void;
const global = logger as unknown as { methodFactory: Factory; rebuild(): void; setLevel(level: string): void };
const factory = global.methodFactory;
global.methodFactory = (method, level, name) => (method === 'error' && !String(name).includes('MatrixRTC') ? factory(method, level, name) : noop);
global.rebuild();
global.setLevel('error');

/** Errors only, and none from MatrixRTC (it reports every state event of a room it does not track). */
function quietLogger(name = ''): Logger {
  const silent = name.includes('MatrixRTC');
  return { trace: noop, debug: noop, info: noop, warn: noop, error: silent ? noop : (...a: unknown[]) => console.error(name, ...a), getChild: (p: string) => quietLogger(`${name}${p}`) };
}

// initRustCrypto turns the Rust crypto's tracing on at debug level (a line per step, on stdout):
// back to errors, in the crypto-wasm copy matrix-js-sdk loads.
const root = join(import.meta.dirname, '../..');
const nested = join(root, 'node_modules/matrix-js-sdk/node_modules/@matrix-org/matrix-sdk-crypto-wasm/node.mjs');
const sdkWasm = (await import(existsSync(nested) ? pathToFileURL(nested).href : '@matrix-org/matrix-sdk-crypto-wasm')) as typeof import('@matrix-org/matrix-sdk-crypto-wasm');

export interface SeenEvent {
  eventId: string;
  roomId: string;
  sender: string;
  type: string;
  content: Record<string, unknown>;
  encrypted: boolean;
  decryptionFailed: boolean;
  /** Position in the room timeline as it arrived (decryption finishes out of order). */
  order: number;
  /** When this client had it (decrypted, if it was encrypted): performance.now(). */
  receivedAt: number;
}

export class JsMatrixUser {
  readonly events: SeenEvent[] = [];
  /** Called with each event as it is recorded (the benchmark times arrivals with it). */
  readonly listeners = new Set<(e: SeenEvent) => void>();
  private constructor(readonly client: sdk.MatrixClient) {}

  static async start(baseUrl: string, creds: { userId: string; accessToken: string; deviceId: string }): Promise<JsMatrixUser> {
    const client = sdk.createClient({ baseUrl, userId: creds.userId, accessToken: creds.accessToken, deviceId: creds.deviceId, logger: quietLogger() });
    await client.initRustCrypto({ useIndexedDB: false });
    new sdkWasm.Tracing(sdkWasm.LoggerLevel.Error).turnOn();
    const u = new JsMatrixUser(client);
    const seen = new Set<string>();
    const order = new Map<string, number>();
    const record = (ev: sdk.MatrixEvent) => {
      const id = ev.getId();
      if (!id || seen.has(id) || ev.isBeingDecrypted()) return;
      if (ev.isEncrypted() && !ev.getClearContent() && !ev.isDecryptionFailure()) return; // wait for the Decrypted event
      seen.add(id);
      const e: SeenEvent = { order: order.get(id) ?? Number.MAX_SAFE_INTEGER, eventId: id, roomId: ev.getRoomId() ?? '', sender: ev.getSender() ?? '', type: ev.getType(), content: ev.getContent(), encrypted: ev.isEncrypted(), decryptionFailed: ev.isDecryptionFailure(), receivedAt: performance.now() };
      u.events.push(e);
      for (const l of u.listeners) l(e);
    };
    client.on(sdk.RoomEvent.Timeline, (ev) => {
      if (ev.getId() && !order.has(ev.getId()!)) order.set(ev.getId()!, order.size);
      if (ev.isEncrypted()) void client.decryptEventIfNeeded(ev).then(() => record(ev));
      else record(ev);
    });
    client.on(sdk.MatrixEventEvent.Decrypted, (ev) => record(ev));
    client.on(sdk.RoomMemberEvent.Membership, (_e, member) => {
      if (member.userId === creds.userId && member.membership === 'invite') void client.joinRoom(member.roomId);
    });
    await client.startClient({ initialSyncLimit: 0 });
    await new Promise<void>((resolve) => {
      const check = (state: string) => {
        if (state === 'PREPARED' || state === 'SYNCING') resolve();
      };
      client.on(sdk.ClientEvent.Sync, check);
    });
    return u;
  }

  get userId(): string {
    return this.client.getUserId()!;
  }

  messages(roomId: string, from: string): SeenEvent[] {
    return this.events.filter((e) => e.roomId === roomId && e.sender === from && e.type === 'm.room.message').sort((a, b) => a.order - b.order);
  }

  stop(): void {
    this.client.stopClient();
  }
}
