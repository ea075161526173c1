/**
 * The page's side of the client SDK. One tab of a device holds the stream and the outbox (it owns
 * the Web Lock); the others follow: they read the same IndexedDB, hear what changed over a
 * BroadcastChannel, and ask the holder to do anything that sends. When the holder closes, the
 * next tab in line takes the lock and starts the client.
 */
import { GChatClient, type ClientOptions } from '../../src/client/client.js';
import type { StoredContact } from '../../src/client/state.js';
import { IndexedDbKeyValueStore } from '../../src/client/stores/indexeddb.js';
import type { ConnectionState, WebSocketLike } from '../../src/client/transport/stream.js';
import { webCrypto } from './kem.js';
import { chatMessages, type ChatMessage, type Conversation } from './model.js';

const DB_NAME = 'gchat-device';
const LOCK_NAME = 'gchat-device-stream';
const CHANNEL_NAME = 'gchat-device-tabs';
const TYPING_SHOWN_MS = 6000;
const NOTIFY_COALESCE_MS = 15;

export type Connection = ConnectionState | 'offline-browser';

type TabMessage =
  | { t: 'changed' }
  | { t: 'connection'; state: Connection }
  | { t: 'typing'; from: string; state: 'started' | 'stopped' }
  | { t: 'call'; id: string; method: RemoteMethod; args: unknown[] }
  | { t: 'reply'; id: string; ok: boolean; value?: unknown; error?: string }
  | { t: 'hello' };

/** What a following tab asks the holding tab to do. */
type RemoteMethod = 'sendText' | 'markRead' | 'sendTyping' | 'lookup' | 'acceptKeyChange' | 'removeDevice';

export interface Device {
  id: number;
  current: boolean;
}

const cryptoProvider = webCrypto();

function options(store: IndexedDbKeyValueStore): ClientOptions {
  return { store, crypto: cryptoProvider, webSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike };
}

/** Messages this device has shown as read, one key each (messages can arrive out of their timestamp order). */
const readPrefix = (conversation: string): string => `web/read/${encodeURIComponent(conversation)}/`;

export class Engine {
  role: 'leader' | 'follower' = 'follower';
  connection: Connection = 'connecting';
  private readonly listeners = new Set<() => void>();
  private readonly typingUntil = new Map<string, number>();
  private readonly channel = new BroadcastChannel(CHANNEL_NAME);
  private readonly calls = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private releaseLock: (() => void) | null = null;
  private restarting = false;
  private notifyTimer: ReturnType<typeof setTimeout> | null = null;

  private constructor(
    readonly client: GChatClient,
    private readonly store: IndexedDbKeyValueStore,
  ) {
    this.channel.onmessage = (ev: MessageEvent<TabMessage>) => void this.onTabMessage(ev.data);
  }

  // ---- opening -------------------------------------------------------------------------------

  /** The device stored in this browser, or null when there is none yet. */
  static async open(): Promise<Engine | null> {
    const store = await IndexedDbKeyValueStore.open(DB_NAME);
    if ((await store.get('identity')) === undefined) {
      await store.close();
      return null;
    }
    return Engine.started(await GChatClient.open(options(store)), store);
  }

  static async register(input: { username: string; password: string; passphrase?: string }): Promise<{ engine: Engine; recoveryCode: string | null }> {
    const store = await IndexedDbKeyValueStore.open(DB_NAME);
    const { client, recoveryCode } = await GChatClient.register(options(store), { serverUrl: location.origin, ...input });
    return { engine: Engine.started(client, store), recoveryCode };
  }

  static async addDevice(input: { username: string; password: string; secret: string }): Promise<Engine> {
    const store = await IndexedDbKeyValueStore.open(DB_NAME);
    const client = await GChatClient.addDevice(options(store), { serverUrl: location.origin, ...input });
    return Engine.started(client, store);
  }

  private static started(client: GChatClient, store: IndexedDbKeyValueStore): Engine {
    const e = new Engine(client, store);
    e.wire();
    e.takeLockWhenFree();
    e.post({ t: 'hello' });
    return e;
  }

  private wire(): void {
    const c = this.client;
    const changed = (): void => {
      this.notify();
      this.post({ t: 'changed' });
    };
    c.on('message', (m) => {
      this.typingUntil.delete(m.conversation);
      changed();
    });
    c.on('status', changed);
    c.on('keyChange', changed);
    c.on('typing', ({ from, state }) => {
      this.setTyping(from, state);
      this.post({ t: 'typing', from, state });
    });
    c.on('connection', (s) => this.setConnection(navigator.onLine ? s : 'offline-browser'));
    addEventListener('offline', () => this.setConnection('offline-browser'));
    // Back online: reconnect now rather than at the end of a backoff, so queued messages go out.
    addEventListener('online', () => void this.reconnect());
  }

  private takeLockWhenFree(): void {
    if (!('locks' in navigator)) {
      void this.lead();
      return;
    }
    void navigator.locks.request(LOCK_NAME, () => {
      void this.lead();
      return new Promise<void>((resolve) => (this.releaseLock = resolve));
    });
  }

  private async lead(): Promise<void> {
    this.role = 'leader';
    await this.client.start();
    this.notify();
  }

  private async reconnect(): Promise<void> {
    if (this.role !== 'leader' || this.restarting) return;
    this.restarting = true;
    try {
      await this.client.stop();
      await this.client.start();
    } finally {
      this.restarting = false;
    }
  }

  /** Stops the client and lets another tab lead (used when signing out of this tab's view, and in tests). */
  async close(): Promise<void> {
    if (this.role === 'leader') await this.client.stop();
    this.releaseLock?.();
    this.channel.close();
    await this.store.close();
  }

  // ---- tabs ----------------------------------------------------------------------------------

  private post(m: TabMessage): void {
    try {
      this.channel.postMessage(m);
    } catch {
      // channel closed
    }
  }

  private async onTabMessage(m: TabMessage): Promise<void> {
    switch (m.t) {
      case 'changed':
        return this.notify();
      case 'typing':
        return this.setTyping(m.from, m.state);
      case 'connection':
        if (this.role === 'follower') this.setConnectionLocal(m.state);
        return;
      case 'hello':
        if (this.role === 'leader') this.post({ t: 'connection', state: this.connection });
        return;
      case 'reply': {
        const call = this.calls.get(m.id);
        if (!call) return;
        this.calls.delete(m.id);
        if (m.ok) call.resolve(m.value);
        else call.reject(new Error(m.error ?? 'failed'));
        return;
      }
      case 'call': {
        if (this.role !== 'leader') return;
        try {
          const value = await this.local(m.method, m.args);
          if (m.method !== 'lookup') this.changed();
          this.post({ t: 'reply', id: m.id, ok: true, value });
        } catch (e) {
          this.post({ t: 'reply', id: m.id, ok: false, error: (e as Error).message });
        }
      }
    }
  }

  private local(method: RemoteMethod, args: unknown[]): Promise<unknown> {
    const c = this.client;
    switch (method) {
      case 'sendText':
        return c.sendText(args[0] as string, args[1] as string, args[2] as { replyTo?: string; editOf?: string });
      case 'markRead':
        return c.markRead(args[0] as string, args[1] as string[]);
      case 'sendTyping':
        return c.sendTyping(args[0] as string, args[1] as 'started' | 'stopped');
      case 'lookup':
        return c.lookup(args[0] as string);
      case 'acceptKeyChange':
        return c.acceptKeyChange(args[0] as string);
      case 'removeDevice':
        return c.removeDevice(args[0] as number);
    }
  }

  /** Runs `method` here when this tab holds the stream, else in the tab that does. */
  private async run<T>(method: RemoteMethod, ...args: unknown[]): Promise<T> {
    if (this.role === 'leader') {
      const v = (await this.local(method, args)) as T;
      if (method !== 'lookup') this.changed();
      return v;
    }
    const id = crypto.randomUUID();
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ t: 'call', id, method, args });
    });
  }

  // ---- state for the screens -----------------------------------------------------------------

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Something stored changed: this tab and the others re-read. (A lookup is a read: it must not, or screens that look up would loop.) */
  private changed(): void {
    this.notify();
    this.post({ t: 'changed' });
  }

  /** Screens re-read on change; a burst of events (a message, its receipts, statuses) becomes one re-read. */
  private notify(): void {
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = null;
      for (const fn of this.listeners) fn();
    }, NOTIFY_COALESCE_MS);
  }

  private setConnection(state: Connection): void {
    this.setConnectionLocal(state);
    this.post({ t: 'connection', state });
  }

  private setConnectionLocal(state: Connection): void {
    this.connection = state;
    this.notify();
  }

  private setTyping(from: string, state: 'started' | 'stopped'): void {
    if (state === 'started') {
      this.typingUntil.set(from, Date.now() + TYPING_SHOWN_MS);
      setTimeout(() => this.notify(), TYPING_SHOWN_MS + 50);
    } else this.typingUntil.delete(from);
    this.notify();
  }

  isTyping(userId: string): boolean {
    return (this.typingUntil.get(userId) ?? 0) > Date.now();
  }

  get userId(): string {
    return this.client.userId;
  }

  async conversations(): Promise<Conversation[]> {
    const contacts = (await this.client.contacts()).filter((c) => c.userId !== this.userId);
    const list = await Promise.all(
      contacts.map(async (c): Promise<Conversation> => {
        const msgs = await this.chat(c.userId);
        const read = await this.readIds(c.userId);
        return {
          userId: c.userId,
          last: msgs.at(-1) ?? null,
          unread: msgs.filter((m) => !m.outgoing && !read.has(m.id)).length,
          verified: c.verified,
          keyChanged: c.changedAk !== null,
        };
      }),
    );
    return list.sort((a, b) => (b.last?.ts ?? 0) - (a.last?.ts ?? 0) || a.userId.localeCompare(b.userId));
  }

  async chat(userId: string): Promise<ChatMessage[]> {
    return chatMessages(await this.client.messages(userId));
  }

  contact(userId: string): Promise<StoredContact | null> {
    return this.client.contact(userId);
  }

  /** Finds an account by username (pins its key on first use); null when there is none. */
  async find(username: string): Promise<StoredContact | null> {
    try {
      const c = await this.run<StoredContact | null>('lookup', username);
      this.changed();
      return c;
    } catch (e) {
      if ((e as Error).name === 'UnknownUserError' || /no such user/.test((e as Error).message)) return null;
      throw e;
    }
  }

  send(to: string, body: string, opts: { replyTo?: string; editOf?: string } = {}): Promise<string> {
    return this.run<string>('sendText', to, body, opts);
  }

  typing(to: string, state: 'started' | 'stopped'): Promise<void> {
    return this.run<void>('sendTyping', to, state).catch(() => undefined);
  }

  /** Marks everything received in `userId`'s conversation read: a receipt to the sender, the unread count to zero. */
  async markRead(userId: string, messages: ChatMessage[]): Promise<void> {
    const read = await this.readIds(userId);
    const fresh = messages.filter((m) => !m.outgoing && !read.has(m.id));
    if (!fresh.length) return;
    await this.store.write(fresh.map((m) => [readPrefix(userId) + m.id, true] as const));
    this.changed();
    await this.run<void>('markRead', userId, fresh.map((m) => m.id));
  }

  private async readIds(userId: string): Promise<Set<string>> {
    const prefix = readPrefix(userId);
    return new Set((await this.store.list(prefix)).map(([k]) => k.slice(prefix.length)));
  }

  safetyNumber(userId: string): Promise<string> {
    return this.client.safetyNumber(userId);
  }

  async setVerified(userId: string, verified: boolean): Promise<void> {
    await this.client.markVerified(userId, verified);
    this.changed();
  }

  acceptKeyChange(userId: string): Promise<void> {
    return this.run<void>('acceptKeyChange', userId);
  }

  /** This device and the account's other devices whose certificates verify. */
  async devices(): Promise<Device[]> {
    const self = await this.run<StoredContact | null>('lookup', this.userId);
    const others = (self?.devices ?? []).map((d) => ({ id: d.id, current: false }));
    return [{ id: this.client.deviceId, current: true }, ...others].sort((a, b) => a.id - b.id);
  }

  removeDevice(id: number): Promise<void> {
    return this.run<void>('removeDevice', id);
  }

  /** Whether the server still accepts this device (false once another device removed it). */
  async stillRegistered(): Promise<boolean> {
    try {
      await this.client.checkCredentials();
      return true;
    } catch (e) {
      return (e as { status?: number }).status !== 401;
    }
  }
}
