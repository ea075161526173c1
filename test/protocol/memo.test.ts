import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair, signDeviceCert, verifyDeviceCert } from '../../src/protocol/keys.js';
import { BoundedMemo } from '../../src/protocol/memo.js';
import { mont, nobleProvider as c, systemRandom } from '../../src/protocol/primitives.js';

describe('remembered derivations change no answer', () => {
  it('a DeviceCert that verified once still fails with another signature, AK, IK or user', async () => {
    const ak = await generateSigningKeyPair(c, systemRandom);
    const ik = await generateSigningKeyPair(c, systemRandom);
    const other = await generateSigningKeyPair(c, systemRandom);
    const cert = await signDeviceCert(c, ak, '@a:x', 1, ik.publicKey);
    expect(await verifyDeviceCert(c, ak.publicKey, '@a:x', 1, ik.publicKey, cert)).toBe(true);
    expect(await verifyDeviceCert(c, ak.publicKey, '@a:x', 1, ik.publicKey, cert)).toBe(true);
    const flipped = cert.slice();
    flipped[5]! ^= 1;
    expect(await verifyDeviceCert(c, ak.publicKey, '@a:x', 1, ik.publicKey, flipped)).toBe(false);
    expect(await verifyDeviceCert(c, other.publicKey, '@a:x', 1, ik.publicKey, cert)).toBe(false);
    expect(await verifyDeviceCert(c, ak.publicKey, '@a:x', 1, other.publicKey, cert)).toBe(false);
    expect(await verifyDeviceCert(c, ak.publicKey, '@a:x', 2, ik.publicKey, cert)).toBe(false);
    expect(await verifyDeviceCert(c, ak.publicKey, '@b:x', 1, ik.publicKey, cert)).toBe(false);
  });

  it('Mont(edpub) asked twice gives the same bytes', async () => {
    const { publicKey } = await generateSigningKeyPair(c, systemRandom);
    const want = mont(publicKey).slice();
    expect(mont(publicKey.slice())).toEqual(want);
  });

  it('BoundedMemo keeps at most its bound, dropping the least recently used', () => {
    const m = new BoundedMemo<number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.get('a');
    m.set('c', 3);
    expect([m.get('a'), m.get('b'), m.get('c'), m.size]).toEqual([1, undefined, 3, 2]);
  });
});
