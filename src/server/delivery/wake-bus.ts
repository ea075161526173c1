/**
 * Wake-ups between instances. After a commit the sending instance wakes its own streams
 * directly; other instances learn which devices have new envelopes through PostgreSQL
 * LISTEN/NOTIFY (the NOTIFY is part of the statement that writes the envelopes, so it is
 * delivered exactly when they become visible). Embedded PGlite runs one instance: nothing to publish.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { NOTIFY_DEVICES_PER_PAYLOAD } from './limits.js';

export const WAKE_CHANNEL = 'gchat_delivery';

/**
 * `devices`: these devices have new envelopes; `all`: anything may have been missed;
 * `removed`: these devices were removed (their streams close).
 */
export type Wake =
  | { readonly kind: 'devices'; readonly devices: readonly string[] }
  | { readonly kind: 'all' }
  | { readonly kind: 'removed'; readonly devices: readonly string[] };

export interface WakeBus {
  /** NOTIFY payloads for these devices, sent by the statement that commits their envelopes. */
  payloads(devices: readonly string[]): string[];
  /** Tells the other instances that these devices were removed. */
  removed(devices: readonly string[]): Promise<void>;
  /** Receives other instances' wake-ups. */
  subscribe(fn: (wake: Wake) => void): void;
  close(): Promise<void>;
}

/** One process: the sender wakes its own streams, so there is nothing to carry. */
export class LocalWakeBus implements WakeBus {
  payloads(): string[] {
    return [];
  }
  async removed(): Promise<void> {}
  subscribe(): void {}
  async close(): Promise<void> {}
}

export class PgWakeBus implements WakeBus {
  readonly instanceId = randomUUID().slice(0, 8);
  private client: pg.Client | null = null;
  private listeners: ((wake: Wake) => void)[] = [];
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;

  constructor(private readonly connectionString: string) {}

  /** Connects the listening session; resolves once LISTEN is in place. */
  start(): Promise<void> {
    this.connecting ??= this.connect();
    return this.connecting;
  }

  payloads(devices: readonly string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < devices.length; i += NOTIFY_DEVICES_PER_PAYLOAD) {
      out.push(`${this.instanceId}:${devices.slice(i, i + NOTIFY_DEVICES_PER_PAYLOAD).join(',')}`);
    }
    return out;
  }

  async removed(devices: readonly string[]): Promise<void> {
    const c = this.client;
    if (!c || devices.length === 0) return;
    await c.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, `${this.instanceId}!${devices.join(',')}`]);
  }

  subscribe(fn: (wake: Wake) => void): void {
    this.listeners.push(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }

  private emit(w: Wake): void {
    for (const fn of this.listeners) fn(w);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'gchat-wake' });
    client.on('notification', (msg) => {
      if (msg.channel !== WAKE_CHANNEL || !msg.payload) return;
      // "<instance>:<devices>" new envelopes, "<instance>!<devices>" removed devices.
      const at = msg.payload.search(/[:!]/);
      if (at < 0 || msg.payload.slice(0, at) === this.instanceId) return;
      const devices = msg.payload.slice(at + 1).split(',').filter((d) => d.length > 0);
      if (devices.length === 0) return;
      this.emit({ kind: msg.payload[at] === '!' ? 'removed' : 'devices', devices });
    });
    const lost = (): void => {
      if (this.client !== client) return;
      this.client = null;
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', lost);
    await client.connect();
    await client.query(`LISTEN ${WAKE_CHANNEL}`);
    this.client = client;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.connect()
        // Notifications sent while we were away are lost: every stream re-reads its queue.
        .then(() => this.emit({ kind: 'all' }))
        .catch(() => this.scheduleReconnect());
    }, 500);
  }
}
