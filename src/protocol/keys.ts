/** SPEC §2: key types, key generation and the three signed structures. */
import { concat, toHex, u16, u32, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { DERIVED_KEY_MEMO_ENTRIES, MAX_USER_ID_BYTES, NO_OPK_ID } from './limits.js';
import { BoundedMemo } from './memo.js';
import { type CryptoProvider, type RandomSource, kemKeyPair, verifySignature } from './primitives.js';

export const KEY_TYPE_X25519 = 0x05;
export const KEY_TYPE_ED25519 = 0x06;
export const KEY_TYPE_MLKEM768 = 0x08;

const DEVICE_CERT_LABEL = utf8('GCHAT-DEVICE-v1');
const SPK_LABEL = utf8('GCHAT-SPK-v1');
const PQPK_LABEL = utf8('GCHAT-PQPK-v1');

/** An Ed25519 key pair held by this device (AK or IK). */
export interface SigningKeyPair {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}
export interface X25519KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}
export interface SignedPrekey extends X25519KeyPair {
  readonly id: number;
  readonly signature: Uint8Array;
}
export interface OneTimePrekey extends X25519KeyPair {
  readonly id: number;
}
export interface PqPrekey {
  readonly id: number;
  /** The 64-byte ML-KEM decapsulation seed d || z. */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  readonly oneTime: boolean;
}

/** A user_id encoded as SPEC §2 puts it in signed structures and the AD: u16(len) || bytes. */
export function encodeUserId(userId: string): Uint8Array {
  const b = utf8(userId);
  if (b.length > MAX_USER_ID_BYTES) fail('bad_length', 'user_id longer than 65535 bytes');
  return concat(u16(b.length), b);
}

export function checkId(name: string, id: number, max = 0xffffffff): number {
  if (!Number.isInteger(id) || id < 0 || id > max) fail('bad_format', `${name} must be an integer in 0..${max}`);
  return id;
}

export function deviceCertBytes(userId: string, deviceId: number, ikPub: Uint8Array): Uint8Array {
  checkId('device_id', deviceId);
  return concat(DEVICE_CERT_LABEL, encodeUserId(userId), u32(deviceId), Uint8Array.of(KEY_TYPE_ED25519), ikPub);
}

export function spkSigBytes(spkId: number, spkPub: Uint8Array): Uint8Array {
  checkId('spk_id', spkId);
  return concat(SPK_LABEL, u32(spkId), Uint8Array.of(KEY_TYPE_X25519), spkPub);
}

export function pqpkSigBytes(pqpkId: number, pqpkPub: Uint8Array): Uint8Array {
  checkId('pqpk_id', pqpkId);
  return concat(PQPK_LABEL, u32(pqpkId), Uint8Array.of(KEY_TYPE_MLKEM768), pqpkPub);
}

export async function generateSigningKeyPair(c: CryptoProvider, random: RandomSource): Promise<SigningKeyPair> {
  const seed = random(32);
  return { seed, publicKey: await c.ed25519Public(seed) };
}

export async function generateX25519(c: CryptoProvider, random: RandomSource): Promise<X25519KeyPair> {
  const privateKey = random(32);
  return { privateKey, publicKey: await c.x25519Public(privateKey) };
}

export async function signDeviceCert(c: CryptoProvider, ak: SigningKeyPair, userId: string, deviceId: number, ikPub: Uint8Array): Promise<Uint8Array> {
  return c.ed25519Sign(ak.seed, deviceCertBytes(userId, deviceId, ikPub));
}

/** DeviceCerts that verified, by (AK, signed bytes, signature): only successes are kept. */
const verifiedCerts = new BoundedMemo<true>(DERIVED_KEY_MEMO_ENTRIES);

/** Verifies a DeviceCert; one that verified before (same AK, bytes and signature) is not checked again. */
export async function verifyDeviceCert(
  c: CryptoProvider,
  akPub: Uint8Array,
  userId: string,
  deviceId: number,
  ikPub: Uint8Array,
  cert: Uint8Array,
): Promise<boolean> {
  if (ikPub.length !== 32) return false;
  const signed = deviceCertBytes(userId, deviceId, ikPub);
  const key = `${toHex(akPub)}:${toHex(cert)}:${toHex(signed)}`;
  if (verifiedCerts.get(key)) return true;
  const ok = await verifySignature(c, akPub, signed, cert);
  if (ok) verifiedCerts.set(key, true);
  return ok;
}

export async function verifySpk(c: CryptoProvider, ikPub: Uint8Array, spkId: number, spkPub: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (spkPub.length !== 32) return false;
  return verifySignature(c, ikPub, spkSigBytes(spkId, spkPub), sig);
}

export async function verifyPqpk(c: CryptoProvider, ikPub: Uint8Array, pqpkId: number, pqpkPub: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (pqpkPub.length !== 1184) return false;
  return verifySignature(c, ikPub, pqpkSigBytes(pqpkId, pqpkPub), sig);
}

export async function generateSignedPrekey(c: CryptoProvider, random: RandomSource, ik: SigningKeyPair, id: number): Promise<SignedPrekey> {
  const kp = await generateX25519(c, random);
  return { id, ...kp, signature: await c.ed25519Sign(ik.seed, spkSigBytes(id, kp.publicKey)) };
}

export async function generateOneTimePrekeys(c: CryptoProvider, random: RandomSource, firstId: number, count: number): Promise<OneTimePrekey[]> {
  const out: OneTimePrekey[] = [];
  for (let i = 0; i < count; i++) {
    const id = checkId('opk_id', firstId + i, NO_OPK_ID - 1);
    out.push({ id, ...(await generateX25519(c, random)) });
  }
  return out;
}

export async function generatePqPrekey(c: CryptoProvider, random: RandomSource, ik: SigningKeyPair, id: number, oneTime: boolean): Promise<PqPrekey> {
  const { publicKey, seed } = await kemKeyPair(c, random(64));
  return { id, seed, publicKey, oneTime, signature: await c.ed25519Sign(ik.seed, pqpkSigBytes(id, publicKey)) };
}
