/**
 * SPEC §9 key backup vectors. expect=ok: the secret normalises to secret_utf8, the writer given the
 * salt and nonce reproduces blob (header = ad, key = argon2id_key; skipped where reader_only), and
 * the reader opens blob to ak_seed. expect=reject: the reader refuses blob (which error is its own
 * choice), and where before_kdf is set it refuses without starting Argon2id.
 */
import { equalBytes, fromHex, utf8 } from '../../src/protocol/bytes.js';
import { type BackupKdf, BACKUP_HEADER_BYTES, normaliseSecret, openBackup, sealBackup } from '../../src/protocol/backup.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { argon2id } from '../../src/protocol/primitives.js';
import { type CaseResult, type TopicRunner, runEachCase } from './types.js';

interface BackupCase {
  name: string;
  expect: 'ok' | 'reject';
  secret_kind: 'recovery_code' | 'passphrase';
  secret_input: string;
  secret: string;
  secret_utf8: string;
  blob: string;
  reason?: string;
  /** Must be refused before any Argon2id work. */
  before_kdf?: boolean;
  /** Read, never written: the plaintext carries members a writer does not produce. */
  reader_only?: boolean;
  m_kib?: number;
  t?: number;
  p?: number;
  salt?: string;
  nonce?: string;
  ak_seed?: string;
  argon2id_key?: string;
  ad?: string;
  plaintext?: string;
}

/**
 * Argon2id that counts every call as it starts (so work begun and then abandoned still counts) and
 * records every key it derives, so a case can see whether (and what) it derived.
 */
function recordingKdf(): { kdf: BackupKdf; keys: Uint8Array[]; calls: () => number } {
  const keys: Uint8Array[] = [];
  let calls = 0;
  const kdf: BackupKdf = async (...args) => {
    calls++;
    const k = await argon2id(...args);
    keys.push(k.slice());
    return k;
  };
  return { kdf, keys, calls: () => calls };
}

/** Hands out the given bytes in order, as the writer asks for salt then nonce. */
function scriptedRandom(...chunks: Uint8Array[]): (n: number) => Uint8Array {
  return (n) => {
    const next = chunks.shift();
    if (!next || next.length !== n) throw new Error(`scripted random: asked for ${n} bytes out of script`);
    return next.slice();
  };
}


/** SPEC §9 normalisation of secret_input against the case's secret_kind, secret and secret_utf8. */
function checkSecret(c: BackupCase): string | null {
  const secret = normaliseSecret(c.secret_input);
  if (secret.kind !== c.secret_kind) return `SPEC 9 reads secret_input as a ${secret.kind}, the vector says ${c.secret_kind}`;
  if (!equalBytes(secret.bytes, fromHex(c.secret_utf8))) return 'normalised secret differs from secret_utf8';
  if (!equalBytes(secret.bytes, utf8(c.secret))) return 'normalised secret differs from secret (vector inconsistent?)';
  return null;
}

/**
 * Refused, whatever the error code (the reason text is for people); an exception that is not a
 * ProtocolError is a crash, not a refusal. The reader holds no state, so "unchanged" is the blob.
 */
async function checkReject(c: BackupCase, blob: Uint8Array): Promise<string | null> {
  const { kdf, calls } = recordingKdf();
  const copy = blob.slice();
  try {
    await openBackup(blob, c.secret_input, { kdf });
    return 'reader accepted the blob';
  } catch (e) {
    if (!(e instanceof ProtocolError)) return `reader crashed (${(e as Error).name}: ${(e as Error).message}) instead of refusing`;
    if (!equalBytes(blob, copy)) return 'reader changed the blob it refused';
    if (c.before_kdf === true && calls() > 0) return `refused only after ${calls()} Argon2id call(s); before_kdf asks for none`;
    return null;
  }
}

async function checkOk(c: BackupCase, blob: Uint8Array): Promise<string | null> {
  if (c.reader_only !== true) {
    const problem = await checkWriter(c, blob);
    if (problem) return problem;
  }
  const reader = recordingKdf();
  const seed = await openBackup(blob, c.secret_input, { kdf: reader.kdf });
  if (!equalBytes(seed, fromHex(c.ak_seed!))) return 'reader got another ak_seed';
  if (reader.keys.length !== 1 || !equalBytes(reader.keys[0]!, fromHex(c.argon2id_key!))) return 'reader derived another Argon2id key';
  return null;
}

/** Writer: the same secret, parameters, salt and nonce give the same blob. */
async function checkWriter(c: BackupCase, blob: Uint8Array): Promise<string | null> {
  const writer = recordingKdf();
  const sealed = await sealBackup({
    akSeed: fromHex(c.ak_seed!),
    secret: c.secret_input,
    params: { mKib: c.m_kib!, t: c.t!, p: c.p! },
    random: scriptedRandom(fromHex(c.salt!), fromHex(c.nonce!)),
    kdf: writer.kdf,
  });
  if (!equalBytes(writer.keys[0] ?? new Uint8Array(0), fromHex(c.argon2id_key!))) return 'writer derived another Argon2id key';
  if (!equalBytes(sealed.subarray(0, BACKUP_HEADER_BYTES), fromHex(c.ad!))) return 'writer header (ad) differs';
  if (!equalBytes(sealed, blob)) return 'writer did not reproduce blob';
  return null;
}

/**
 * Runs every check of a case (a normalisation mismatch does not hide the reader's result). In a
 * reject case the reader must refuse whichever way the secret is read, so a secret_kind that
 * disagrees with SPEC §9 is reported as a note there; in an ok case it fails the case.
 */
async function runCase(c: BackupCase): Promise<CaseResult> {
  const blob = fromHex(c.blob);
  const secretProblem = checkSecret(c);
  const outcome = await (c.expect === 'reject' ? checkReject(c, blob) : checkOk(c, blob));
  if (c.expect === 'reject' && outcome === null && secretProblem) return { name: c.name, ok: true, note: secretProblem };
  const problems = [secretProblem, outcome].filter((p) => p !== null);
  return problems.length === 0 ? { name: c.name, ok: true } : { name: c.name, ok: false, detail: problems.join('; ') };
}

export const run: TopicRunner = (file) => runEachCase<BackupCase>(file, runCase);
