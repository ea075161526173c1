/**
 * SPEC §1 primitives behind one provider seam. The default provider uses the platform's WebCrypto
 * (browser and Node) with @noble fallbacks; a faster synchronous provider can be passed in where
 * node:crypto exists (src/platform/node-crypto.ts). ML-KEM-768 and Argon2id have no native
 * implementation in WebCrypto or Node's OpenSSL: the defaults here are @noble/post-quantum and
 * hash-wasm, and a provider may bring faster ones (optional members below) that give the same bytes.
 */
import { invert } from '@noble/curves/abstract/modular.js';
import { ed25519, x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { gcm } from '@noble/ciphers/aes.js';
import { concat, equalBytes, isAllZero, toHex } from './bytes.js';
import { fail } from './errors.js';
import { DERIVED_KEY_MEMO_ENTRIES } from './limits.js';
import { BoundedMemo } from './memo.js';

/** The operations a platform may accelerate. All take and return fresh Uint8Arrays. */
export interface CryptoProvider {
  readonly name: string;
  x25519(priv: Uint8Array, pub: Uint8Array): Promise<Uint8Array>;
  x25519Public(priv: Uint8Array): Promise<Uint8Array>;
  ed25519Public(seed: Uint8Array): Promise<Uint8Array>;
  ed25519Sign(seed: Uint8Array, msg: Uint8Array): Promise<Uint8Array>;
  /** Plain RFC 8032 verification; the strict encoding checks of SPEC §1 are made before it is called. */
  ed25519Verify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean>;
  sha512(data: Uint8Array): Promise<Uint8Array>;
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  hkdfSha256(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, ad: Uint8Array): Promise<Uint8Array>;
  /** Returns null when the tag does not verify. */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, ad: Uint8Array): Promise<Uint8Array | null>;
  /** A faster ML-KEM-768 than nobleMlKem768 (src/platform/ml-kem-wasm.ts); the same bytes. */
  readonly mlKem768?: MlKem768;
  /** A faster Argon2id than hash-wasm's (the Node provider's native one); the same bytes. */
  readonly argon2id?: Argon2id;
}

/**
 * ML-KEM-768 (FIPS 203) with its randomness passed in, so that every implementation gives the same
 * bytes and a scripted source reproduces the vectors. Inputs are checked by the callers below.
 */
export interface MlKem768 {
  readonly name: string;
  /** The encapsulation key of ML-KEM.KeyGen_internal(d, z), seed = d || z (64 bytes). */
  publicKey(seed: Uint8Array): Promise<Uint8Array>;
  /** ML-KEM.Encaps_internal(ek, m). */
  encapsulate(ek: Uint8Array, m: Uint8Array): Promise<{ ct: Uint8Array; ss: Uint8Array }>;
  /** ML-KEM.Decaps_internal with the decapsulation key of `seed`. */
  decapsulate(seed: Uint8Array, ct: Uint8Array): Promise<Uint8Array>;
}

/** RFC 9106 Argon2id, version 0x13, empty secret and associated data; `length` bytes out. */
export type Argon2id = (password: Uint8Array, salt: Uint8Array, mKib: number, t: number, p: number, length: number) => Promise<Uint8Array>;

/** Pure-JS ML-KEM-768: works everywhere, about ten times slower than the WebAssembly one. */
export const nobleMlKem768: MlKem768 = {
  name: '@noble/post-quantum',
  publicKey: async (seed) => ml_kem768.keygen(seed).publicKey,
  async encapsulate(ek, m) {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(ek, m);
    return { ct: cipherText, ss: sharedSecret };
  },
  async decapsulate(seed, ct) {
    const { secretKey } = ml_kem768.keygen(seed);
    try {
      return ml_kem768.decapsulate(ct, secretKey);
    } finally {
      secretKey.fill(0);
    }
  },
};

/** A source of random bytes; tests pass a scripted one. */
export type RandomSource = (length: number) => Uint8Array;

export const systemRandom: RandomSource = (length) => {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call.
  for (let o = 0; o < length; o += 65536) globalThis.crypto.getRandomValues(out.subarray(o, Math.min(length, o + 65536)));
  return out;
};

/** Pure-JS provider: works everywhere, slowest. */
export const nobleProvider: CryptoProvider = {
  name: 'noble',
  x25519: async (priv, pub) => nobleX25519.getSharedSecret(priv, pub),
  x25519Public: async (priv) => nobleX25519.getPublicKey(priv),
  ed25519Public: async (seed) => ed25519.getPublicKey(seed),
  ed25519Sign: async (seed, msg) => ed25519.sign(msg, seed),
  ed25519Verify: async (pub, msg, sig) => {
    try {
      return ed25519.verify(sig, msg, pub, { zip215: false });
    } catch {
      return false;
    }
  },
  sha512: async (data) => sha512(data),
  hmacSha256: async (key, data) => hmac(sha256, key, data),
  hkdfSha256: async (salt, ikm, info, length) => hkdf(sha256, ikm, salt, info, length),
  aesGcmSeal: async (key, nonce, pt, ad) => gcm(key, nonce, ad).encrypt(pt),
  aesGcmOpen: async (key, nonce, ct, ad) => {
    try {
      return gcm(key, nonce, ad).decrypt(ct);
    } catch {
      return null;
    }
  },
};

const X25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

function b64urlToBytes(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * WebCrypto provider (Chromium, Node 20): native AES-GCM, HMAC, HKDF, SHA-512, and X25519/Ed25519
 * where the runtime has them (probed once; noble otherwise).
 */
export function webCryptoProvider(subtle: SubtleCrypto = globalThis.crypto.subtle): CryptoProvider {
  const buf = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;
  let curves: Promise<boolean> | undefined;
  const hasCurves = (): Promise<boolean> =>
    (curves ??= (async () => {
      try {
        const k = await subtle.importKey('pkcs8', buf(concat(X25519_PKCS8_PREFIX, new Uint8Array(32).fill(7))), { name: 'X25519' }, true, ['deriveBits']);
        await subtle.exportKey('jwk', k);
        await subtle.importKey('pkcs8', buf(concat(ED25519_PKCS8_PREFIX, new Uint8Array(32).fill(7))), { name: 'Ed25519' }, true, ['sign']);
        return true;
      } catch {
        return false;
      }
    })());
  const publicFromPkcs8 = async (prefix: Uint8Array, alg: string, priv: Uint8Array, usage: KeyUsage): Promise<Uint8Array> => {
    const k = await subtle.importKey('pkcs8', buf(concat(prefix, priv)), { name: alg }, true, [usage]);
    const jwk = await subtle.exportKey('jwk', k);
    return b64urlToBytes(jwk.x!);
  };
  return {
    name: 'webcrypto',
    async x25519(priv, pub) {
      if (!(await hasCurves())) return nobleProvider.x25519(priv, pub);
      const sk = await subtle.importKey('pkcs8', buf(concat(X25519_PKCS8_PREFIX, priv)), { name: 'X25519' }, false, ['deriveBits']);
      const pk = await subtle.importKey('raw', buf(pub), { name: 'X25519' }, false, []);
      return new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pk } as unknown as EcdhKeyDeriveParams, sk, 256));
    },
    async x25519Public(priv) {
      if (!(await hasCurves())) return nobleProvider.x25519Public(priv);
      return publicFromPkcs8(X25519_PKCS8_PREFIX, 'X25519', priv, 'deriveBits');
    },
    async ed25519Public(seed) {
      if (!(await hasCurves())) return nobleProvider.ed25519Public(seed);
      return publicFromPkcs8(ED25519_PKCS8_PREFIX, 'Ed25519', seed, 'sign');
    },
    async ed25519Sign(seed, msg) {
      if (!(await hasCurves())) return nobleProvider.ed25519Sign(seed, msg);
      const k = await subtle.importKey('pkcs8', buf(concat(ED25519_PKCS8_PREFIX, seed)), { name: 'Ed25519' }, false, ['sign']);
      return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, k, buf(msg)));
    },
    async ed25519Verify(pub, msg, sig) {
      if (!(await hasCurves())) return nobleProvider.ed25519Verify(pub, msg, sig);
      try {
        const k = await subtle.importKey('raw', buf(pub), { name: 'Ed25519' }, false, ['verify']);
        return await subtle.verify({ name: 'Ed25519' }, k, buf(sig), buf(msg));
      } catch {
        return false;
      }
    },
    sha512: async (data) => new Uint8Array(await subtle.digest('SHA-512', buf(data))),
    async hmacSha256(key, data) {
      const k = await subtle.importKey('raw', buf(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      return new Uint8Array(await subtle.sign('HMAC', k, buf(data)));
    },
    async hkdfSha256(salt, ikm, info, length) {
      const k = await subtle.importKey('raw', buf(ikm), 'HKDF', false, ['deriveBits']);
      return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: buf(salt), info: buf(info) }, k, length * 8));
    },
    async aesGcmSeal(key, nonce, pt, ad) {
      const k = await subtle.importKey('raw', buf(key), 'AES-GCM', false, ['encrypt']);
      return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: buf(nonce), additionalData: buf(ad), tagLength: 128 }, k, buf(pt)));
    },
    async aesGcmOpen(key, nonce, ct, ad) {
      try {
        const k = await subtle.importKey('raw', buf(key), 'AES-GCM', false, ['decrypt']);
        return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: buf(nonce), additionalData: buf(ad), tagLength: 128 }, k, buf(ct)));
      } catch {
        return null;
      }
    },
  };
}

let defaultProvider: CryptoProvider | undefined;
/** WebCrypto where present (every supported runtime), noble otherwise. */
export function defaultCrypto(): CryptoProvider {
  return (defaultProvider ??= globalThis.crypto?.subtle ? webCryptoProvider() : nobleProvider);
}

// ---- checked operations used by the protocol -------------------------------------------------

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function leToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

function bigintToLe32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

const montMemo = new BoundedMemo<Uint8Array>(DERIVED_KEY_MEMO_ENTRIES);

/**
 * SPEC §1 Mont(edpub): the X25519 form of an Ed25519 public key, remembered per key (the inversion
 * costs as much as a DH). The array returned is shared, so a provider caching imported keys by array
 * sees the same one again: callers must not modify it.
 */
export function mont(edPub: Uint8Array): Uint8Array {
  if (edPub.length !== 32) fail('bad_length', 'Ed25519 public key must be 32 bytes');
  const key = toHex(edPub);
  const hit = montMemo.get(key);
  if (hit) return hit;
  const yb = edPub.slice();
  yb[31]! &= 0x7f;
  const y = leToBigint(yb);
  if (y >= P || y === 1n) fail('bad_key', 'Ed25519 public key has no Montgomery form');
  // u = (1 + y) / (1 - y). Public input, so the variable-time inverse is fine (and ~2x faster than a^(p-2)).
  const u = bigintToLe32(((1n + y) * invert((1n - y + P) % P, P)) % P);
  montMemo.set(key, u);
  return u;
}

/** SPEC §1 MontPriv(seed): first 32 bytes of SHA-512(seed). */
export async function montPriv(c: CryptoProvider, seed: Uint8Array): Promise<Uint8Array> {
  if (seed.length !== 32) fail('bad_length', 'Ed25519 seed must be 32 bytes');
  return (await c.sha512(seed)).slice(0, 32);
}

/**
 * MontPriv of this device's own IK, one array per seed array for as long as the caller holds the
 * seed, so that a provider caching imported keys by array (node-crypto.ts) imports it once rather
 * than in every handshake. Not to be wiped by callers; re-derived if the seed's bytes change.
 */
const ownMontPriv = new WeakMap<Uint8Array, { seed: Uint8Array; priv: Uint8Array }>();
export async function identityMontPriv(c: CryptoProvider, seed: Uint8Array): Promise<Uint8Array> {
  const hit = ownMontPriv.get(seed);
  if (hit && equalBytes(hit.seed, seed)) return hit.priv;
  const priv = await montPriv(c, seed);
  ownMontPriv.set(seed, { seed: seed.slice(), priv });
  return priv;
}

/** X25519 with SPEC §1's rule: an all-zero output (or a key the platform refuses) is an error. */
export async function dh(c: CryptoProvider, priv: Uint8Array, pub: Uint8Array): Promise<Uint8Array> {
  if (priv.length !== 32 || pub.length !== 32) fail('bad_length', 'X25519 keys must be 32 bytes');
  let out: Uint8Array;
  try {
    out = await c.x25519(priv, pub);
  } catch {
    return fail('zero_dh', 'X25519 output is all zero');
  }
  if (isAllZero(out)) fail('zero_dh', 'X25519 output is all zero');
  return out;
}

/**
 * Ed25519 verification per SPEC §1: RFC 8032 §5.1.7, refusing S >= L and a non-canonical R before
 * the provider's equation check (providers differ on these encodings; this makes them agree).
 */
export async function verifySignature(c: CryptoProvider, pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (pub.length !== 32 || sig.length !== 64) return false;
  const s = leToBigint(sig.subarray(32));
  if (s >= L) return false;
  const rb = sig.slice(0, 32);
  const sign = rb[31]! >> 7;
  rb[31]! &= 0x7f;
  const ry = leToBigint(rb);
  if (ry >= P) return false;
  // y = ±1 have x = 0; with the sign bit set they are non-canonical encodings.
  if (sign === 1 && (ry === 1n || ry === P - 1n)) return false;
  return c.ed25519Verify(pub, msg, sig);
}

export const KEM_PUBLIC_BYTES = 1184;
export const KEM_CIPHERTEXT_BYTES = 1088;
export const KEM_SEED_BYTES = 64;

/** FIPS 203 §7.2 encapsulation-key check: every coefficient of t̂ below q = 3329. */
export function checkKemPublicKey(ek: Uint8Array): void {
  if (ek.length !== KEM_PUBLIC_BYTES) fail('bad_kem_key', 'ML-KEM-768 public key must be 1184 bytes');
  for (let i = 0; i < 1152; i += 3) {
    const a = ek[i]! | ((ek[i + 1]! & 0x0f) << 8);
    const b = (ek[i + 1]! >> 4) | (ek[i + 2]! << 4);
    if (a >= 3329 || b >= 3329) fail('bad_kem_key', 'ML-KEM-768 public key fails the modulus check');
  }
}

const kemOf = (c: CryptoProvider): MlKem768 => c.mlKem768 ?? nobleMlKem768;

export async function kemKeyPair(c: CryptoProvider, seed: Uint8Array): Promise<{ publicKey: Uint8Array; seed: Uint8Array }> {
  if (seed.length !== KEM_SEED_BYTES) fail('bad_length', 'ML-KEM seed must be 64 bytes');
  return { publicKey: await kemOf(c).publicKey(seed), seed };
}

/** Encapsulates to `ek` with 32 bytes of randomness m (FIPS 203 Encaps_internal). */
export async function kemEncapsulate(c: CryptoProvider, ek: Uint8Array, m: Uint8Array): Promise<{ ct: Uint8Array; ss: Uint8Array }> {
  checkKemPublicKey(ek);
  if (m.length !== 32) fail('bad_length', 'ML-KEM randomness must be 32 bytes');
  return kemOf(c).encapsulate(ek, m);
}

export async function kemDecapsulate(c: CryptoProvider, seed: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
  if (seed.length !== KEM_SEED_BYTES) fail('bad_length', 'ML-KEM seed must be 64 bytes');
  if (ct.length !== KEM_CIPHERTEXT_BYTES) fail('bad_length', 'ML-KEM-768 ciphertext must be 1088 bytes');
  return kemOf(c).decapsulate(seed, ct);
}

/** RFC 9106 Argon2id, version 0x13, empty secret and associated data: hash-wasm's (WebAssembly). */
export async function argon2id(password: Uint8Array, salt: Uint8Array, mKib: number, t: number, p: number, length = 32): Promise<Uint8Array> {
  // Loaded on first use: only the key backup needs it, and the web client keeps it off the first screen.
  const { argon2id: wasmArgon2id } = await import('hash-wasm');
  return wasmArgon2id({ password, salt, memorySize: mKib, iterations: t, parallelism: p, hashLength: length, outputType: 'binary' });
}

