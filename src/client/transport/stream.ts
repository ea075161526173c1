/**
 * The `/v1/stream` WebSocket, kept open: reconnects with backoff, hands envelopes to one handler
 * at a time in queue order, and acks each batch only after the handler resolved (the handler
 * persists first). Isomorphic: the WebSocket constructor is injected (browser global or `ws`).
 */
import { retryDelay } from '../backoff.js';
import type { Envelope } from './api.js';

export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export type ConnectionState = 'connecting' | 'online' | 'offline' | 'closed';

export interface StreamHandlers {
  /** Persist what the envelopes carry; resolve only then. Returns the ids to ack. */
  onEnvelopes(envelopes: Envelope[]): Promise<string[]>;
  /** The queue as it stood at connection time has been delivered. */
  onDrained(): void;
  onState(state: ConnectionState): void;
}

const OPEN = 1;

export class StreamConnection {
  private ws: WebSocketLike | null = null;
  private attempts = 0;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private work: Promise<void> = Promise.resolve();

  constructor(
    private readonly serverUrl: string,
    private readonly token: () => string,
    private readonly factory: WebSocketFactory,
    private readonly handlers: StreamHandlers,
  ) {}

  start(): void {
    this.closed = false;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.handlers.onState('connecting');
    const url = this.serverUrl.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/stream';
    let ws: WebSocketLike;
    try {
      ws = this.factory(url, ['gchat.v1', `bearer.${this.token()}`]);
    } catch {
      return this.retry();
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.handlers.onState('online');
    };
    ws.onmessage = (ev) => this.onFrame(ws, String(ev.data));
    ws.onerror = () => undefined;
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return this.handlers.onState('closed');
      this.handlers.onState('offline');
      this.retry();
    };
  }

  private retry(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.connect(), retryDelay(this.attempts++));
  }

  private onFrame(ws: WebSocketLike, text: string): void {
    let frame: { op?: string; envelopes?: Envelope[] };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      return;
    }
    if (frame.op === 'envelopes' && Array.isArray(frame.envelopes)) {
      const batch = frame.envelopes;
      // One batch at a time, in order; an ack goes out only once its batch is persisted.
      this.work = this.work.then(async () => {
        const ids = await this.handlers.onEnvelopes(batch);
        if (ids.length && ws.readyState === OPEN) ws.send(JSON.stringify({ op: 'ack', ids }));
      });
      this.work = this.work.catch(() => ws.close(4000, 'client failed to process envelopes'));
    } else if (frame.op === 'drained') {
      this.work = this.work.then(() => this.handlers.onDrained());
    }
  }

  /** Resolves once every envelope received so far has been handled. */
  idle(): Promise<void> {
    return this.work;
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000, 'bye');
    if (!this.ws) this.handlers.onState('closed');
  }
}
