/**
 * SPEC §4: the Double Ratchet. Every step is a pure function from a state to a new state; the input
 * state is never modified, so a rejected message leaves the caller's state exactly as it was.
 *
 * The fresh DHs of a DH ratchet step is made lazily, at the next send (SPEC §4 allows either; the
 * bytes on the wire are the same). Receiving therefore draws no randomness on the normal path.
 */
import { concat, equalBytes, toHex, utf8, wipe } from './bytes.js';
import { fail } from './errors.js';
import type { X25519KeyPair } from './keys.js';
import { MAX_SKIP, MAX_SKIPPED_PER_CHAIN, MAX_SKIPPED_PER_SESSION, SKIPPED_KEY_TTL_MS } from './limits.js';
import { type CryptoProvider, type RandomSource, dh } from './primitives.js';
import { HEADER_BYTES, type Header, encodeHeader } from './wire.js';

const RATCHET_INFO = utf8('GCHAT-RATCHET-v1');
const MSG_INFO = utf8('GCHAT-MSG-v1');
const ZERO_SALT = new Uint8Array(32);
const CK_MSG = Uint8Array.of(0x01);
const CK_NEXT = Uint8Array.of(0x02);

export interface Chain {
  readonly key: Uint8Array;
  readonly n: number;
}

export interface SkippedKey {
  readonly mk: Uint8Array;
  readonly storedAt: number;
}

export interface RatchetState {
  readonly rootKey: Uint8Array;
  readonly dhs: X25519KeyPair;
  readonly dhr: Uint8Array | null;
  /** null: no sending chain yet (responder) or a DH step waiting for the next send. */
  readonly send: Chain | null;
  readonly recv: Chain | null;
  readonly pn: number;
  /** Stored message keys by `${hex(dh)}:${n}`, oldest first. Shared between states: copy before changing. */
  readonly skipped: ReadonlyMap<string, SkippedKey>;
}

export type ReceivePath = 'chain' | 'skipped_key' | 'dh_ratchet';

async function kdfRk(c: CryptoProvider, rk: Uint8Array, dhOut: Uint8Array): Promise<[Uint8Array, Uint8Array]> {
  const out = await c.hkdfSha256(rk, dhOut, RATCHET_INFO, 64);
  wipe(dhOut);
  return [out.slice(0, 32), out.slice(32, 64)];
}

async function kdfCk(c: CryptoProvider, ck: Uint8Array): Promise<[mk: Uint8Array, next: Uint8Array]> {
  return [await c.hmacSha256(ck, CK_MSG), await c.hmacSha256(ck, CK_NEXT)];
}

async function messageKeys(c: CryptoProvider, mk: Uint8Array): Promise<{ key: Uint8Array; nonce: Uint8Array }> {
  const out = await c.hkdfSha256(ZERO_SALT, mk, MSG_INFO, 44);
  return { key: out.subarray(0, 32), nonce: out.subarray(32, 44) };
}

/** Initiator: DHs a fresh pair (not EK), DHr = SPK_B, (RK, CKs) = KDF_RK(SK, DH(DHs, SPK_B)). */
export async function initInitiator(c: CryptoProvider, sk: Uint8Array, spkPub: Uint8Array, dhs: X25519KeyPair): Promise<RatchetState> {
  const [rootKey, ck] = await kdfRk(c, sk, await dh(c, dhs.privateKey, spkPub));
  return { rootKey, dhs, dhr: spkPub, send: { key: ck, n: 0 }, recv: null, pn: 0, skipped: new Map() };
}

/** Responder: DHs = the SPK pair, RK = SK, no chains until the first message arrives. */
export function initResponder(sk: Uint8Array, spk: X25519KeyPair): RatchetState {
  return { rootKey: sk, dhs: spk, dhr: null, send: null, recv: null, pn: 0, skipped: new Map() };
}

/** Makes the sending half of a pending DH ratchet step: fresh DHs, (RK, CKs) = KDF_RK(RK, DH(DHs, DHr)). */
async function completeSendStep(c: CryptoProvider, random: RandomSource, s: RatchetState): Promise<RatchetState> {
  if (s.send || !s.dhr) return s;
  const priv = random(32);
  const dhs = { privateKey: priv, publicKey: await c.x25519Public(priv) };
  const [rootKey, ck] = await kdfRk(c, s.rootKey, await dh(c, priv, s.dhr));
  return { ...s, rootKey, dhs, send: { key: ck, n: 0 } };
}

export interface Encrypted {
  readonly state: RatchetState;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export async function ratchetEncrypt(c: CryptoProvider, random: RandomSource, state: RatchetState, plaintext: Uint8Array, ad: Uint8Array): Promise<Encrypted> {
  const s = await completeSendStep(c, random, state);
  if (!s.send) return fail('no_session', 'session has no sending chain yet');
  const [mk, next] = await kdfCk(c, s.send.key);
  const headerBytes = encodeHeader({ dh: s.dhs.publicKey, pn: s.pn, n: s.send.n });
  const { key, nonce } = await messageKeys(c, mk);
  const ciphertext = await c.aesGcmSeal(key, nonce, plaintext, concat(ad, headerBytes));
  wipe(mk, key, nonce);
  return { state: { ...s, send: { key: next, n: s.send.n + 1 } }, headerBytes, ciphertext };
}

export interface Decrypted {
  readonly state: RatchetState;
  readonly plaintext: Uint8Array;
  readonly path: ReceivePath;
}

const skippedId = (dhPub: Uint8Array, n: number): string => `${toHex(dhPub)}:${n}`;

/** Derives and stores the keys of `recv` up to (not including) `until`, refusing more than MAX_SKIP. */
async function skipTo(
  c: CryptoProvider,
  recv: Chain,
  dhr: Uint8Array,
  until: number,
  skipped: Map<string, SkippedKey>,
  now: number,
): Promise<Chain> {
  if (recv.n + MAX_SKIP < until) fail('too_many_skipped', 'message needs more than MAX_SKIP skipped keys');
  let { key, n } = recv;
  while (n < until) {
    const [mk, next] = await kdfCk(c, key);
    skipped.set(skippedId(dhr, n), { mk, storedAt: now });
    key = next;
    n++;
  }
  return { key, n };
}

/** SPEC §4 bounds: expired keys go; then the earliest of an over-full chain, then of the session. */
function pruneSkipped(skipped: Map<string, SkippedKey>, now: number): void {
  // Oldest first: stop at the first key still within its lifetime.
  for (const [id, k] of skipped) {
    if (k.storedAt + SKIPPED_KEY_TTL_MS > now) break;
    skipped.delete(id);
  }
  if (skipped.size > MAX_SKIPPED_PER_CHAIN) {
    const perChain = new Map<string, number>();
    for (const id of skipped.keys()) {
      const chain = id.slice(0, 64);
      perChain.set(chain, (perChain.get(chain) ?? 0) + 1);
    }
    for (const id of skipped.keys()) {
      const chain = id.slice(0, 64);
      const count = perChain.get(chain)!;
      if (count <= MAX_SKIPPED_PER_CHAIN) continue;
      skipped.delete(id);
      perChain.set(chain, count - 1);
    }
  }
  for (const id of skipped.keys()) {
    if (skipped.size <= MAX_SKIPPED_PER_SESSION) break;
    skipped.delete(id);
  }
}

async function open(c: CryptoProvider, mk: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array, headerBytes: Uint8Array): Promise<Uint8Array> {
  const { key, nonce } = await messageKeys(c, mk);
  const pt = await c.aesGcmOpen(key, nonce, ciphertext, concat(ad, headerBytes));
  if (!pt) fail('decrypt_failed', 'message does not decrypt in this session');
  return pt;
}

/**
 * Decrypts one message. Returns the new state; `state` itself is untouched, so on any error the
 * caller simply keeps it.
 */
export async function ratchetDecrypt(
  c: CryptoProvider,
  random: RandomSource,
  state: RatchetState,
  header: Header,
  headerBytes: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
  now: number,
): Promise<Decrypted> {
  if (headerBytes.length !== HEADER_BYTES) fail('bad_length', 'header must be 40 bytes');
  state = expireSkipped(state, now);
  const id = skippedId(header.dh, header.n);
  const stored = state.skipped.get(id);
  if (stored) {
    const plaintext = await open(c, stored.mk, ciphertext, ad, headerBytes);
    const skipped = new Map(state.skipped);
    skipped.delete(id);
    return { state: { ...state, skipped }, plaintext, path: 'skipped_key' };
  }

  let s = state;
  let path: ReceivePath = 'chain';
  let skipped: Map<string, SkippedKey> | null = null;
  const copySkipped = (): Map<string, SkippedKey> => (skipped ??= new Map(state.skipped));
  if (!s.dhr || !equalBytes(header.dh, s.dhr) || !s.recv) {
    // A new DHr. A still-pending sending step belongs to the previous one: make it first.
    if (!s.send && s.dhr && s.recv) s = await completeSendStep(c, random, s);
    if (s.recv && s.dhr) await skipTo(c, s.recv, s.dhr, header.pn, copySkipped(), now);
    const [rootKey, ck] = await kdfRk(c, s.rootKey, await dh(c, s.dhs.privateKey, header.dh));
    s = { ...s, rootKey, dhr: header.dh, recv: { key: ck, n: 0 }, send: null, pn: s.send?.n ?? 0 };
    path = 'dh_ratchet';
  }
  const recv = s.recv!;
  if (header.n < recv.n) fail('decrypt_failed', 'message key already used or expired');
  const at = header.n > recv.n ? await skipTo(c, recv, header.dh, header.n, copySkipped(), now) : recv;
  const [mk, next] = await kdfCk(c, at.key);
  const plaintext = await open(c, mk, ciphertext, ad, headerBytes);
  wipe(mk);
  if (skipped) pruneSkipped(skipped, now);
  return { state: { ...s, recv: { key: next, n: at.n + 1 }, skipped: skipped ?? s.skipped }, plaintext, path };
}

/** Drops stored keys older than SPEC §4's 30 days; returns the same state when nothing expired. */
export function expireSkipped(state: RatchetState, now: number): RatchetState {
  const first = state.skipped.values().next();
  if (first.done || first.value.storedAt + SKIPPED_KEY_TTL_MS > now) return state;
  const skipped = new Map(state.skipped);
  pruneSkipped(skipped, now);
  return { ...state, skipped };
}
