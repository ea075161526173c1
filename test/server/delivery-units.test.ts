/** The delivery model's pure parts: group commit ordering and bounds, device checks, content hash. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BacklogFullError, GroupCommit } from '../../src/server/delivery/group-commit.js';
import { asDeviceRef } from '../../src/server/delivery/queue-repository.js';
import { checkDevices, contentHash, type DeviceInfo, type Sender } from '../../src/server/delivery/send-service.js';
import type { SendRequest } from '../../src/server/delivery/schemas.js';

describe('GroupCommit', () => {
  it('answers every item in submission order, in batches no larger than maxBatch', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer(), { maxLength: 200 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 2 }), async (items, maxBatch, maxConcurrent) => {
        const seen: number[] = [];
        const sizes: number[] = [];
        const gc = new GroupCommit<number, number>(
          async (batch) => {
            sizes.push(batch.length);
            await new Promise((r) => setTimeout(r, 0));
            seen.push(...batch);
            return batch.map((x) => x * 2);
          },
          { maxBatch, maxPending: 10_000, maxConcurrent },
        );
        const out = await Promise.all(items.map((x) => gc.submit(x)));
        expect(out).toEqual(items.map((x) => x * 2));
        expect(sizes.every((n) => n <= maxBatch)).toBe(true);
        if (maxConcurrent === 1) expect(seen).toEqual(items);
        await gc.idle();
      }),
      { numRuns: 60 },
    );
  });

  it('groups what arrives while a batch runs, refuses past maxPending, and fails only the failing item of a failing batch', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommit<number, number>(
      async (batch) => {
        calls++;
        if (calls === 1) await gate;
        if (batch.includes(-1)) throw new Error('boom');
        return [...batch];
      },
      { maxBatch: 100, maxPending: 3 },
    );
    const first = gc.submit(0);
    await new Promise((r) => setTimeout(r, 5)); // batch 1 running
    const waiting = [gc.submit(1), gc.submit(-1), gc.submit(3)];
    await expect(gc.submit(4)).rejects.toBeInstanceOf(BacklogFullError);
    release();
    expect(await first).toBe(0);
    const settled = await Promise.allSettled(waiting);
    // One batch of three failed; each ran again alone, and only the bad item is refused.
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(settled[2]).toEqual({ status: 'fulfilled', value: 3 });
    expect(calls).toBe(5);
    expect(await gc.submit(5)).toBe(5);
  });
});

describe('checkDevices', () => {
  const dev = (user: string, n: number): DeviceInfo => ({ device: n, ref: asDeviceRef(`${user}/${n}`), key: `${user}${n}`.padEnd(43, 'k') });
  const sender: Sender = { username: 'alice', deviceRef: asDeviceRef('alice/1'), device: 1 };

  it('accepts exactly the recipient devices plus the sender\'s other devices, and names every difference', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 5 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 8 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }),
        (bobDevs, aliceOthers, copiesFor, staleFor) => {
          const alice = [dev('alice', 1), ...aliceOthers.filter((n) => n !== 1).map((n) => dev('alice', n + 100))];
          const bob = bobDevs.map((n) => dev('bob', n));
          const dir = new Map([
            ['alice', alice],
            ['bob', bob],
          ]);
          const copies = copiesFor.map((n) => ({ user: 'bob', device: n, key: (staleFor.includes(n) ? 'x' : `bob${n}`).padEnd(43, 'k'), type: 2, body: '' }));
          for (const d of alice.slice(1)) copies.push({ user: 'alice', device: d.device, key: d.key, type: 2, body: '' });
          const req: SendRequest = { message_id: '0', recipient: 'bob', copies };
          const r = checkDevices(sender, req, dir);
          const missing = bobDevs.filter((n) => !copiesFor.includes(n));
          const extra = copiesFor.filter((n) => !bobDevs.includes(n));
          const stale = copiesFor.filter((n) => bobDevs.includes(n) && staleFor.includes(n));
          if (missing.length + extra.length + stale.length === 0) {
            expect(r.kind).toBe('ok');
          } else {
            expect(r).toMatchObject({ kind: 'mismatch' });
            if (r.kind !== 'mismatch') return;
            expect(r.missing.map((d) => d.device).sort()).toEqual(missing.sort());
            expect(r.extra.map((d) => d.device).sort()).toEqual(extra.sort());
            expect(r.stale.map((d) => d.device).sort()).toEqual(stale.sort());
          }
        },
      ),
    );
  });

  it('treats a copy for the sending device itself as extra, and an unknown recipient as such', () => {
    const dir = new Map([['alice', [dev('alice', 1)]], ['bob', [dev('bob', 1)]]]);
    const own = { user: 'alice', device: 1, key: dev('alice', 1).key, type: 2, body: '' };
    const bobCopy = { user: 'bob', device: 1, key: dev('bob', 1).key, type: 2, body: '' };
    expect(checkDevices(sender, { message_id: '0', recipient: 'bob', copies: [bobCopy, own] }, dir)).toMatchObject({ kind: 'mismatch', extra: [{ user: 'alice', device: 1 }] });
    expect(checkDevices(sender, { message_id: '0', recipient: 'carol', copies: [bobCopy] }, dir)).toEqual({ kind: 'unknown_recipient' });
  });
});

describe('contentHash', () => {
  it('ignores copy order and sees every field', () => {
    const c = (device: number, body: string) => ({ user: 'bob', device, key: 'k'.repeat(43), type: 2, body });
    const a: SendRequest = { message_id: 'm', recipient: 'bob', copies: [c(1, 'AA'), c(2, 'BB')] };
    expect(contentHash({ ...a, copies: [...a.copies].reverse() })).toEqual(contentHash(a));
    expect(contentHash({ ...a, copies: [c(1, 'AA'), c(2, 'BC')] })).not.toEqual(contentHash(a));
    expect(contentHash({ ...a, copies: [c(1, 'AA'), { ...c(2, 'BB'), type: 1 }] })).not.toEqual(contentHash(a));
    expect(contentHash({ ...a, recipient: 'bobb' })).not.toEqual(contentHash(a));
  });
});
