import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SKIP, MemoryProtocolStore, ProtocolError, decryptMessage, encryptMessage, fromUtf8, startSession, utf8 } from '../../src/protocol/index.js';
import { type TestDevice, addressOf, introduce, makeDevice } from '../helpers/protocol-devices.js';

type Dir = 'ab' | 'ba';
interface InFlight {
  wire: Uint8Array;
  text: string;
  delivered: boolean;
}
type Action =
  | { t: 'send'; dir: Dir }
  | { t: 'deliver'; dir: Dir; pick: number }
  | { t: 'dup'; dir: Dir; pick: number }
  | { t: 'flip'; dir: Dir; pick: number; bit: number }
  | { t: 'drop'; dir: Dir; pick: number }
  | { t: 'restart' }
  | { t: 'bobStarts' };

const dir = fc.constantFrom<Dir>('ab', 'ba');
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('send' as const), dir }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('deliver' as const), dir, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dup' as const), dir, pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flip' as const), dir, pick: fc.nat(), bit: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), dir, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bobStarts' as const) }) },
);

async function refusedWithoutChange(receiver: TestDevice, sender: TestDevice, wire: Uint8Array): Promise<void> {
  const before = receiver.store.dump();
  const err = await decryptMessage(receiver.ctx, receiver.store, receiver.self, addressOf(sender), wire).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'a duplicate or corrupted message must be refused').toBeInstanceOf(ProtocolError);
  expect(receiver.store.dump()).toBe(before);
}

describe('random two-party conversations', () => {
  it('deliver every message exactly once; refuse duplicates and bit flips without a state change', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 70 }), fc.array(fc.nat(), { maxLength: 200 }), async (actions, flushOrder) => {
        const alice = await makeDevice('alice', 1);
        const bob = await makeDevice('bob', 2);
        introduce(alice, bob);
        await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
        let bobHasSession = false;
        let counter = 0;
        const flight: Record<Dir, InFlight[]> = { ab: [], ba: [] };
        const ends = (d: Dir): [TestDevice, TestDevice] => (d === 'ab' ? [alice, bob] : [bob, alice]);

        const deliver = async (d: Dir, m: InFlight): Promise<void> => {
          const [from, to] = ends(d);
          const r = await decryptMessage(to.ctx, to.store, to.self, addressOf(from), m.wire);
          expect(fromUtf8(r.plaintext)).toBe(m.text);
          m.delivered = true;
          // The same bytes again, at once: the message key is gone, whichever path decrypted it.
          await refusedWithoutChange(to, from, m.wire);
          if (d === 'ab') bobHasSession = true;
        };

        for (const a of actions) {
          if (a.t === 'send') {
            if (a.dir === 'ba' && !bobHasSession) continue;
            const [from, to] = ends(a.dir);
            const text = JSON.stringify({ v: 1, n: counter++, dir: a.dir });
            const { wire } = await encryptMessage(from.ctx, from.store, addressOf(to), utf8(text));
            flight[a.dir].push({ wire, text, delivered: false });
          } else if (a.t === 'bobStarts') {
            if (bobHasSession) continue;
            await startSession(bob.ctx, bob.store, bob.self, alice.bundle);
            bobHasSession = true;
          } else if (a.t === 'restart') {
            alice.store = MemoryProtocolStore.restore(alice.store.dump());
            bob.store = MemoryProtocolStore.restore(bob.store.dump());
          } else {
            const pending = flight[a.dir].filter((m) => !m.delivered);
            const done = flight[a.dir].filter((m) => m.delivered);
            const [from, to] = ends(a.dir);
            if (a.t === 'deliver' && pending.length) await deliver(a.dir, pending[a.pick % pending.length]!);
            else if (a.t === 'dup' && done.length) await refusedWithoutChange(to, from, done[a.pick % done.length]!.wire);
            else if (a.t === 'drop' && pending.length) flight[a.dir].splice(flight[a.dir].indexOf(pending[a.pick % pending.length]!), 1);
            else if (a.t === 'flip' && flight[a.dir].length) {
              const m = flight[a.dir][a.pick % flight[a.dir].length]!;
              const wire = m.wire.slice();
              const bit = a.bit % (wire.length * 8);
              wire[bit >> 3]! ^= 1 << (bit & 7);
              await refusedWithoutChange(to, from, wire);
            }
          }
        }
        // Whatever was neither delivered nor dropped arrives late, in a random order, and decrypts once.
        const rest = (['ab', 'ba'] as Dir[]).flatMap((d) => flight[d].filter((m) => !m.delivered).map((m) => [d, m] as const));
        for (let i = rest.length - 1; i > 0; i--) {
          const j = (flushOrder[i] ?? 0) % (i + 1);
          [rest[i], rest[j]] = [rest[j]!, rest[i]!];
        }
        // A's messages first create B's session if none was delivered yet; order within that is free.
        for (const [d, m] of rest.filter(([d]) => d === 'ab')) await deliver(d, m);
        for (const [d, m] of rest.filter(([d]) => d === 'ba')) await deliver(d, m);
        for (const d of ['ab', 'ba'] as Dir[]) for (const m of flight[d]) expect(m.delivered).toBe(true);
      }),
      { numRuns: 40 },
    );
  }, 240_000);

  it(`refuses a message needing more than MAX_SKIP (${MAX_SKIP}) skipped keys, accepts exactly MAX_SKIP`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), async (overLimit) => {
        const alice = await makeDevice('alice', 1);
        const bob = await makeDevice('bob', 2);
        introduce(alice, bob);
        await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
        const first = await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{"n":0}'));
        await decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), first.wire);
        // Bob's next expected n is 1; skipping MAX_SKIP keys reaches n = 1 + MAX_SKIP.
        const lost = MAX_SKIP + (overLimit ? 1 : 0);
        for (let i = 0; i < lost; i++) await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{}'));
        const late = await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{"n":"late"}'));
        if (overLimit) {
          const before = bob.store.dump();
          await expect(decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), late.wire)).rejects.toMatchObject({ code: 'too_many_skipped' });
          expect(bob.store.dump()).toBe(before);
        } else {
          const r = await decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), late.wire);
          expect(fromUtf8(r.plaintext)).toBe('{"n":"late"}');
        }
      }),
      { numRuns: 4 },
    );
  }, 120_000);
});
