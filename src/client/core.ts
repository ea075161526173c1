/** What the client's parts share: storage, crypto context, the API, this device, one lock, events. */
import { fromBase64url } from '../protocol/bytes.js';
import type { IceCandidate } from '../protocol/content.js';
import type { LocalDevice } from '../protocol/handshake.js';
import type { ProtocolContext } from '../protocol/session.js';
import { Emitter } from './events.js';
import { Mutex } from './mutex.js';
import type { MessageStatus, StoredIdentity } from './state.js';
import type { KeyValueStore } from './storage.js';
import type { GChatApi } from './transport/api.js';
import type { ConnectionState } from './transport/stream.js';

export interface IncomingMessage {
  messageId: string;
  conversation: string;
  sender: string;
  senderDevice: number;
  /** True for a copy of our own message, sent from another of our devices. */
  outgoing: boolean;
  body: string;
  ts: number;
  replyTo: string | null;
  editOf: string | null;
}

/** A call signal from a peer (or, `own`, from another of our devices: it answered or hung up elsewhere). */
export type CallSignal = {
  /** The other account of the call. */
  peer: string;
  /** The device that sent the signal. */
  from: { user: string; device: number };
  own: boolean;
  callId: string;
  messageId: string;
  ts: number;
} & (
  | { kind: 'offer' | 'answer'; sdp: string }
  | { kind: 'ice'; candidates: readonly IceCandidate[] }
  | { kind: 'hangup'; reason: 'hangup' | 'declined' | 'busy' | 'failed' }
);

export interface ClientEvents {
  /** Call signalling (SPEC §6 call kinds); offers older than a minute are dropped. */
  call: (c: CallSignal) => void;
  message: (m: IncomingMessage) => void;
  status: (s: { messageId: string; conversation: string; status: MessageStatus; failure: string | null }) => void;
  typing: (t: { from: string; state: 'started' | 'stopped' }) => void;
  keyChange: (c: { userId: string }) => void;
  connection: (state: ConnectionState) => void;
  /** A message dropped because SPEC §6 does not allow it from where it came. */
  suspicious: (s: { from: string; device: number; reason: string }) => void;
}

export class EventBus extends Emitter<ClientEvents> {
  fire<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    this.emit(event, ...args);
  }
}

export interface ClientCore {
  readonly kv: KeyValueStore;
  readonly ctx: ProtocolContext;
  readonly api: GChatApi;
  readonly identity: StoredIdentity;
  readonly self: LocalDevice;
  /** Every load-change-store of protocol state runs under this lock. */
  readonly lock: Mutex;
  readonly events: EventBus;
  /** How long the server keeps undelivered messages; the outbox gives up after it. */
  readonly retentionMs: number;
  /** Work started in the background (upkeep, resets, re-sends): `stop()` waits for it. */
  readonly background: Background;
}

/** Tracks fire-and-forget work so that stopping the client waits for it instead of racing it. */
export class Background {
  private readonly tasks = new Set<Promise<unknown>>();

  run(task: () => Promise<unknown>): void {
    const p: Promise<unknown> = task()
      .catch(() => undefined)
      .finally(() => this.tasks.delete(p));
    this.tasks.add(p);
  }

  async settle(): Promise<void> {
    while (this.tasks.size) await Promise.all([...this.tasks]);
  }
}

export function localDevice(id: StoredIdentity): LocalDevice {
  return {
    userId: id.userId,
    deviceId: id.deviceId,
    ik: { seed: fromBase64url(id.ikSeed), publicKey: fromBase64url(id.ikPub) },
    akPub: fromBase64url(id.akPub),
    deviceCert: fromBase64url(id.deviceCert),
  };
}
