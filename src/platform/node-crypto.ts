/**
 * A CryptoProvider on node:crypto's synchronous APIs (OpenSSL underneath). It gives the same bytes
 * as nobleProvider and webCryptoProvider() (test/platform/node-crypto.test.ts checks this), without
 * WebCrypto's per-call key import and its hop to the thread pool (about 0.1 ms per call). Node-only,
 * so it lives outside src/protocol, which must run in browsers too: a Node client or the bridge
 * passes it in. It also brings ML-KEM-768 in WebAssembly (ml-kem-node.ts) and a native Argon2id, each giving the same bytes as the protocol's portable defaults.
 */
import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  sign,
  verify,
} from 'node:crypto';
import { type Algorithm, type Version, hashRaw } from '@node-rs/argon2';
import type { Argon2id, CryptoProvider, MlKem768 } from '../protocol/primitives.js';
import { nodeMlKem768 } from './ml-kem-node.js';
import { lazyMlKem768 } from './ml-kem-wasm.js';

const KEY_BYTES = 32;
const HASH_BYTES = 32;
const GCM_KEY_BYTES = 32;
const GCM_NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;

// DER headers that wrap a raw 32-byte private key (RFC 8410 PKCS#8): the fallback import path.
const X25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

type Curve = 'X25519' | 'Ed25519';
const PKCS8_PREFIX: Record<Curve, Uint8Array> = { X25519: X25519_PKCS8_PREFIX, Ed25519: ED25519_PKCS8_PREFIX };

function checkLength(name: string, b: Uint8Array, length: number): void {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  if (b.length !== length) throw new RangeError(`${name} must be ${length} bytes, got ${b.length}`);
}

function checkBytes(name: string, b: Uint8Array): void {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
}

function base64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * Key import. OpenSSL 3's DER decoders cost about 0.8 ms per PKCS#8 key and 0.1-0.2 ms per SPKI key
 * on this class of machine, against 0.01-0.05 ms for a JWK, which Node hands to
 * EVP_PKEY_new_raw_*_key directly; that is most of an X25519 or a signature. So keys go in as
 * JWKs. Node requires a private OKP JWK to carry a string `x` but builds the key from `d` alone
 * (the public half is computed); should a later Node check `x`, the probe below sees it and
 * private keys go in as PKCS#8 instead. A JWK's `d` is a JS string, which cannot be wiped; the
 * PKCS#8 buffer is.
 */
let jwkPrivateImportWorks: boolean | undefined;

/** How private keys reach OpenSSL: 'auto' is JWK where this Node allows it, PKCS#8 otherwise. */
export type PrivateKeyImport = 'auto' | 'pkcs8';

/** Whether this Node builds a private OKP key from `d` alone; exported for the test. */
export function probeJwkPrivateImport(): boolean {
  try {
    const seed = new Uint8Array(32).fill(7);
    const viaJwk = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: base64url(seed), x: '' }, format: 'jwk' });
    const viaDer = privateKeyFromPkcs8('X25519', seed);
    return viaJwk.export({ format: 'jwk' }).x === viaDer.export({ format: 'jwk' }).x;
  } catch {
    return false;
  }
}

function privateKeyFromPkcs8(crv: Curve, raw: Uint8Array): KeyObject {
  const prefix = PKCS8_PREFIX[crv];
  const der = new Uint8Array(prefix.length + raw.length);
  der.set(prefix);
  der.set(raw, prefix.length);
  try {
    return createPrivateKey({ key: der as Buffer, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function privateKey(mode: PrivateKeyImport, crv: Curve, raw: Uint8Array): KeyObject {
  if (mode === 'auto' && (jwkPrivateImportWorks ??= probeJwkPrivateImport())) {
    return createPrivateKey({ key: { kty: 'OKP', crv, d: base64url(raw), x: '' }, format: 'jwk' });
  }
  return privateKeyFromPkcs8(crv, raw);
}

/**
 * Imported keys, keyed by the caller's array object, so the same key used again (EK in
 * four DHs, a ratchet key for its public half and then its DH, IK signing two prekeys) is imported
 * once: an import costs OpenSSL a scalar multiplication (it computes the public half), which is as
 * much as the DH itself. An entry checks the array still holds the bytes it was made from (a
 * wiped or reused array is imported afresh) and lives no longer than the caller's array does; the
 * map is weak, so it is bounded by the arrays the caller keeps alive.
 */
interface CachedKey {
  readonly crv: Curve;
  readonly bytes: Uint8Array;
  readonly key: KeyObject;
}

function sameKeyBytes(a: Uint8Array, b: Uint8Array): boolean {
  let d = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** The cached KeyObject of `raw` on `crv`, made by `make` on a miss (or when the array's bytes changed). */
function cachedKey(cache: WeakMap<Uint8Array, CachedKey>, crv: Curve, raw: Uint8Array, make: () => KeyObject): KeyObject {
  const hit = cache.get(raw);
  if (hit && hit.crv === crv && sameKeyBytes(hit.bytes, raw)) return hit.key;
  const key = make();
  cache.set(raw, { crv, bytes: new Uint8Array(raw), key }); // a copy even when `raw` is a Buffer
  return key;
}

function publicKey(crv: Curve, raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: base64url(raw) }, format: 'jwk' });
}

/** The raw public key of a private KeyObject (its JWK `x`). */
function rawPublicOf(priv: KeyObject): Uint8Array {
  const x = priv.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('node:crypto exported no public key');
  return plain(Buffer.from(x, 'base64url'));
}

/**
 * A plain Uint8Array over a Buffer's bytes: a Buffer's slice() is a view, not a copy, so callers'
 * `.slice()` would alias. Small Buffers share Node's allocation pool, so a pooled one is copied
 * out rather than exposed; a Buffer that owns its whole ArrayBuffer is re-viewed without a copy.
 */
function plain(b: Uint8Array | ArrayBuffer): Uint8Array {
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return new Uint8Array(b.buffer, 0, b.byteLength);
  return new Uint8Array(b);
}

/**
 * Native Argon2id: @node-rs/argon2 (RustCrypto's argon2 crate, prebuilt, SIMD chosen at run time),
 * on the libuv thread pool so the event loop stays free. Chosen by measurement (bench:crypto): at
 * libsignal's PinHash parameters it takes about 0.45x the time of libsignal's own Argon2id, where
 * the `argon2` package the server hashes passwords with (the C reference, SSE2) takes about 1.2x.
 */
// The package declares these as const enums, which have no run-time object to read them from.
const ARGON2ID = 2 as Algorithm;
const V0X13 = 1 as Version;

export const nativeArgon2id: Argon2id = async (password, salt, mKib, t, p, length) => {
  checkBytes('password', password);
  checkBytes('salt', salt);
  const out = await hashRaw(password, { algorithm: ARGON2ID, version: V0X13, memoryCost: mKib, timeCost: t, parallelism: p, outputLen: length, salt });
  try {
    return new Uint8Array(out);
  } finally {
    out.fill(0);
  }
};

/** ML-KEM-768 that compiles its module on the first KEM operation, not when this file is imported. */
const lazyNodeKem: MlKem768 = lazyMlKem768(async () => nodeMlKem768());

/** A provider on node:crypto; `privateImport` exists so tests can run the PKCS#8 fallback too. */
export function makeNodeCryptoProvider(privateImport: PrivateKeyImport = 'auto'): CryptoProvider {
  const privates = new WeakMap<Uint8Array, CachedKey>();
  const publics = new WeakMap<Uint8Array, CachedKey>();
  const importPrivate = (crv: Curve, raw: Uint8Array): KeyObject => cachedKey(privates, crv, raw, () => privateKey(privateImport, crv, raw));
  // A peer's keys recur too: SPK_B in three DHs, EK_A in three, IK_B under two signatures.
  const importPublic = (crv: Curve, raw: Uint8Array): KeyObject => cachedKey(publics, crv, raw, () => publicKey(crv, raw));
  return {
    name: privateImport === 'auto' ? 'node' : 'node-pkcs8',
    mlKem768: lazyNodeKem,
    argon2id: nativeArgon2id,

    /** Throws when OpenSSL refuses the key pair, which includes an all-zero output. */
    async x25519(priv, pub) {
      checkLength('priv', priv, KEY_BYTES);
      checkLength('pub', pub, KEY_BYTES);
      return plain(diffieHellman({ privateKey: importPrivate('X25519', priv), publicKey: importPublic('X25519', pub) }));
    },

    async x25519Public(priv) {
      checkLength('priv', priv, KEY_BYTES);
      return rawPublicOf(importPrivate('X25519', priv));
    },

    async ed25519Public(seed) {
      checkLength('seed', seed, KEY_BYTES);
      return rawPublicOf(importPrivate('Ed25519', seed));
    },

    async ed25519Sign(seed, msg) {
      checkLength('seed', seed, KEY_BYTES);
      checkBytes('msg', msg);
      return plain(sign(null, msg, importPrivate('Ed25519', seed)));
    },

    async ed25519Verify(pub, msg, sig) {
      checkBytes('msg', msg);
      if (!(pub instanceof Uint8Array) || !(sig instanceof Uint8Array) || pub.length !== KEY_BYTES || sig.length !== 64) return false;
      try {
        return verify(null, msg, importPublic('Ed25519', pub), sig);
      } catch {
        return false;
      }
    },

    async sha512(data) {
      checkBytes('data', data);
      return plain(createHash('sha512').update(data).digest());
    },

    async hmacSha256(key, data) {
      checkBytes('key', key);
      checkBytes('data', data);
      return plain(createHmac('sha256', key).update(data).digest());
    },

    /**
     * RFC 5869 on createHmac: at the protocol's lengths (32 to 64 bytes) two or three HMACs cost
     * a fifth to a half of hkdfSync, which fetches OpenSSL's KDF afresh on every call.
     */
    async hkdfSha256(salt, ikm, info, length) {
      checkBytes('salt', salt);
      checkBytes('ikm', ikm);
      checkBytes('info', info);
      if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_BYTES) throw new RangeError(`length must be 0..${255 * HASH_BYTES}`);
      const prk = createHmac('sha256', salt).update(ikm).digest();
      const out = new Uint8Array(length);
      let block: Buffer = Buffer.alloc(0);
      try {
        for (let i = 1, o = 0; o < length; i++, o += HASH_BYTES) {
          block = createHmac('sha256', prk).update(block).update(info).update(Uint8Array.of(i)).digest();
          out.set(block.subarray(0, Math.min(HASH_BYTES, length - o)), o);
        }
        return out;
      } finally {
        prk.fill(0);
        block.fill(0);
      }
    },

    async aesGcmSeal(key, nonce, pt, ad) {
      checkLength('key', key, GCM_KEY_BYTES);
      checkLength('nonce', nonce, GCM_NONCE_BYTES);
      checkBytes('pt', pt);
      checkBytes('ad', ad);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
      cipher.setAAD(ad);
      const head = cipher.update(pt);
      const tail = cipher.final();
      const tag = cipher.getAuthTag();
      const out = new Uint8Array(head.length + tail.length + tag.length);
      out.set(head);
      out.set(tail, head.length);
      out.set(tag, head.length + tail.length);
      return out;
    },

    /** Returns null when the tag does not verify (or the input is shorter than a tag). */
    async aesGcmOpen(key, nonce, ct, ad) {
      checkLength('key', key, GCM_KEY_BYTES);
      checkLength('nonce', nonce, GCM_NONCE_BYTES);
      checkBytes('ct', ct);
      checkBytes('ad', ad);
      if (ct.length < GCM_TAG_BYTES) return null;
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
      decipher.setAuthTag(ct.subarray(ct.length - GCM_TAG_BYTES));
      decipher.setAAD(ad);
      const head = decipher.update(ct.subarray(0, ct.length - GCM_TAG_BYTES));
      let tail: Uint8Array;
      try {
        tail = decipher.final();
      } catch {
        head.fill(0);
        return null;
      }
      const out = new Uint8Array(head.length + tail.length);
      out.set(head);
      out.set(tail, head.length);
      head.fill(0);
      return out;
    },
  };
}

export const nodeCryptoProvider: CryptoProvider = makeNodeCryptoProvider();
