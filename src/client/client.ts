/**
 * GChatClient: the state machine every client shares (web, CLI, Matrix bridge). Storage, crypto,
 * clock, randomness, fetch and WebSocket are injected, so the same code runs in the browser and in
 * Node, and tests control time.
 */
import { fromBase64url, toBase64url } from '../protocol/bytes.js';
import { checkNewPassphrase, formatRecoveryCode, generateRecoveryCode, openBackup, sealBackup } from '../protocol/backup.js';
import { type IceCandidate, type MessageId, readMessageId } from '../protocol/content.js';
import { generateSigningKeyPair, signDeviceCert } from '../protocol/keys.js';
import { type CryptoProvider, type RandomSource, defaultCrypto, systemRandom } from '../protocol/primitives.js';
import type { ProtocolContext } from '../protocol/session.js';
import { type Collected, DEFAULT_RETENTION_MS, collectExpired } from './collect.js';
import { Background, type ClientCore, type ClientEvents, EventBus, localDevice } from './core.js';
import { makeInitialPrekeys } from './device-keys.js';
import { Directory } from './directory.js';
import { Inbox } from './inbox.js';
import { Mutex } from './mutex.js';
import { Outbox } from './outbox.js';
import { keys, type MessageRecord, type StoredContact, type StoredIdentity } from './state.js';
import { type Json, type KeyValueStore, WriteBatch } from './storage.js';
import { ApiRequestError, type FetchLike, GChatApi, type PushKind } from './transport/api.js';
import { type ConnectionState, StreamConnection, type WebSocketFactory } from './transport/stream.js';
import { runKeyUpkeep } from './upkeep.js';

export { DEFAULT_RETENTION_MS } from './collect.js';
/** Automatic collection (collect.ts) runs at most this often. */
export const COLLECT_EVERY_MS = 24 * 3600 * 1000;
/** Key upkeep and pending session-resets are looked at this often while running. */
export const UPKEEP_INTERVAL_MS = 3600 * 1000;

export interface ClientOptions {
  store: KeyValueStore;
  /** How to open the stream: the browser's WebSocket, or `ws` in Node. */
  webSocket: WebSocketFactory;
  crypto?: CryptoProvider;
  random?: RandomSource;
  now?: () => number;
  fetch?: FetchLike;
  retentionMs?: number;
}

/** A message_id the caller passed in, checked and lowercased (SPEC §6; the SDK's own ids always pass). */
function messageId(id: string): MessageId {
  const read = readMessageId(id);
  if (read === null) throw new TypeError(`not a message id: ${id}`);
  return read;
}

export class NotRegisteredError extends Error {
  override readonly name = 'NotRegisteredError';
}

function contextOf(o: ClientOptions): ProtocolContext {
  return { crypto: o.crypto ?? defaultCrypto(), random: o.random ?? systemRandom, now: o.now ?? (() => Date.now()) };
}

/** The secret the user keeps: a generated recovery code (shown once), or their chosen passphrase. */
function backupSecret(random: RandomSource, passphrase: string | undefined): { secret: string; recoveryCode: string | null } {
  if (passphrase !== undefined) {
    checkNewPassphrase(passphrase);
    return { secret: passphrase, recoveryCode: null };
  }
  const code = formatRecoveryCode(generateRecoveryCode(random));
  return { secret: code, recoveryCode: code };
}

async function newDevice(o: ClientOptions, ctx: ProtocolContext, serverUrl: string, userId: string, deviceId: number, ak: { seed: Uint8Array; publicKey: Uint8Array }) {
  const ik = await generateSigningKeyPair(ctx.crypto, ctx.random);
  const deviceCert = await signDeviceCert(ctx.crypto, ak, userId, deviceId, ik.publicKey);
  const batch = new WriteBatch(o.store);
  const prekeys = await makeInitialPrekeys(ctx.crypto, ctx.random, ik, batch, ctx.now());
  const identity = (token: string, id: number): StoredIdentity => ({
    serverUrl,
    userId,
    deviceId: id,
    token,
    akSeed: toBase64url(ak.seed),
    akPub: toBase64url(ak.publicKey),
    ikSeed: toBase64url(ik.seed),
    ikPub: toBase64url(ik.publicKey),
    deviceCert: toBase64url(deviceCert),
    createdAt: ctx.now(),
  });
  const keysForServer = { deviceId, ikPub: ik.publicKey, deviceCert, prekeys: { ...prekeys, spk: prekeys.spk! } };
  return { batch, identity, keysForServer };
}

export class GChatClient {
  readonly events: EventBus;
  private readonly core: ClientCore;
  private readonly directory: Directory;
  private readonly outbox: Outbox;
  private readonly inbox: Inbox;
  private stream: StreamConnection | null = null;
  private upkeepTimer: ReturnType<typeof setInterval> | null = null;
  private drainedWaiters: (() => void)[] = [];
  private connection: ConnectionState = 'closed';
  /** This run has read the whole queue once: from then on collection cannot take a key it needs. */
  private queueRead = false;

  private constructor(private readonly options: ClientOptions, identity: StoredIdentity) {
    const ctx = contextOf(options);
    this.events = new EventBus();
    this.core = {
      kv: options.store,
      ctx,
      api: new GChatApi(identity.serverUrl, identity.token, options.fetch),
      identity,
      self: localDevice(identity),
      lock: new Mutex(),
      events: this.events,
      retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS,
      background: new Background(),
    };
    this.directory = new Directory(this.core);
    this.outbox = new Outbox(this.core, this.directory);
    this.inbox = new Inbox(this.core, this.directory, this.outbox);
  }

  // ---- accounts and devices ------------------------------------------------------------------

  /**
   * Creates an account and its first device. Returns the recovery code to show the user once (null
   * when they chose a passphrase; the UI should warn that the server holds the blob, SPEC §9).
   */
  static async register(
    o: ClientOptions,
    input: { serverUrl: string; username: string; password: string; passphrase?: string },
  ): Promise<{ client: GChatClient; recoveryCode: string | null }> {
    const ctx = contextOf(o);
    const ak = await generateSigningKeyPair(ctx.crypto, ctx.random);
    const { secret, recoveryCode } = backupSecret(ctx.random, input.passphrase);
    const backup = await sealBackup({ akSeed: ak.seed, secret, random: ctx.random, crypto: ctx.crypto });
    const d = await newDevice(o, ctx, input.serverUrl, input.username, 1, ak);
    const api = new GChatApi(input.serverUrl, null, o.fetch);
    const { token, deviceId } = await api.register({ username: input.username, password: input.password, akPub: ak.publicKey, device: d.keysForServer, backup });
    return { client: await GChatClient.adopt(o, d.batch, d.identity(token, deviceId), ak.publicKey), recoveryCode };
  }

  /** Adds this device to an existing account, recovering the AK from the key backup with `secret`. */
  static async addDevice(o: ClientOptions, input: { serverUrl: string; username: string; password: string; secret: string }): Promise<GChatClient> {
    const ctx = contextOf(o);
    const api = new GChatApi(input.serverUrl, null, o.fetch);
    for (let attempt = 0; ; attempt++) {
      const { blob, nextDeviceId } = await api.recoverBackup(input.username, input.password);
      const akSeed = await openBackup(blob, input.secret, { crypto: ctx.crypto });
      const ak = { seed: akSeed, publicKey: await ctx.crypto.ed25519Public(akSeed) };
      const d = await newDevice(o, ctx, input.serverUrl, input.username, nextDeviceId, ak);
      try {
        const { token, deviceId } = await api.addDevice(input.username, input.password, d.keysForServer);
        return await GChatClient.adopt(o, d.batch, d.identity(token, deviceId), ak.publicKey);
      } catch (e) {
        // Another device took that id meanwhile: sign again for the next one.
        if (!(e instanceof ApiRequestError && e.code === 'device_id_mismatch') || attempt >= 3) throw e;
      }
    }
  }

  private static async adopt(o: ClientOptions, batch: WriteBatch, identity: StoredIdentity, akPub: Uint8Array): Promise<GChatClient> {
    batch.put(keys.identity, identity as unknown as Json);
    // Our own account's AK is pinned like a contact's: own devices are checked against it too.
    const self: StoredContact = { userId: identity.userId, ak: toBase64url(akPub), verified: true, pinnedAt: identity.createdAt, changedAk: null };
    batch.put(keys.contact(identity.userId), self as unknown as Json);
    await batch.flush();
    return new GChatClient(o, identity);
  }

  /** Opens the device stored in `o.store`. */
  static async open(o: ClientOptions): Promise<GChatClient> {
    const identity = (await o.store.get(keys.identity)) as StoredIdentity | undefined;
    if (!identity) throw new NotRegisteredError('no GChat device in this store: register or add a device first');
    return new GChatClient(o, identity);
  }

  get userId(): string {
    return this.core.self.userId;
  }
  get deviceId(): number {
    return this.core.self.deviceId;
  }
  get serverUrl(): string {
    return this.core.identity.serverUrl;
  }

  /** Replaces the key backup with one under a new recovery code (returned) or passphrase. */
  async replaceBackup(passphrase?: string): Promise<string | null> {
    const { ctx, identity } = this.core;
    const { secret, recoveryCode } = backupSecret(ctx.random, passphrase);
    const blob = await sealBackup({ akSeed: fromBase64url(identity.akSeed), secret, random: ctx.random, crypto: ctx.crypto });
    await this.core.api.putBackup(identity.userId, blob);
    return recoveryCode;
  }

  /** Checks that `secret` opens the server's backup and yields this account's AK. */
  async verifyBackup(secret: string): Promise<boolean> {
    const blob = await this.core.api.getBackup(this.userId);
    const seed = await openBackup(blob, secret, { crypto: this.core.ctx.crypto });
    return toBase64url(seed) === this.core.identity.akSeed;
  }

  /** Throws ApiRequestError 401 when this device's token no longer works (e.g. the device was removed). */
  async checkCredentials(): Promise<void> {
    await this.core.api.prekeyStatus(this.userId, this.deviceId);
  }

  async removeDevice(deviceId: number): Promise<void> {
    await this.core.api.removeDevice(this.userId, deviceId);
  }

  // ---- running -------------------------------------------------------------------------------

  /** Connects, catches up on the queue, flushes the outbox, and keeps keys topped up. */
  async start(): Promise<void> {
    // The device may have been off for long: what waited in the queue is read before anything is collected.
    this.queueRead = false;
    this.stream = new StreamConnection(this.core.identity.serverUrl, () => this.core.identity.token, this.options.webSocket, {
      onEnvelopes: (envs) => this.inbox.handle(envs),
      onDrained: () => {
        if (!this.queueRead) {
          this.queueRead = true;
          this.core.background.run(() => this.collectIfDue());
        }
        for (const w of this.drainedWaiters.splice(0)) w();
      },
      onState: (s) => {
        this.connection = s;
        this.events.fire('connection', s);
        // Back online: what waited out a retry backoff goes now, not when its timer ends.
        if (s === 'online') this.outbox.retryNow();
      },
    });
    this.stream.start();
    this.outbox.start();
    this.core.background.run(() => this.upkeep());
    this.upkeepTimer = setInterval(() => this.core.background.run(() => this.upkeep()), UPKEEP_INTERVAL_MS);
  }

  /** Key upkeep, collection and pending session-resets; failures are retried at the next interval. */
  async upkeep(): Promise<void> {
    try {
      await runKeyUpkeep(this.core);
      if (this.queueRead) await this.collectIfDue();
      await this.inbox.sendResets();
    } catch {
      // offline or the server refused: the next interval tries again
    }
  }

  /**
   * Forgets the dedup records and claimed one-time prekeys no envelope can need any more
   * (collect.ts). Upkeep runs it once this run has read the queue; call it directly only then.
   */
  collect(): Promise<Collected> {
    return this.core.lock.run(async () => {
      const now = this.core.ctx.now();
      const r = await collectExpired(this.core.kv, now);
      await this.core.kv.write([[keys.collectedAt, now]]);
      return r;
    });
  }

  /** Collection reads every dedup record: once a day is enough for lifetimes counted in weeks. */
  private async collectIfDue(): Promise<void> {
    const last = await this.core.kv.get(keys.collectedAt);
    if (typeof last !== 'number' || this.core.ctx.now() - last >= COLLECT_EVERY_MS) await this.collect();
  }

  /** Disconnects and waits for every piece of work in flight, so the store can be closed or reopened. */
  async stop(): Promise<void> {
    if (this.upkeepTimer) clearInterval(this.upkeepTimer);
    this.stream?.stop();
    await this.stream?.idle().catch(() => undefined);
    await this.outbox.stop();
    await this.core.background.settle();
    // Background work may have queued more (a reset, a re-send): that waits in the outbox for the next start.
    await this.outbox.stop();
    this.stream = null;
  }

  get connectionState(): ConnectionState {
    return this.connection;
  }

  /** Resolves when the server has delivered the queue as it stood when the stream (re)connected. */
  caughtUp(): Promise<void> {
    return new Promise((resolve) => this.drainedWaiters.push(resolve));
  }

  /** The REST fallback: fetches, handles and acks the whole queue once. */
  async sync(): Promise<number> {
    let n = 0;
    for (;;) {
      const { envelopes, more } = await this.core.api.fetchQueue();
      if (!envelopes.length) {
        this.queueRead = true;
        return n;
      }
      const ids = await this.inbox.handle(envelopes);
      await this.core.api.ack(ids);
      n += envelopes.length;
      if (!more) {
        this.queueRead = true;
        return n;
      }
    }
  }

  // ---- messaging -----------------------------------------------------------------------------

  on<K extends keyof ClientEvents>(event: K, handler: ClientEvents[K]): () => void {
    return this.events.on(event, handler);
  }

  /**
   * Queues a text for `to`; returns its message_id (fixed for every retry). `messageId`: an id the
   * caller derived (a bridge, from the source event), so that sending the same message twice queues it once.
   */
  sendText(to: string, body: string, opts: { replyTo?: string; editOf?: string; messageId?: string } = {}): Promise<string> {
    const content = { kind: 'text' as const, body, ...(opts.replyTo ? { reply_to: messageId(opts.replyTo) } : {}), ...(opts.editOf ? { edit_of: messageId(opts.editOf) } : {}) };
    return this.outbox.enqueue(to, content, false, opts.messageId === undefined ? undefined : messageId(opts.messageId));
  }

  /** Sends read receipts for messages of `conversation`. */
  async markRead(conversation: string, messageIds: string[]): Promise<void> {
    if (messageIds.length) await this.outbox.enqueue(conversation, { kind: 'receipt', type: 'read', ids: messageIds.map(messageId) }, true);
  }

  async sendTyping(to: string, state: 'started' | 'stopped'): Promise<void> {
    await this.outbox.enqueue(to, { kind: 'typing', state }, true);
  }

  // ---- calls (SPEC §6 call kinds, end-to-end encrypted like every message) -----------------------

  /** A fresh call id: 128 random bits, hex. */
  newCallId(): string {
    return Array.from(this.core.ctx.random(16), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** Sends a call offer; marked urgent, so the server wakes `to`'s offline devices at once (VoIP push on iOS). */
  sendCallOffer(to: string, callId: string, sdp: string): Promise<string> {
    return this.outbox.enqueue(to, { kind: 'call-offer', call_id: callId, sdp }, true);
  }

  sendCallAnswer(to: string, callId: string, sdp: string): Promise<string> {
    return this.outbox.enqueue(to, { kind: 'call-answer', call_id: callId, sdp }, true);
  }

  sendCallIce(to: string, callId: string, candidates: IceCandidate[]): Promise<string> {
    return this.outbox.enqueue(to, { kind: 'call-ice', call_id: callId, candidates }, true);
  }

  sendCallHangup(to: string, callId: string, reason: 'hangup' | 'declined' | 'busy' | 'failed' = 'hangup'): Promise<string> {
    return this.outbox.enqueue(to, { kind: 'call-hangup', call_id: callId, reason }, true);
  }

  /** ICE servers for RTCPeerConnection from the server's TURN credentials (null: it offers no relay). */
  async iceServers(): Promise<{ urls: string[]; username: string; credential: string }[] | null> {
    try {
      const t = await this.core.api.turn();
      return [{ urls: t.uris, username: t.username, credential: t.credential }];
    } catch (e) {
      if (e instanceof ApiRequestError && e.status === 404) return null;
      throw e;
    }
  }

  // ---- push registration (wake-ups carry no content: the device connects and reads its queue) -----

  /** The server's VAPID key, for `PushManager.subscribe({ userVisibleOnly: true, applicationServerKey })`. */
  vapidPublicKey(): Promise<string> {
    return this.core.api.vapidPublicKey();
  }

  /** Registers a browser's PushSubscription (its `toJSON()`) for this device. */
  registerWebPush(subscription: { endpoint: string; keys: { p256dh: string; auth: string } }): Promise<void> {
    return this.core.api.registerPush({ kind: 'webpush', endpoint: subscription.endpoint, keys: { p256dh: subscription.keys.p256dh, auth: subscription.keys.auth } });
  }

  /** Registers an APNs device token (hex) of the app `bundle`; `voip`: the PushKit token, woken for call offers. */
  registerApns(token: string, bundle: string, opts: { voip?: boolean } = {}): Promise<void> {
    return this.core.api.registerPush({ kind: opts.voip ? 'apns-voip' : 'apns', token, bundle });
  }

  /** Registers an FCM registration token (Android). */
  registerFcm(token: string): Promise<void> {
    return this.core.api.registerPush({ kind: 'fcm', token });
  }

  pushRegistrations(): Promise<{ kind: PushKind; address: string; bundle: string | null }[]> {
    return this.core.api.pushRegistrations();
  }

  unregisterPush(kind: PushKind): Promise<void> {
    return this.core.api.unregisterPush(kind);
  }

  cancel(messageId: string): Promise<boolean> {
    return this.outbox.cancel(messageId.toLowerCase());
  }

  /** The conversation with `userId`, oldest first. */
  async messages(userId: string): Promise<MessageRecord[]> {
    return (await this.core.kv.list(keys.messagesOf(userId))).map(([, v]) => v as unknown as MessageRecord).sort((a, b) => a.ts - b.ts || (a.messageId < b.messageId ? -1 : 1));
  }

  async message(conversation: string, id: string): Promise<MessageRecord | null> {
    // Stored ids are lowercase (SPEC §6); a caller may hold one in either case.
    return ((await this.core.kv.get(keys.message(conversation, id.toLowerCase()))) as MessageRecord | undefined) ?? null;
  }

  /**
   * Received messages (text and unreadable ones) that no interface has marked seen, oldest first:
   * whatever received them (a `send` that caught up on the queue, a client without a screen), a
   * later interface shows them from here. markSeen() takes them off.
   */
  async unseen(): Promise<MessageRecord[]> {
    const out: MessageRecord[] = [];
    for (const [key, v] of await this.core.kv.list(keys.unseenPrefix)) {
      const id = key.slice(keys.unseenPrefix.length);
      const rec = await this.message((v as { conversation: string }).conversation, id);
      if (rec) out.push(rec);
    }
    return out.sort((a, b) => (a.serverTs ?? a.ts) - (b.serverTs ?? b.ts) || (a.messageId < b.messageId ? -1 : 1));
  }

  async markSeen(messageIds: string[]): Promise<void> {
    if (messageIds.length) await this.core.kv.write(messageIds.map((id) => [keys.unseen(id.toLowerCase()), undefined] as const));
  }

  /** Messages still waiting for the server to accept them. */
  async pendingCount(): Promise<number> {
    return (await this.outbox.pending()).length;
  }

  // ---- contacts ------------------------------------------------------------------------------

  /** The other accounts this device knows (its own account, kept for its other devices, is not a contact). */
  async contacts(): Promise<StoredContact[]> {
    return (await this.directory.contacts()).filter((c) => c.userId !== this.userId);
  }
  contact(userId: string): Promise<StoredContact | null> {
    return this.directory.contact(userId);
  }
  /** Fetches `userId`'s account: pins its AK on first use, or reports a change (keyChange event). */
  async lookup(userId: string): Promise<StoredContact | null> {
    await this.directory.refreshDevices(userId).catch((e: unknown) => {
      if ((e as Error).name !== 'KeyChangedError') throw e;
    });
    return this.directory.contact(userId);
  }
  safetyNumber(userId: string): Promise<string> {
    return this.directory.safetyNumber(userId);
  }
  markVerified(userId: string, verified = true): Promise<void> {
    return this.directory.markVerified(userId, verified);
  }
  /** Accepts a contact's new AK: held messages are read, and blocked sends go out. */
  async acceptKeyChange(userId: string): Promise<void> {
    await this.directory.acceptKeyChange(userId);
    await this.inbox.releaseHeld(userId);
    this.outbox.kick();
  }
}
