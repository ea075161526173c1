/**
 * The calls of this browser device: at most one at a time. It hears the SDK's call events (only
 * the tab that holds the device's stream receives them, so only that tab rings and places calls),
 * starts and routes calls, answers a second caller "busy", and keeps an ended call on screen for
 * a moment so the user sees how it ended.
 */
import type { CallSignal } from '../../../src/client/core.js';
import { Call, type CallSignalling, type CallView } from './call.js';

const ENDED_SHOWN_MS = 2500;
/** Call ids this device has finished with: a late offer or re-offer for one must not ring again. */
const SEEN_LIMIT = 200;

export interface CallEvents {
  on(event: 'call', handler: (c: CallSignal) => void): () => void;
}

export class CallManager {
  private call: Call | null = null;
  private readonly seen = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private dismissTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly sdk: CallSignalling & CallEvents & { newCallId(): string },
    /** Whether this tab can place and take calls (it holds the stream). */
    readonly canCall: () => boolean,
  ) {
    sdk.on('call', (s) => void this.onSignal(s));
  }

  current(): CallView | null {
    return this.call?.view() ?? null;
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async start(peer: string): Promise<void> {
    if (!this.canCall() || (this.call && this.call.state !== 'ended')) return;
    const id = this.sdk.newCallId();
    this.remember(id);
    const call = Call.outgoing(this.sdk, id, peer, () => this.changed(call));
    this.call = call;
    this.changed(call);
    await call.dial();
  }

  accept(): Promise<void> {
    return this.call?.accept() ?? Promise.resolve();
  }

  decline(): void {
    this.call?.decline();
  }

  hangUp(): void {
    this.call?.hangUp();
  }

  private async onSignal(s: CallSignal): Promise<void> {
    const call = this.call;
    if (call && call.id === s.callId) return call.onSignal(s);
    if (s.kind !== 'offer' || s.own) {
      this.remember(s.callId);
      return;
    }
    if (this.seen.has(s.callId)) return;
    this.remember(s.callId);
    if (call && call.state !== 'ended') {
      void this.sdk.sendCallHangup(s.peer, s.callId, 'busy').catch(() => undefined);
      return;
    }
    const incoming = Call.incoming(this.sdk, s as CallSignal & { kind: 'offer' }, () => this.changed(incoming));
    this.call = incoming;
    this.changed(incoming);
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
  }

  private changed(call: Call | null): void {
    if (call && call === this.call && call.state === 'ended') {
      if (this.dismissTimer) clearTimeout(this.dismissTimer);
      this.dismissTimer = setTimeout(() => {
        if (this.call === call) this.call = null;
        for (const fn of this.listeners) fn();
      }, ENDED_SHOWN_MS);
    }
    for (const fn of this.listeners) fn();
  }
}
