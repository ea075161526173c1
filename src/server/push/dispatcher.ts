/**
 * From queued envelopes to wake-ups, off the send path. A commit's notices wait `graceMs`; then
 * one statement picks the registrations of devices whose envelopes are still queued (a device
 * with a live stream on any instance has acked them by then, so it gets nothing) and, for
 * ordinary wake-ups, claims them against the coalescing window in the database (so several
 * instances together send at most one per device per window). Pushes go out with bounded
 * concurrency, each under a timeout; a registration the service calls dead is removed. Nothing
 * here can fail or slow a send: every bound drops work (counted) instead of waiting.
 */
import type { Counter } from 'prom-client';
import type { QueuedNotice } from '../delivery/send-service.js';
import type { PushRepository } from './repository.js';
import type { PushKind, PushOutcome, PushProvider, Registration, Wake } from './types.js';

/** Notices waiting for their grace to pass, per instance; more are dropped (counted). */
export const MAX_WAITING_NOTICES = 200_000;
/** Pushes waiting for a free request slot, per instance; more are dropped (counted). */
export const MAX_QUEUED_PUSHES = 20_000;
/** Envelope ids looked up by one statement. */
const IDS_PER_CHECK = 5_000;

export interface PushMetrics {
  readonly sent: Counter<'provider'>;
  readonly failed: Counter<'provider'>;
  readonly removed: Counter<'provider'>;
  readonly dropped: Counter<'stage'>;
}

export interface DispatcherDeps {
  readonly repo: PushRepository;
  readonly providers: Partial<Record<PushKind, PushProvider>>;
  readonly metrics: PushMetrics;
  readonly now: () => number;
  readonly graceMs: number;
  readonly coalesceMs: number;
  readonly concurrency: number;
  readonly log: (msg: string, fields: Record<string, unknown>) => void;
  /** Observes every push attempt (the bench measures with it). */
  readonly onOutcome?: (reg: Registration, wake: Wake, outcome: PushOutcome) => void;
}

interface Job {
  readonly reg: Registration;
  readonly wake: Wake;
}

export class PushDispatcher {
  private waiting = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly checks = new Set<Promise<void>>();
  private readonly queue: Job[] = [];
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(private readonly d: DispatcherDeps) {}

  /** Called after a commit (must return at once). */
  queued(notices: readonly QueuedNotice[]): void {
    if (this.closed || notices.length === 0) return;
    if (this.waiting + notices.length > MAX_WAITING_NOTICES) {
      this.d.metrics.dropped.inc({ stage: 'waiting' }, notices.length);
      return;
    }
    this.waiting += notices.length;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.waiting -= notices.length;
      const p = this.check(notices)
        .catch((err: unknown) => this.d.log('push check failed', { error: (err as Error).message }))
        .finally(() => {
          this.checks.delete(p);
          this.settleIfIdle();
        });
      this.checks.add(p);
    }, this.d.graceMs);
    this.timers.add(t);
  }

  private async check(notices: readonly QueuedNotice[]): Promise<void> {
    const normal = notices.filter((n) => !n.urgent).map((n) => n.id);
    for (let i = 0; i < normal.length; i += IDS_PER_CHECK) {
      const regs = await this.d.repo.claim(normal.slice(i, i + IDS_PER_CHECK), false, this.d.now(), this.d.coalesceMs);
      for (const reg of regs) this.enqueue({ reg, wake: { urgent: false, callId: null } });
    }
    // Urgent: one wake-up per call and device, never coalesced; a VoIP token stands in for the others.
    const calls = new Map<string, string[]>();
    for (const n of notices) if (n.urgent) calls.set(n.messageId, [...(calls.get(n.messageId) ?? []), n.id]);
    for (const [callId, ids] of calls) {
      const regs = await this.d.repo.claim(ids, true, this.d.now(), this.d.coalesceMs);
      const voip = new Set(regs.filter((r) => r.kind === 'apns-voip').map((r) => `${r.accountId}/${r.deviceId}`));
      for (const reg of regs) {
        if (reg.kind === 'apns' && voip.has(`${reg.accountId}/${reg.deviceId}`)) continue;
        this.enqueue({ reg, wake: { urgent: true, callId } });
      }
    }
  }

  private enqueue(job: Job): void {
    if (!this.d.providers[job.reg.kind]) return;
    if (this.queue.length >= MAX_QUEUED_PUSHES) {
      this.d.metrics.dropped.inc({ stage: 'queue' });
      return;
    }
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    while (this.active < this.d.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active++;
      void this.run(job).finally(() => {
        this.active--;
        this.pump();
        this.settleIfIdle();
      });
    }
  }

  private async run(job: Job): Promise<void> {
    const provider = this.d.providers[job.reg.kind]!;
    const outcome = await provider.send(job.reg, job.wake);
    const label = { provider: provider.name };
    try {
      if (outcome.kind === 'sent') this.d.metrics.sent.inc(label);
      else if (outcome.kind === 'failed') {
        this.d.metrics.failed.inc(label);
        this.d.log('push failed', { provider: provider.name, kind: job.reg.kind, reason: outcome.reason });
      } else {
        this.d.metrics.failed.inc(label);
        if (await this.d.repo.removeDead(job.reg)) this.d.metrics.removed.inc(label);
      }
    } catch (err) {
      this.d.log('push bookkeeping failed', { error: (err as Error).message });
    }
    this.d.onOutcome?.(job.reg, job.wake, outcome);
  }

  private get busy(): boolean {
    return this.timers.size > 0 || this.checks.size > 0 || this.active > 0 || this.queue.length > 0;
  }

  private settleIfIdle(): void {
    if (this.busy) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when every wake-up queued so far has been decided and sent (tests, shutdown). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops taking notices; pending grace timers are dropped, pushes in flight finish. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.waiting = 0;
    this.queue.length = 0;
    await Promise.all([...this.checks]);
    this.settleIfIdle();
    await this.idle();
  }
}
