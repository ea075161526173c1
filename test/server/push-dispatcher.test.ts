/**
 * The dispatcher's own rules, with an in-memory repository and provider: commits close together
 * share one check, a failed wake-up is tried once more, a dead registration is removed, and a
 * VoIP token stands in for the regular one on a call.
 */
import { Registry, Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { asDeviceRef } from '../../src/server/delivery/queue-repository.js';
import { PushDispatcher } from '../../src/server/push/dispatcher.js';
import type { PushRepository } from '../../src/server/push/repository.js';
import type { PushOutcome, PushProvider, Registration, Wake } from '../../src/server/push/types.js';

const reg = (kind: Registration['kind'], deviceId = 1): Registration => ({
  accountId: '00000000-0000-0000-0000-000000000001',
  deviceId,
  kind,
  address: `${kind}-${deviceId}`,
  p256dh: null,
  auth: null,
  bundle: kind.startsWith('apns') ? 'a.b' : null,
});

function setup(regs: Registration[], outcomes: PushOutcome['kind'][]) {
  const claims: { ids: string[]; urgent: boolean }[] = [];
  const removed: Registration[] = [];
  const sent: { reg: Registration; wake: Wake }[] = [];
  const repo = {
    claim: async (ids: readonly string[], urgent: boolean) => {
      claims.push({ ids: [...ids], urgent });
      return regs;
    },
    removeDead: async (r: Registration) => {
      removed.push(r);
      return true;
    },
  } as unknown as PushRepository;
  const provider: PushProvider = {
    name: 'webpush',
    async send(r, wake) {
      sent.push({ reg: r, wake });
      const k = outcomes.shift() ?? 'sent';
      return k === 'sent' ? { kind: 'sent' } : { kind: k, reason: 'test' };
    },
    async close() {},
  };
  const registry = new Registry();
  const c = (name: string, label: string) => new Counter({ name, help: name, labelNames: [label], registers: [registry] });
  const d = new PushDispatcher({
    repo,
    providers: { webpush: provider, apns: provider, 'apns-voip': provider, fcm: provider },
    metrics: { sent: c('s', 'provider'), failed: c('f', 'provider'), removed: c('r', 'provider'), dropped: c('d', 'stage') },
    now: () => Date.now(),
    graceMs: 50,
    coalesceMs: 5000,
    concurrency: 4,
    log: () => undefined,
  });
  return { d, claims, removed, sent };
}

const notice = (id: string, urgent = false, messageId = `m${id}`) => ({ device: asDeviceRef('x/1'), id, messageId, urgent });

describe('push dispatcher', () => {
  it('checks the notices of commits close together with one statement', async () => {
    const { d, claims } = setup([], []);
    d.queued([notice('1')]);
    d.queued([notice('2'), notice('3')]);
    await d.idle();
    expect(claims).toEqual([{ ids: ['1', '2', '3'], urgent: false }]);
  });

  it('tries a failed wake-up once more, and no more', async () => {
    const once = setup([reg('webpush')], ['failed']);
    once.d.queued([notice('1')]);
    await once.d.idle();
    expect(once.sent).toHaveLength(2);
    const twice = setup([reg('webpush')], ['failed', 'failed']);
    twice.d.queued([notice('1')]);
    await twice.d.idle();
    expect(twice.sent).toHaveLength(2);
    expect(twice.removed).toEqual([]);
  });

  it('removes a registration the service calls dead', async () => {
    const { d, removed, sent } = setup([reg('fcm')], ['gone']);
    d.queued([notice('1')]);
    await d.idle();
    expect(sent).toHaveLength(1);
    expect(removed).toEqual([reg('fcm')]);
  });

  it('wakes a call once per device: the VoIP token stands in for the regular APNs token', async () => {
    const { d, sent, claims } = setup([reg('apns'), reg('apns-voip'), reg('webpush', 2)], []);
    d.queued([notice('1', true, 'call-1'), notice('2', true, 'call-1')]);
    await d.idle();
    expect(claims).toEqual([{ ids: ['1', '2'], urgent: true }]);
    expect(sent.map((s) => s.reg.kind).sort()).toEqual(['apns-voip', 'webpush']);
    expect(sent.every((s) => s.wake.urgent && s.wake.callId === 'call-1')).toBe(true);
  });
});
