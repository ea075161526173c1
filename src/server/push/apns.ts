/**
 * APNs over HTTP/2 with token-based auth (ES256 JWT from a .p8 key, key id and team id), through
 * `@parse/node-apn`. An urgent wake-up to a VoIP (PushKit) token is a VoIP push: topic
 * `<bundle>.voip`, priority 10, expiration 0, and a payload holding only the opaque call id, so
 * the app can report the call to CallKit at once. Any other wake-up is a mutable alert with a
 * fixed, content-free text that the app's notification extension replaces after fetching and
 * decrypting its queue.
 */
import { readFileSync } from 'node:fs';
import apn from '@parse/node-apn';
import type { ApnsConfig } from '../config.js';
import type { PushOutcome, PushProvider, Registration, Wake } from './types.js';

/** Reasons for which APNs says the token will never work again. */
const DEAD = new Set(['Unregistered', 'BadDeviceToken', 'DeviceTokenNotForTopic']);

export class ApnsProvider implements PushProvider {
  readonly name = 'apns' as const;
  private readonly provider: apn.Provider;

  constructor(config: ApnsConfig, timeoutMs: number) {
    this.provider = new apn.Provider({
      token: { key: readFileSync(config.keyFile), keyId: config.keyId, teamId: config.teamId },
      address: config.host,
      port: config.port,
      production: config.host === 'api.push.apple.com',
      requestTimeout: timeoutMs,
      connectionRetryLimit: 2,
      ...(config.caFile ? { ca: [readFileSync(config.caFile)] } : {}),
    });
  }

  async send(reg: Registration, wake: Wake): Promise<PushOutcome> {
    if (!reg.bundle) return { kind: 'gone', reason: 'no bundle id' };
    const n = new apn.Notification();
    if (reg.kind === 'apns-voip') {
      if (!wake.urgent || !wake.callId) return { kind: 'failed', reason: 'a VoIP token takes call wake-ups only' };
      n.topic = `${reg.bundle}.voip`;
      n.pushType = 'voip';
      n.priority = 10;
      n.expiry = 0;
      n.rawPayload = { call_id: wake.callId };
    } else {
      n.topic = reg.bundle;
      n.pushType = 'alert';
      n.priority = wake.urgent ? 10 : 5;
      n.expiry = Math.floor(Date.now() / 1000) + (wake.urgent ? 60 : 86_400);
      n.collapseId = 'wake';
      n.rawPayload = { aps: { alert: { 'loc-key': wake.urgent ? 'INCOMING_CALL' : 'NEW_MESSAGE' }, 'mutable-content': 1 } };
    }
    try {
      const r = await this.provider.send(n, reg.address);
      const f = r.failed[0];
      if (!f) return { kind: 'sent' };
      const reason = f.response?.reason ?? (f.error ? f.error.message : `status ${f.status ?? 'none'}`);
      if (DEAD.has(reason) || f.status === 410) return { kind: 'gone', reason };
      return { kind: 'failed', reason };
    } catch (err) {
      return { kind: 'failed', reason: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}
