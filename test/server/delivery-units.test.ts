/**
 * The delivery model's pure parts: group commit ordering, bounds and isolation, device checks,
 * content hash, the id range, the §5 check, the member budget, the resend key.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BacklogFullError, GroupCommit } from '../../src/server/delivery/group-commit.js';
import { asDeviceRef } from '../../src/server/delivery/queue-repository.js';
import { checkDevices, contentHash, resendKey, type DeviceInfo, type Sender } from '../../src/server/delivery/send-service.js';
import { ServerId, type SendRequest } from '../../src/server/delivery/schemas.js';
import { wireProblem } from '../../src/server/delivery/wire-check.js';
import { tooManyMembers } from '../../src/server/delivery/frame-guard.js';
import { DEFAULT_LIMITS, maxSendPunctuation } from '../../src/server/delivery/limits.js';

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

describe('ServerId', () => {
  it('admits exactly the decimal integers 1..2^63-1 (PostgreSQL bigint), so no ack id can overflow in a batch', () => {
    const inRange = (s: string) => /^[1-9][0-9]*$/.test(s) && BigInt(s) <= 9223372036854775807n;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n }).map(String),
          fc.stringMatching(/^922337203685477[0-9]{4}$/),
          fc.stringMatching(/^[0-9]{1,21}$/),
        ),
        (s) => {
          expect(ServerId.safeParse(s).success).toBe(inRange(s));
        },
      ),
      { numRuns: 2000 },
    );
    expect(ServerId.safeParse('9223372036854775807').success).toBe(true);
    expect(ServerId.safeParse('9223372036854775808').success).toBe(false);
  });
});

describe('wireProblem (SPEC §5 as the relay checks it)', () => {
  const b = (bytes: number[]) => Buffer.from(bytes).toString('base64url');
  const zeros = (n: number) => new Array<number>(n).fill(0);
  it('accepts the shortest message of each type, with its declared type', () => {
    expect(wireProblem(2, b([1, 2, ...zeros(56)]))).toBeNull();
    expect(wireProblem(1, b([1, 1, 0, 3, ...zeros(1320 + 3)]))).toBeNull();
  });
  it('refuses a type that disagrees with the type byte, another version, and a body shorter than its type needs', () => {
    expect(wireProblem(1, b([1, 2, ...zeros(2000)]))).toMatch(/type/);
    expect(wireProblem(2, b([1, 1, ...zeros(2000)]))).toMatch(/type/);
    expect(wireProblem(2, b([2, 2, ...zeros(56)]))).toMatch(/version/);
    expect(wireProblem(2, b([1, 2, ...zeros(55)]))).toMatch(/short/);
    expect(wireProblem(1, b([1, 1, 0, 3, ...zeros(1320 + 2)]))).toMatch(/short/);
    expect(wireProblem(2, '')).toMatch(/short/);
    expect(wireProblem(3, b([1, 3, ...zeros(100)]))).toMatch(/type/);
  });
});

describe('tooManyMembers', () => {
  it('counts JSON punctuation against the budget, stopping past it', () => {
    expect(tooManyMembers(Buffer.from('{"a":[1,2]}'), 4)).toBe(false); // { : [ ,
    expect(tooManyMembers(Buffer.from('{"a":[1,2]}'), 3)).toBe(true);
    expect(tooManyMembers(Buffer.from(`{"s":"${'x'.repeat(100_000)}"}`), 2)).toBe(false);
    expect(tooManyMembers(Buffer.from('"\\\\u0041"'), 0)).toBe(true);
    expect(tooManyMembers(Buffer.from(JSON.stringify(Array.from({ length: 200_000 }, () => ({ a: 1 })))), maxSendPunctuation(DEFAULT_LIMITS))).toBe(true);
  });
});

describe('resendKey', () => {
  it('is a UUIDv8 (never a send id, which is v7), stable for one request', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const k = resendKey(Buffer.from(bytes));
        expect(k).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(resendKey(Buffer.from(bytes))).toBe(k);
      }),
    );
  });
});
