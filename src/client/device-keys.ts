/**
 * This device's own keys: making the first set, topping up one-time prekeys and rotating the SPK
 * and last-resort PQPK (SPEC §7). Decisions are pure functions of the stored counters and the
 * clock, so key upkeep resumes correctly after the app was closed.
 */
import { toBase64url } from '../protocol/bytes.js';
import {
  type PqPrekey,
  type SignedPrekey,
  type SigningKeyPair,
  generateOneTimePrekeys,
  generatePqPrekey,
  generateSignedPrekey,
} from '../protocol/keys.js';
import { OLD_SPK_RETENTION_MS, PREKEY_LOW_WATER, PREKEY_TOP_UP, SPK_ROTATION_MS } from '../protocol/limits.js';
import type { CryptoProvider, RandomSource } from '../protocol/primitives.js';
import type { OneTimePrekey } from '../protocol/keys.js';
import { keys, type PrekeyCounters, type StoredPqPrekey, type StoredPrekey } from './state.js';
import type { Json, WriteBatch } from './storage.js';

/** What goes to the server in one upload (public halves only). */
export interface PrekeyUpload {
  spk?: SignedPrekey;
  opks: OneTimePrekey[];
  pqpks: PqPrekey[];
}

export interface UpkeepPlan {
  opks: number;
  pqpks: number;
  rotate: boolean;
}

/** What to add: top each kind up to PREKEY_TOP_UP when it fell below PREKEY_LOW_WATER; rotate after 7 days. */
export function planUpkeep(counters: PrekeyCounters, serverCounts: { opk: number; pqpk: number }, now: number): UpkeepPlan {
  return {
    opks: serverCounts.opk < PREKEY_LOW_WATER ? PREKEY_TOP_UP - serverCounts.opk : 0,
    pqpks: serverCounts.pqpk < PREKEY_LOW_WATER ? PREKEY_TOP_UP - serverCounts.pqpk : 0,
    rotate: now - counters.spkRotatedAt >= SPK_ROTATION_MS,
  };
}

const storeSpk = (b: WriteBatch, k: SignedPrekey, now: number): void =>
  b.put(keys.spk(k.id), { id: k.id, priv: toBase64url(k.privateKey), pub: toBase64url(k.publicKey), sig: toBase64url(k.signature), createdAt: now, replacedAt: null } satisfies StoredPrekey);
const storeOpk = (b: WriteBatch, k: OneTimePrekey, now: number): void =>
  b.put(keys.opk(k.id), { id: k.id, priv: toBase64url(k.privateKey), pub: toBase64url(k.publicKey), createdAt: now } satisfies StoredPrekey);
const storePqpk = (b: WriteBatch, k: PqPrekey, now: number): void =>
  b.put(keys.pqpk(k.id), { id: k.id, seed: toBase64url(k.seed), pub: toBase64url(k.publicKey), sig: toBase64url(k.signature), oneTime: k.oneTime, createdAt: now } satisfies StoredPqPrekey);

/** The keys of a new device: SPK 1, last-resort PQPK 1, OPKs and one-time PQPKs from 1 (PQPK ids from 2). */
export async function makeInitialPrekeys(c: CryptoProvider, random: RandomSource, ik: SigningKeyPair, b: WriteBatch, now: number): Promise<PrekeyUpload> {
  const spk = await generateSignedPrekey(c, random, ik, 1);
  const lastResort = await generatePqPrekey(c, random, ik, 1, false);
  const opks = await generateOneTimePrekeys(c, random, 1, PREKEY_TOP_UP);
  const pqpks: PqPrekey[] = [lastResort];
  for (let i = 0; i < PREKEY_TOP_UP; i++) pqpks.push(await generatePqPrekey(c, random, ik, 2 + i, true));
  storeSpk(b, spk, now);
  for (const k of opks) storeOpk(b, k, now);
  for (const k of pqpks) storePqpk(b, k, now);
  const counters: PrekeyCounters = {
    nextSpkId: 2,
    nextOpkId: 1 + PREKEY_TOP_UP,
    nextPqpkId: 2 + PREKEY_TOP_UP,
    currentSpkId: 1,
    lastResortPqpkId: 1,
    spkRotatedAt: now,
  };
  b.put(keys.counters, counters as unknown as Json);
  return { spk, opks, pqpks };
}

/**
 * Makes the keys a plan asks for and stores their private halves in `b` (with the new counters).
 * The caller flushes `b` only after the server accepted the upload: a failed upload leaves no
 * orphaned keys, and ids are still never reused (the server refuses an id at or below its max).
 */
export async function makeUpkeepKeys(
  c: CryptoProvider,
  random: RandomSource,
  ik: SigningKeyPair,
  counters: PrekeyCounters,
  plan: UpkeepPlan,
  b: WriteBatch,
  now: number,
): Promise<PrekeyUpload> {
  const next = { ...counters };
  const upload: PrekeyUpload = { opks: [], pqpks: [] };
  if (plan.rotate) {
    upload.spk = await generateSignedPrekey(c, random, ik, next.nextSpkId++);
    storeSpk(b, upload.spk, now);
    const old = (await b.get(keys.spk(counters.currentSpkId))) as StoredPrekey | undefined;
    if (old) b.put(keys.spk(old.id), { ...old, replacedAt: now } as unknown as Json);
    next.currentSpkId = upload.spk.id;
    next.spkRotatedAt = now;
    // The last-resort PQPK follows the SPK's schedule (SPEC §7): replaced now, private key kept 30 days.
    const lastResort = await generatePqPrekey(c, random, ik, next.nextPqpkId++, false);
    upload.pqpks.push(lastResort);
    storePqpk(b, lastResort, now);
    const oldPq = (await b.get(keys.pqpk(counters.lastResortPqpkId))) as StoredPqPrekey | undefined;
    if (oldPq) b.put(keys.pqpk(oldPq.id), { ...oldPq, replacedAt: now } as unknown as Json);
    next.lastResortPqpkId = lastResort.id;
  }
  if (plan.opks > 0) {
    upload.opks = await generateOneTimePrekeys(c, random, next.nextOpkId, plan.opks);
    next.nextOpkId += plan.opks;
    for (const k of upload.opks) storeOpk(b, k, now);
  }
  for (let i = 0; i < plan.pqpks; i++) {
    const k = await generatePqPrekey(c, random, ik, next.nextPqpkId++, true);
    upload.pqpks.push(k);
    storePqpk(b, k, now);
  }
  b.put(keys.counters, next as unknown as Json);
  return upload;
}

/** Keys replaced more than 30 days ago (SPKs, last-resort PQPKs): their private keys go. */
export function expiredIds(stored: { id: number; replacedAt?: number | null }[], now: number): number[] {
  return stored.filter((k) => k.replacedAt != null && now - k.replacedAt >= OLD_SPK_RETENTION_MS).map((k) => k.id);
}
