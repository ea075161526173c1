import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeNodeCryptoProvider, nodeCryptoProvider, probeJwkPrivateImport } from '../../src/platform/node-crypto.js';
import { type CryptoProvider, dh, nobleProvider, webCryptoProvider } from '../../src/protocol/primitives.js';

// The PKCS#8 import path is the fallback for a Node that refuses the fast JWK one; both must agree.
const providers: CryptoProvider[] = [nodeCryptoProvider, makeNodeCryptoProvider('pkcs8'), nobleProvider, webCryptoProvider()];
const RUNS = { numRuns: 60 };

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const key32 = bytes(32, 32);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Each provider's result as hex, or 'throws'/'null', so a disagreement prints the three side by side. */
async function outcomes<T>(run: (c: CryptoProvider) => Promise<T>): Promise<string[]> {
  return Promise.all(
    providers.map(async (c) => {
      let out: T;
      try {
        out = await run(c);
      } catch {
        return 'throws';
      }
      if (!(out instanceof Uint8Array)) return String(out);
      // A Buffer here would make callers' .slice() alias secret bytes instead of copying them.
      expect(Object.getPrototypeOf(out), `${c.name} returns a plain Uint8Array`).toBe(Uint8Array.prototype);
      return hex(out);
    }),
  );
}

async function expectAgree<T>(run: (c: CryptoProvider) => Promise<T>): Promise<string> {
  const all = await outcomes(run);
  expect(all, providers.map((c) => c.name).join(' / ')).toEqual(all.map(() => all[0]));
  return all[0]!;
}

function le32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

describe('nodeCryptoProvider agrees byte for byte with noble and WebCrypto', () => {
  it('x25519 on random keys (any 32 bytes, high bit included)', async () => {
    await fc.assert(fc.asyncProperty(key32, key32, async (priv, pub) => {
      expect(await expectAgree((c) => c.x25519(priv, pub))).not.toBe('throws');
    }), RUNS);
  });

  it('x25519 with a low-order point (canonical or not, high bit set or not) fails on every provider', async () => {
    const p = 2n ** 255n - 19n;
    const high = 2n ** 255n;
    // u = 0, 1, -1 and the two points of order 8 (RFC 7748 §7 / Bernstein's list), plus encodings of them >= p.
    const order8 = [
      325606250916557431795983626356110631294008115727848805560023387167927233504n,
      39382357235489614581723060781553021112529911719440698176882885853963445705823n,
    ];
    const lowOrder = [0n, 1n, p - 1n, ...order8, p, p + 1n, high, high + 1n, high + order8[0]!].map(le32);
    for (const pub of lowOrder) {
      const priv = crypto.getRandomValues(new Uint8Array(32));
      expect(await expectAgree((c) => c.x25519(priv, pub))).toBe('throws');
      for (const c of providers) await expect(dh(c, priv, pub)).rejects.toMatchObject({ code: 'zero_dh' });
    }
  });

  it('x25519Public and ed25519Public', async () => {
    await fc.assert(fc.asyncProperty(key32, async (k) => {
      const x = await expectAgree((c) => c.x25519Public(k));
      expect(x).toHaveLength(64);
      // The public key is X25519(k, 9): the same as a DH with the base point.
      expect(x).toBe(await expectAgree((c) => c.x25519(k, le32(9n))));
      expect(await expectAgree((c) => c.ed25519Public(k))).toHaveLength(64);
    }), RUNS);
  });

  it('ed25519Sign, and ed25519Verify on valid, altered and random signatures', async () => {
    await fc.assert(fc.asyncProperty(key32, bytes(0, 300), fc.nat(), async (seed, msg, at) => {
      const sigHex = await expectAgree((c) => c.ed25519Sign(seed, msg));
      const sig = Uint8Array.from(Buffer.from(sigHex, 'hex'));
      const pub = await nobleProvider.ed25519Public(seed);
      expect(await expectAgree((c) => c.ed25519Verify(pub, msg, sig))).toBe('true');
      const badSig = sig.slice();
      badSig[at % 64]! ^= 1 << (at % 8);
      expect(await expectAgree((c) => c.ed25519Verify(pub, msg, badSig))).toBe('false');
      const badMsg = Uint8Array.of(...msg, at & 0xff);
      expect(await expectAgree((c) => c.ed25519Verify(pub, badMsg, sig))).toBe('false');
    }), RUNS);
    await fc.assert(fc.asyncProperty(key32, bytes(0, 64), bytes(64, 64), async (pub, msg, sig) => {
      expect(await expectAgree((c) => c.ed25519Verify(pub, msg, sig))).toBe('false');
    }), RUNS);
  });

  it('sha512', async () => {
    await fc.assert(fc.asyncProperty(bytes(0, 400), async (data) => {
      await expectAgree((c) => c.sha512(data));
    }), RUNS);
  });

  it('hmacSha256 (keys shorter and longer than the block; WebCrypto refuses an empty key)', async () => {
    await fc.assert(fc.asyncProperty(bytes(1, 160), bytes(0, 300), async (key, data) => {
      await expectAgree((c) => c.hmacSha256(key, data));
    }), RUNS);
  });

  it('hkdfSha256 at the protocol lengths 32, 44, 64 and at other lengths', async () => {
    await fc.assert(fc.asyncProperty(bytes(0, 64), bytes(0, 96), bytes(0, 40), fc.constantFrom(32, 44, 64, 1, 33, 255), async (salt, ikm, info, length) => {
      const out = await expectAgree((c) => c.hkdfSha256(salt, ikm, info, length));
      expect(out).toHaveLength(2 * length);
    }), RUNS);
  });

  it('aesGcmSeal, with empty and non-empty AD and plaintext', async () => {
    await fc.assert(fc.asyncProperty(key32, bytes(12, 12), bytes(0, 300), fc.oneof(bytes(0, 0), bytes(1, 200)), async (key, nonce, pt, ad) => {
      const ct = await expectAgree((c) => c.aesGcmSeal(key, nonce, pt, ad));
      expect(ct).toHaveLength(2 * (pt.length + 16));
      const sealed = Uint8Array.from(Buffer.from(ct, 'hex'));
      expect(await expectAgree((c) => c.aesGcmOpen(key, nonce, sealed, ad))).toBe(hex(pt));
    }), RUNS);
  });

  it('aesGcmOpen returns null on every provider when the tag does not verify', async () => {
    await fc.assert(fc.asyncProperty(key32, bytes(12, 12), bytes(0, 100), fc.oneof(bytes(0, 0), bytes(1, 64)), fc.nat(), async (key, nonce, pt, ad, at) => {
      const ct = await nobleProvider.aesGcmSeal(key, nonce, pt, ad);
      const flipped = ct.slice();
      flipped[at % ct.length]! ^= 1 << (at % 8);
      expect(await expectAgree((c) => c.aesGcmOpen(key, nonce, flipped, ad))).toBe('null');
      const otherAd = Uint8Array.of(...ad, 0);
      expect(await expectAgree((c) => c.aesGcmOpen(key, nonce, ct, otherAd))).toBe('null');
      const otherNonce = nonce.slice();
      otherNonce[at % 12]! ^= 0x80;
      expect(await expectAgree((c) => c.aesGcmOpen(key, otherNonce, ct, ad))).toBe('null');
      expect(await expectAgree((c) => c.aesGcmOpen(key, nonce, ct.subarray(0, at % 16), ad))).toBe('null');
      expect(await expectAgree((c) => c.aesGcmOpen(key, nonce, ct.subarray(0, ct.length - 1), ad))).toBe('null');
    }), RUNS);
  });
});

describe('nodeCryptoProvider input checks', () => {
  it('refuses keys and nonces of the wrong length, naming the argument', async () => {
    const k = new Uint8Array(32);
    await expect(nodeCryptoProvider.x25519(new Uint8Array(31), k)).rejects.toThrow(/priv/);
    await expect(nodeCryptoProvider.ed25519Sign(new Uint8Array(33), k)).rejects.toThrow(/seed/);
    await expect(nodeCryptoProvider.aesGcmSeal(new Uint8Array(16), new Uint8Array(12), k, k)).rejects.toThrow(/key/);
    await expect(nodeCryptoProvider.aesGcmOpen(k, new Uint8Array(16), k, k)).rejects.toThrow(/nonce/);
  });

  it('leaves its inputs unchanged', async () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    const data = Uint8Array.from({ length: 50 }, (_, i) => 255 - i);
    const before = hex(key) + hex(data);
    await nodeCryptoProvider.x25519(key, key);
    await nodeCryptoProvider.ed25519Sign(key, data);
    await nodeCryptoProvider.aesGcmSeal(key, data.subarray(0, 12), data, data);
    await nodeCryptoProvider.hkdfSha256(data, key, data, 64);
    expect(hex(key) + hex(data)).toBe(before);
  });

  it('reuses an imported key only while the same array still holds the same bytes', async () => {
    await fc.assert(fc.asyncProperty(key32, key32, fc.nat(), async (k, pub, at) => {
      const priv = k.slice();
      expect(await nodeCryptoProvider.x25519Public(priv)).toEqual(await nobleProvider.x25519Public(k));
      expect(await nodeCryptoProvider.x25519(priv, pub)).toEqual(await nobleProvider.x25519(k, pub));
      // The same array as an Ed25519 seed: another curve, another key.
      expect(await nodeCryptoProvider.ed25519Public(priv)).toEqual(await nobleProvider.ed25519Public(k));
      priv[at % 32]! ^= 1 << (at % 8);
      expect(await nodeCryptoProvider.x25519Public(priv)).toEqual(await nobleProvider.x25519Public(priv));
      expect(await nodeCryptoProvider.ed25519Sign(priv, pub)).toEqual(await nobleProvider.ed25519Sign(priv, pub));
      priv.fill(0);
      expect(await nodeCryptoProvider.x25519Public(priv)).toEqual(await nobleProvider.x25519Public(new Uint8Array(32)));
      // A Buffer's slice() is a view; the cache must still notice the change.
      const buf = Buffer.from(k);
      expect(await nodeCryptoProvider.x25519Public(buf)).toEqual(await nobleProvider.x25519Public(k));
      buf[0]! ^= 0x40;
      expect(await nodeCryptoProvider.x25519Public(buf)).toEqual(await nobleProvider.x25519Public(Uint8Array.from(buf)));
    }), { numRuns: 30 });
  });

  it('imports private keys through the fast JWK path on this Node', () => {
    expect(nodeCryptoProvider.name).toBe('node');
    expect(probeJwkPrivateImport()).toBe(true);
  });
});
