import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_ARCHIVED_SESSIONS,
  MemoryProtocolStore,
  ProtocolError,
  decodeMessage,
  decryptMessage,
  deserializeSession,
  encryptMessage,
  fromUtf8,
  serializeSession,
  startSession,
  utf8,
} from '../../src/protocol/index.js';
import { addressOf, introduce, makeDevice } from '../helpers/protocol-devices.js';

async function pair() {
  const alice = await makeDevice('alice', 1);
  const bob = await makeDevice('bob', 2);
  introduce(alice, bob);
  return { alice, bob };
}

describe('sessions', () => {
  it('a conversation in both directions, with prekey messages until the first reply', async () => {
    const { alice, bob } = await pair();
    await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
    const m1 = await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{"t":"hi"}'));
    const m2 = await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{"t":"there"}'));
    expect([m1.type, m2.type]).toEqual([1, 1]);
    const r1 = await decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), m1.wire);
    expect(r1.newSession).toBe(true);
    // the OPK and the one-time PQPK are used up by the first prekey message
    expect(bob.store.oneTimePrekeys.size).toBe(0);
    expect(bob.store.pqPrekeys.size).toBe(0);
    expect(fromUtf8((await decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), m2.wire)).plaintext)).toBe('{"t":"there"}');
    const reply = await encryptMessage(bob.ctx, bob.store, addressOf(alice), utf8('{"t":"yo"}'));
    expect(reply.type).toBe(2);
    await decryptMessage(alice.ctx, alice.store, alice.self, addressOf(bob), reply.wire);
    expect((await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{}'))).type).toBe(2);
  });

  it('refuses a prekey message whose envelope names another sender', async () => {
    const { alice, bob } = await pair();
    await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
    const m = await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{}'));
    const before = bob.store.dump();
    await expect(decryptMessage(bob.ctx, bob.store, bob.self, { userId: 'mallory', deviceId: 1 }, m.wire)).rejects.toMatchObject({ code: 'sender_mismatch' });
    expect(bob.store.dump()).toBe(before);
  });

  it('refuses a prekey message whose AK differs from the pinned one (a key change is never silent)', async () => {
    const { alice, bob } = await pair();
    const impostor = await makeDevice('alice', 1);
    bob.store.pinnedAccountKeys.set('bob', bob.self.akPub);
    impostor.store.pinnedAccountKeys.set('bob', bob.self.akPub);
    await startSession(impostor.ctx, impostor.store, impostor.self, bob.bundle);
    const m = await encryptMessage(impostor.ctx, impostor.store, addressOf(bob), utf8('{}'));
    const before = bob.store.dump();
    await expect(decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), m.wire)).rejects.toMatchObject({ code: 'untrusted_identity' });
    expect(bob.store.dump()).toBe(before);
  });

  it('pins the AK on first use once the message decrypts', async () => {
    const { alice, bob } = await pair();
    bob.store.pinnedAccountKeys.clear();
    // what a client does with no pin: the server's published AK stands in until the message decrypts
    const published = alice.self.akPub;
    bob.store.accountKey = async (userId) => bob.store.pinnedAccountKeys.get(userId) ?? (userId === 'alice' ? published : null);
    await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
    const m = await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{}'));
    await decryptMessage(bob.ctx, bob.store, bob.self, addressOf(alice), m.wire);
    expect(bob.store.pinnedAccountKeys.get('alice')).toEqual(published);
  });

  it('refuses a bundle whose SPK signature does not verify, changing nothing', async () => {
    const { alice, bob } = await pair();
    const spkSig = bob.bundle.spkSig.slice();
    spkSig[5]! ^= 1;
    const before = alice.store.dump();
    await expect(startSession(alice.ctx, alice.store, alice.self, { ...bob.bundle, spkSig })).rejects.toMatchObject({ code: 'bad_signature' });
    expect(alice.store.dump()).toBe(before);
  });

  it(`keeps one active and at most ${MAX_ARCHIVED_SESSIONS} archived sessions per peer device`, async () => {
    const { alice, bob } = await pair();
    for (let i = 0; i < MAX_ARCHIVED_SESSIONS + 3; i++) await startSession(alice.ctx, alice.store, alice.self, { ...bob.bundle, opkId: null, opkPub: null });
    expect(await alice.store.loadSessions(addressOf(bob))).toHaveLength(1 + MAX_ARCHIVED_SESSIONS);
  });

  it('a session survives a JSON snapshot at any point; a corrupt snapshot is a ProtocolError', async () => {
    const { alice, bob } = await pair();
    await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
    const [s] = await alice.store.loadSessions(addressOf(bob));
    const json = serializeSession(s!);
    expect(serializeSession(deserializeSession(json))).toBe(json);
    const broken = JSON.parse(json);
    broken.rk = 'not base64!';
    expect(() => deserializeSession(JSON.stringify(broken))).toThrow(ProtocolError);
    expect(() => deserializeSession('{')).toThrow(ProtocolError);
  });

  it('any bytes given to decryptMessage are refused with a ProtocolError and change nothing', async () => {
    const { alice, bob } = await pair();
    await startSession(alice.ctx, alice.store, alice.self, bob.bundle);
    const real = (await encryptMessage(alice.ctx, alice.store, addressOf(bob), utf8('{}'))).wire;
    const before = bob.store.dump();
    await fc.assert(
      fc.asyncProperty(fc.nat(real.length), fc.uint8Array({ minLength: 0, maxLength: 64 }), fc.nat(real.length), async (at, junk, cut) => {
        // a real prekey message with a stretch overwritten, then cut short (or not)
        const wire = real.slice(0, Math.max(cut, 2));
        wire.set(junk.subarray(0, Math.max(0, wire.length - at)), Math.min(at, wire.length));
        // each run starts from the same saved state: a run whose overwrite left the message intact decrypts and moves on
        const store = MemoryProtocolStore.restore(before);
        const err = await decryptMessage(bob.ctx, store, bob.self, addressOf(alice), wire).then(
          () => null,
          (e: unknown) => e,
        );
        if (err === null) return;
        expect(err).toBeInstanceOf(ProtocolError);
        expect(store.dump()).toBe(before);
      }),
      { numRuns: 150 },
    );
  });

  it('a bundle with any field replaced by junk is refused with a ProtocolError, changing nothing', async () => {
    const { alice, bob } = await pair();
    const before = alice.store.dump();
    // Every signed field; the OPK is unsigned by design (X3DH), so only its length is checked.
    const fields = ['ikPub', 'deviceCert', 'spkPub', 'spkSig', 'opkPub', 'pqpkPub', 'pqpkSig'] as const;
    const junkFor = (field: (typeof fields)[number]) => fc.uint8Array({ maxLength: 1300 }).filter((j) => field !== 'opkPub' || j.length !== 32);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields).chain((f) => fc.tuple(fc.constant(f), junkFor(f))), fc.integer({ min: -1, max: 2 ** 32 }), async ([field, junk], id) => {
        const bundle = { ...bob.bundle, [field]: junk, ...(field === 'spkPub' ? { spkId: id } : {}) };
        await expect(startSession(alice.ctx, alice.store, alice.self, bundle)).rejects.toBeInstanceOf(ProtocolError);
        expect(alice.store.dump()).toBe(before);
      }),
      { numRuns: 150 },
    );
  });

  it('decoding any bytes fails only with ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), fc.constantFrom(0, 1, 2), (bytes, type) => {
        const wire = bytes.length >= 2 ? Uint8Array.from([1, type, ...bytes.subarray(2)]) : bytes;
        try {
          decodeMessage(wire);
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
