/**
 * SPEC §9 key backup: the AK seed sealed under a recovery code or passphrase.
 *
 *   blob = "GCHATBK1" || u32(m_kib) || u32(t) || u32(p) || salt (16) || nonce (12)
 *          || AES-256-GCM(Argon2id(secret, salt, m_kib, t, p, 32), nonce, plaintext, ad = blob[0..48))
 *
 * The reader checks the magic, the length and the KDF bounds before any Argon2id work, so a blob
 * from the server cannot make a client spend unbounded memory or time.
 */
import { checkBytes, concat, equalBytes, fromBase64url, fromUtf8, readU32, toBase64url, u32, utf8, wipe } from './bytes.js';
import { fail } from './errors.js';
import { BACKUP_BOUNDS, BACKUP_DEFAULTS } from './limits.js';
import { type Argon2id, type CryptoProvider, type RandomSource, argon2id, defaultCrypto } from './primitives.js';

const MAGIC = utf8('GCHATBK1');
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const AK_SEED_BYTES = 32;
/** magic (8) || m, t, p (12) || salt (16) || nonce (12): also the AEAD's associated data. */
export const BACKUP_HEADER_BYTES = MAGIC.length + 12 + SALT_BYTES + NONCE_BYTES;

// ---- recovery secrets ------------------------------------------------------------------------

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const RECOVERY_CODE_CHARS = 26;
const RECOVERY_CODE = /^[a-z2-7]{26}$/;
/** How a recovery code is grouped for reading: 5-5-5-5-6. */
const RECOVERY_CODE_GROUPS = [5, 5, 5, 5, 6] as const;

/** A fresh recovery code: 26 characters of a-z2-7 (130 random bits), in its normal form. */
export function generateRecoveryCode(random: RandomSource): string {
  const r = random(17);
  if (!(r instanceof Uint8Array) || r.length !== 17) fail('bad_length', 'random source must return 17 bytes');
  let code = '';
  for (let i = 0; i < RECOVERY_CODE_CHARS; i++) {
    // Character i is bits 5i .. 5i+4 of r, most significant bit first.
    const bit = 5 * i;
    const pair = (r[bit >> 3]! << 8) | (r[(bit >> 3) + 1] ?? 0);
    code += BASE32[(pair >> (11 - (bit & 7))) & 31];
  }
  wipe(r);
  return code;
}

/** A recovery code grouped for display, e.g. "abcde-fghij-klmno-pqrst-uvwxyz". */
export function formatRecoveryCode(code: string): string {
  const normal = reduceRecoveryCode(code);
  if (normal === null) fail('bad_secret', 'not a recovery code');
  const groups: string[] = [];
  let o = 0;
  for (const n of RECOVERY_CODE_GROUPS) {
    groups.push(normal.slice(o, o + n));
    o += n;
  }
  return groups.join('-');
}

/** An input's recovery-code form (separators ' ' and '-' removed, A-Z lowercased), or null. */
function reduceRecoveryCode(input: string): string | null {
  const reduced = input.replace(/[ -]/g, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
  return RECOVERY_CODE.test(reduced) ? reduced : null;
}

export type SecretKind = 'recovery_code' | 'passphrase';

/** The Argon2id password of a typed secret, and which kind of secret it was. */
export interface BackupSecret {
  readonly kind: SecretKind;
  readonly bytes: Uint8Array;
}

/**
 * SPEC §9 normalisation: an input that reduces to 26 characters of a-z2-7 is a recovery code
 * (those 26 characters); any other is a passphrase (its UTF-8 after NFKC).
 */
export function normaliseSecret(input: string): BackupSecret {
  if (typeof input !== 'string') fail('bad_secret', 'secret must be a string');
  const code = reduceRecoveryCode(input);
  if (code !== null) return { kind: 'recovery_code', bytes: utf8(code) };
  // A lone surrogate has no UTF-8 form: TextEncoder would silently turn it into U+FFFD.
  if (/\p{Cs}/u.test(input)) fail('bad_secret', 'passphrase holds an unpaired surrogate');
  const bytes = utf8(input.normalize('NFKC'));
  if (bytes.length === 0) fail('bad_secret', 'secret is empty');
  return { kind: 'passphrase', bytes };
}

/**
 * Refuses a passphrase the user chooses for a NEW backup if it would be read as a recovery code
 * (or is empty); returns its normalised form otherwise.
 */
export function checkNewPassphrase(input: string): BackupSecret {
  const secret = normaliseSecret(input);
  if (secret.kind === 'recovery_code') {
    wipe(secret.bytes);
    fail('bad_secret', 'this passphrase would be read as a recovery code; choose another');
  }
  return secret;
}

// ---- KDF parameters --------------------------------------------------------------------------

export interface BackupParams {
  readonly mKib: number;
  readonly t: number;
  readonly p: number;
}

/** The bounds a reader accepts (and a writer keeps to). */
export function checkBackupParams(params: BackupParams): void {
  const { mKib, t, p } = params;
  for (const [name, x] of [['m_kib', mKib], ['t', t], ['p', p]] as const) {
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) fail('bad_backup_params', `${name} must be a u32`);
  }
  if (mKib < BACKUP_BOUNDS.minMKib) fail('bad_backup_params', `m_kib below ${BACKUP_BOUNDS.minMKib}`);
  if (t < BACKUP_BOUNDS.minT) fail('bad_backup_params', `t below ${BACKUP_BOUNDS.minT}`);
  if (p < BACKUP_BOUNDS.minP) fail('bad_backup_params', 'p is 0');
  if (mKib < 8 * p) fail('bad_backup_params', 'm_kib below 8 * p');
  if (mKib > BACKUP_BOUNDS.maxMKib) fail('bad_backup_params', `m_kib above ${BACKUP_BOUNDS.maxMKib}`);
  if (t > BACKUP_BOUNDS.maxT) fail('bad_backup_params', `t above ${BACKUP_BOUNDS.maxT}`);
  if (p > BACKUP_BOUNDS.maxP) fail('bad_backup_params', `p above ${BACKUP_BOUNDS.maxP}`);
}

// ---- seal and open ---------------------------------------------------------------------------

/** The Argon2id seam: `kdf`, else the provider's own (`crypto.argon2id`), else primitives.argon2id (hash-wasm). */
export type BackupKdf = Argon2id;

export interface BackupDeps {
  readonly crypto?: CryptoProvider;
  readonly kdf?: BackupKdf;
}

export interface SealBackupInput extends BackupDeps {
  readonly akSeed: Uint8Array;
  /** What the user typed or was shown: a recovery code in any grouping, or a passphrase. */
  readonly secret: string;
  /** Defaults to BACKUP_DEFAULTS (m = 65536 KiB, t = 3, p = 1). */
  readonly params?: BackupParams;
  /** Called for the salt (16 bytes), then the nonce (12 bytes). */
  readonly random: RandomSource;
}

function plaintextOf(akSeed: Uint8Array): Uint8Array {
  return utf8(JSON.stringify({ v: 1, ak: toBase64url(akSeed) }));
}

/** A new backup blob, with a fresh salt and nonce. */
export async function sealBackup(input: SealBackupInput): Promise<Uint8Array> {
  const { akSeed, secret, random, params = BACKUP_DEFAULTS } = input;
  checkBytes('akSeed', akSeed, AK_SEED_BYTES);
  checkBackupParams(params);
  const password = normaliseSecret(secret).bytes;
  const salt = checkBytes('salt', random(SALT_BYTES), SALT_BYTES);
  const nonce = checkBytes('nonce', random(NONCE_BYTES), NONCE_BYTES);
  const header = concat(MAGIC, u32(params.mKib), u32(params.t), u32(params.p), salt, nonce);
  const plaintext = plaintextOf(akSeed);
  const kdf = input.kdf ?? input.crypto?.argon2id ?? argon2id;
  const key = await kdf(password, salt, params.mKib, params.t, params.p, KEY_BYTES);
  try {
    const ct = await (input.crypto ?? defaultCrypto()).aesGcmSeal(key, nonce, plaintext, header);
    return concat(header, ct);
  } finally {
    wipe(key, password, plaintext);
  }
}

/** The AK seed in `blob`, given what the user typed; refuses a blob out of bounds before any KDF work. */
export async function openBackup(blob: Uint8Array, secret: string, deps: BackupDeps = {}): Promise<Uint8Array> {
  checkBytes('blob', blob);
  if (blob.length < MAGIC.length || !equalBytes(blob.subarray(0, MAGIC.length), MAGIC)) fail('bad_backup', 'not a GChat key backup (bad magic)');
  if (blob.length < BACKUP_HEADER_BYTES + TAG_BYTES) fail('bad_backup', 'backup blob too short');
  const params = { mKib: readU32(blob, 8), t: readU32(blob, 12), p: readU32(blob, 16) };
  checkBackupParams(params);
  const salt = blob.slice(20, 36);
  const nonce = blob.slice(36, BACKUP_HEADER_BYTES);
  const password = normaliseSecret(secret).bytes;
  const kdf = deps.kdf ?? deps.crypto?.argon2id ?? argon2id;
  const key = await kdf(password, salt, params.mKib, params.t, params.p, KEY_BYTES);
  let plaintext: Uint8Array | null;
  try {
    plaintext = await (deps.crypto ?? defaultCrypto()).aesGcmOpen(key, nonce, blob.subarray(BACKUP_HEADER_BYTES), blob.subarray(0, BACKUP_HEADER_BYTES));
  } finally {
    wipe(key, password);
  }
  if (plaintext === null) return fail('decrypt_failed', 'wrong recovery secret, or the backup is damaged');
  try {
    return akSeedOf(plaintext);
  } finally {
    wipe(plaintext);
  }
}

function akSeedOf(plaintext: Uint8Array): Uint8Array {
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(plaintext));
  } catch {
    return fail('bad_backup', 'backup plaintext is not UTF-8 JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('bad_backup', 'backup plaintext is not a JSON object');
  const { v, ak } = doc as Record<string, unknown>;
  if (v !== 1) fail('bad_version', 'backup plaintext version must be 1');
  if (typeof ak !== 'string') fail('bad_backup', 'backup plaintext has no ak');
  let seed: Uint8Array;
  try {
    seed = fromBase64url(ak);
  } catch {
    return fail('bad_backup', 'backup ak is not base64url');
  }
  if (seed.length !== AK_SEED_BYTES) {
    wipe(seed);
    fail('bad_backup', 'backup ak is not 32 bytes');
  }
  return seed;
}
