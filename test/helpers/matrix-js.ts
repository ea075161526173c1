/** A real Matrix user for the bridge tests: matrix-js-sdk 37 with its Rust crypto (in-memory store). */
import 'fake-indexeddb/auto';
import * as sdk from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';

// loglevel underneath: quiet unless something breaks.
(logger as unknown as { setLevel(level: string): void }).setLevel('error');

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
}

export class JsMatrixUser {
  readonly events: SeenEvent[] = [];
  private constructor(readonly client: sdk.MatrixClient) {}

  static async start(baseUrl: string, creds: { userId: string; accessToken: string; deviceId: string }): Promise<JsMatrixUser> {
    const client = sdk.createClient({ baseUrl, userId: creds.userId, accessToken: creds.accessToken, deviceId: creds.deviceId });
    await client.initRustCrypto({ useIndexedDB: false });
    const u = new JsMatrixUser(client);
    const seen = new Set<string>();
    const order = new Map<string, number>();
    const record = (ev: sdk.MatrixEvent) => {
      const id = ev.getId();
      if (!id || seen.has(id) || ev.isBeingDecrypted()) return;
      if (ev.isEncrypted() && !ev.getClearContent() && !ev.isDecryptionFailure()) return; // wait for the Decrypted event
      seen.add(id);
      u.events.push({ order: order.get(id) ?? Number.MAX_SAFE_INTEGER, eventId: id, roomId: ev.getRoomId() ?? '', sender: ev.getSender() ?? '', type: ev.getType(), content: ev.getContent(), encrypted: ev.isEncrypted(), decryptionFailed: ev.isDecryptionFailure() });
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
