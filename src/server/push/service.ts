/**
 * The push side put together: registrations per device, the VAPID keys (generated at first
 * start, stored in the database so every instance shares them), the providers that are
 * configured, and the dispatcher that turns queued envelopes into wake-ups.
 */
import { isP256Point } from './schemas.js';
import type { PushConfig } from '../config.js';
import { ApiError } from '../errors.js';
import type { AuthContext } from '../services/deps.js';
import type { QueuedNotice } from '../delivery/send-service.js';
import { ApnsProvider } from './apns.js';
import { type DispatcherDeps, PushDispatcher, type PushMetrics } from './dispatcher.js';
import { FcmProvider } from './fcm.js';
import type { PushRepository } from './repository.js';
import type { PushRegistrationIn } from './schemas.js';
import type { PushKind, PushProvider, Registration } from './types.js';
import { generateVapidKeys, type VapidKeys, WebPushProvider } from './webpush.js';

const VAPID_KEY_NAME = 'vapid';

export interface PushServiceDeps {
  readonly config: PushConfig;
  readonly repo: PushRepository;
  readonly metrics: PushMetrics;
  readonly now: () => number;
  readonly log: (msg: string, fields: Record<string, unknown>) => void;
  readonly onOutcome?: DispatcherDeps['onOutcome'];
}

export class PushService {
  private vapid: VapidKeys | null = null;
  private dispatcher: PushDispatcher | null = null;
  private providers: PushProvider[] = [];

  constructor(private readonly d: PushServiceDeps) {}

  /** Loads (or makes) the VAPID keys and starts the providers that are configured. */
  async start(): Promise<void> {
    const stored = await this.d.repo.serverKey(VAPID_KEY_NAME, JSON.stringify(generateVapidKeys()));
    const vapid = JSON.parse(stored) as VapidKeys;
    this.vapid = vapid;
    const c = this.d.config;
    const webpush = new WebPushProvider({ vapid, subject: c.vapidSubject, ttlSeconds: c.ttlSeconds, timeoutMs: c.timeoutMs });
    const apns = c.apns ? new ApnsProvider(c.apns, c.timeoutMs) : null;
    const fcm = c.fcm ? new FcmProvider(c.fcm, { ttlSeconds: c.ttlSeconds, timeoutMs: c.timeoutMs }) : null;
    this.providers = [webpush, ...(apns ? [apns] : []), ...(fcm ? [fcm] : [])];
    const providers: Partial<Record<PushKind, PushProvider>> = { webpush };
    if (apns) Object.assign(providers, { apns, 'apns-voip': apns });
    if (fcm) providers.fcm = fcm;
    this.dispatcher = new PushDispatcher({
      repo: this.d.repo,
      providers,
      metrics: this.d.metrics,
      now: this.d.now,
      graceMs: c.graceMs,
      coalesceMs: c.coalesceMs,
      concurrency: c.concurrency,
      log: this.d.log,
      ...(this.d.onOutcome ? { onOutcome: this.d.onOutcome } : {}),
    });
  }

  vapidPublicKey(): string {
    if (!this.vapid) throw new ApiError('unavailable', 'push is starting');
    return this.vapid.publicKey;
  }

  /** What a commit queued (called on the send path: returns at once). */
  queued(notices: readonly QueuedNotice[]): void {
    if (this.d.config.enabled) this.dispatcher?.queued(notices);
  }

  async register(auth: AuthContext, r: PushRegistrationIn): Promise<void> {
    const base = { accountId: auth.accountId, deviceId: auth.deviceId };
    let reg: Registration;
    if (r.kind === 'webpush') {
      let url: URL;
      try {
        url = new URL(r.endpoint);
      } catch {
        throw new ApiError('bad_endpoint', 'endpoint: not a URL');
      }
      const schemes = this.d.config.allowHttpEndpoints ? ['https:', 'http:'] : ['https:'];
      if (!schemes.includes(url.protocol)) throw new ApiError('bad_endpoint', `endpoint: must be an ${schemes.join(' or ')} URL`);
      if (url.username || url.password) throw new ApiError('bad_endpoint', 'endpoint: must not carry credentials');
      if (!isP256Point(r.keys.p256dh)) throw new ApiError('bad_key', 'keys.p256dh: not an uncompressed P-256 public key');
      reg = { ...base, kind: 'webpush', address: url.toString(), p256dh: r.keys.p256dh, auth: r.keys.auth, bundle: null };
    } else if (r.kind === 'fcm') {
      reg = { ...base, kind: 'fcm', address: r.token, p256dh: null, auth: null, bundle: null };
    } else {
      reg = { ...base, kind: r.kind, address: r.token, p256dh: null, auth: null, bundle: r.bundle };
    }
    await this.d.repo.put(reg);
  }

  list(auth: AuthContext): Promise<Registration[]> {
    return this.d.repo.list(auth.accountId, auth.deviceId);
  }

  unregister(auth: AuthContext, kind: PushKind): Promise<boolean> {
    return this.d.repo.remove(auth.accountId, auth.deviceId, kind);
  }

  /** Resolves once every wake-up queued so far is decided and sent. */
  idle(): Promise<void> {
    return this.dispatcher?.idle() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
    await Promise.all(this.providers.map((p) => p.close().catch(() => undefined)));
  }
}
