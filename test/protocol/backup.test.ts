import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, fromHex, u32, utf8 } from '../../src/protocol/bytes.js';
import {
  type BackupKdf,
  type BackupParams,
  BACKUP_HEADER_BYTES,
  checkNewPassphrase,
  formatRecoveryCode,
  generateRecoveryCode,
  normaliseSecret,
  openBackup,
  sealBackup,
} from '../../src/protocol/backup.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { codeOfAsync } from '../helpers/protocol-errors.js';
import { BACKUP_DEFAULTS } from '../../src/protocol/limits.js';
import { defaultCrypto, systemRandom } from '../../src/protocol/primitives.js';

interface BackupCase {
  name: string;
  expect: string;
  secret_input: string;
  secret_utf8: string;
  blob: string;
  m_kib: number;
  t: number;
  p: number;
  salt: string;
  nonce: string;
  ak_seed: string;
}
const vectors = (
  JSON.parse(readFileSync(new URL('../vectors/backup.json', import.meta.url), 'utf8')) as { cases: BackupCase[] }
).cases;
const vector = (name: string): BackupCase => vectors.find((c) => c.name === name)!;

const MIN: BackupParams = { mKib: 19456, t: 2, p: 1 };

/** A stand-in for Argon2id where a test is about framing, not the KDF: fast, and counts its calls. */
function fakeKdf(): BackupKdf & { calls: number } {
  const kdf = Object.assign(async (pw: Uint8Array, salt: Uint8Array) => {
    kdf.calls++;
    return sha256(concat(pw, salt));
  }, { calls: 0 });
  return kdf;
}

const SEED = fromHex('7a740216b65724a0f12f1ea977dd626ed647dd5ae2cb51c8f17d54b50eeae5ae');

/** A header as a hostile server could write it. */
function header(mKib: number, t: number, p: number): Uint8Array {
  return concat(utf8('GCHATBK1'), u32(mKib), u32(t), u32(p), new Uint8Array(28));
}

/** A blob whose plaintext is exactly `plaintext`, under the fake KDF. */
async function rawBlob(plaintext: string, secret: string): Promise<Uint8Array> {
  const h = header(MIN.mKib, MIN.t, MIN.p);
  const key = await fakeKdf()(normaliseSecret(secret).bytes, h.subarray(20, 36), 0, 0, 0, 32);
  return concat(h, await defaultCrypto().aesGcmSeal(key, h.subarray(36, 48), utf8(plaintext), h));
}

describe('recovery secrets (SPEC §9)', () => {
  it('generates 26 characters of a-z2-7 carrying the first 130 random bits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 17, maxLength: 17 }), (r) => {
        const code = generateRecoveryCode(() => r.slice());
        expect(code).toMatch(/^[a-z2-7]{26}$/);
        const bits = [...code].map((ch) => 'abcdefghijklmnopqrstuvwxyz234567'.indexOf(ch).toString(2).padStart(5, '0')).join('');
        const want = [...r].map((b) => b.toString(2).padStart(8, '0')).join('').slice(0, 130);
        expect(bits).toBe(want);
      }),
    );
  });

  it('reads a code back however the user types it: as shown, upper case, other separators', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 17, maxLength: 17 }), fc.constantFrom(' ', '-', '  ', ' - '), fc.boolean(), (r, sep, upper) => {
        const code = generateRecoveryCode(() => r);
        const shown = formatRecoveryCode(code);
        expect(shown).toMatch(/^[a-z2-7]{5}(-[a-z2-7]{5}){3}-[a-z2-7]{6}$/);
        const typed = shown.replaceAll('-', sep);
        const secret = normaliseSecret(upper ? typed.toUpperCase() : typed);
        expect(secret).toEqual({ kind: 'recovery_code', bytes: utf8(code) });
      }),
    );
  });

  it('normalises the vectors’ secrets as SPEC §9 says', () => {
    for (const c of vectors.filter((v) => v.expect === 'ok')) expect(normaliseSecret(c.secret_input).bytes).toEqual(fromHex(c.secret_utf8));
  });

  it('treats a phrase that reduces to 26 letters as a recovery code (SPEC §9), whatever it looks like', () => {
    // 'correct horse battery stapler' is 26 letters once its spaces go.
    expect(normaliseSecret('correct horse battery stapler')).toEqual({ kind: 'recovery_code', bytes: utf8('correcthorsebatterystapler') });
    expect(normaliseSecret('correct horse battery staple').kind).toBe('passphrase');
  });

  it('applies NFKC to a passphrase and does not lowercase it', () => {
    expect(normaliseSecret('Ｃａｆｅ́ ﬁle №１')).toEqual({ kind: 'passphrase', bytes: utf8('Café file No1') });
    expect(normaliseSecret('Hello World')).toEqual({ kind: 'passphrase', bytes: utf8('Hello World') });
  });

  it('refuses a new passphrase that would be read as a recovery code, or an empty one', () => {
    expect(() => checkNewPassphrase('Correct Horse Battery Stapler')).toThrow(ProtocolError);
    expect(() => checkNewPassphrase('abcde-fghij-klmno-pqrst-uvwxyz')).toThrow(ProtocolError);
    expect(() => checkNewPassphrase('')).toThrow(ProtocolError);
    expect(checkNewPassphrase('correct horse battery staple').kind).toBe('passphrase');
  });

  it('refuses a passphrase with an unpaired surrogate instead of silently changing it', () => {
    expect(() => normaliseSecret('pass\ud800word')).toThrow(ProtocolError);
  });
});

describe('openBackup / sealBackup with Argon2id', () => {
  it('opens the default-parameter vector (m = 65536 KiB, t = 3) with its recovery code', async () => {
    const c = vector('recovery_code_default_params');
    expect(await openBackup(fromHex(c.blob), c.secret_input)).toEqual(fromHex(c.ak_seed));
  });

  it('reproduces the minimum-parameter vector from its salt and nonce, and reads it back', async () => {
    const c = vector('recovery_code_typed_with_uppercase_and_separators');
    const salt = fromHex(c.salt);
    const nonce = fromHex(c.nonce);
    const chunks = [salt, nonce];
    const blob = await sealBackup({ akSeed: fromHex(c.ak_seed), secret: c.secret_input, params: MIN, random: () => chunks.shift()! });
    expect(blob).toEqual(fromHex(c.blob));
    expect(await openBackup(blob, 'v7xhkhulm4cas3wtfr6payyjrh')).toEqual(fromHex(c.ak_seed));
  });

  it('round-trips a random AK under a random recovery code, typed as shown', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 17, maxLength: 17 }), async (seed, r) => {
        const code = generateRecoveryCode(() => r);
        const blob = await sealBackup({ akSeed: seed, secret: code, params: MIN, random: systemRandom });
        expect(await openBackup(blob, formatRecoveryCode(code).toUpperCase())).toEqual(seed);
      }),
      { numRuns: 3 },
    );
  });

  it('refuses the wrong secret', async () => {
    const c = vector('min_params');
    expect(await codeOfAsync(() => openBackup(fromHex(c.blob), 'correct horse battery staple!'))).toBe('decrypt_failed');
  });
});

describe('openBackup framing and bounds (no Argon2id work)', () => {
  const u32s = fc.integer({ min: 0, max: 0xffffffff });
  const outOfBounds = fc
    .tuple(u32s, u32s, u32s)
    .filter(([m, t, p]) => m < 19456 || t < 2 || p === 0 || m < 8 * p || m > 1048576 || t > 10 || p > 16);

  it('refuses any parameters out of bounds before running the KDF', async () => {
    await fc.assert(
      fc.asyncProperty(outOfBounds, async ([m, t, p]) => {
        const kdf = fakeKdf();
        const started = performance.now();
        expect(await codeOfAsync(() => openBackup(concat(header(m, t, p), new Uint8Array(64)), 'any secret', { kdf }))).toBe('bad_backup_params');
        expect(kdf.calls).toBe(0);
        expect(performance.now() - started).toBeLessThan(1000);
      }),
    );
  });

  it('refuses the vectors’ out-of-bounds blobs, and a costly blob at once, with the real Argon2id', async () => {
    for (const name of ['m_below_minimum', 't_below_minimum']) {
      expect(await codeOfAsync(() => openBackup(fromHex(vector(name).blob), vector(name).secret_input))).toBe('bad_backup_params');
    }
    // 1 GiB + 1 KiB, 10 passes: seconds of work if the reader ran Argon2id first.
    const costly = concat(header(1048577, 10, 1), new Uint8Array(64));
    const started = performance.now();
    expect(await codeOfAsync(() => openBackup(costly, 'secret'))).toBe('bad_backup_params');
    // Far below the tens of seconds the KDF would take, with room for a slow, shared machine.
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('accepts every parameter at its bound (the bounds are inclusive)', async () => {
    for (const [m, t, p] of [
      [19456, 2, 1],
      [1048576, 10, 16],
      [19456, 10, 16],
      [1048576, 2, 1],
    ] as const) {
      const kdf = fakeKdf();
      // The fake key does not match, so the tag fails: what matters is that the KDF ran.
      expect(await codeOfAsync(() => openBackup(concat(header(m, t, p), new Uint8Array(64)), 'secret', { kdf }))).toBe('decrypt_failed');
      expect(kdf.calls).toBe(1);
    }
  });

  it('refuses bad magic and short blobs as bad_backup', async () => {
    const kdf = fakeKdf();
    const good = await sealBackup({ akSeed: SEED, secret: 'pw', params: MIN, random: systemRandom, kdf });
    const magic = good.slice();
    magic[7] = 0x32;
    expect(await codeOfAsync(() => openBackup(magic, 'pw', { kdf }))).toBe('bad_backup');
    for (const n of [0, 5, BACKUP_HEADER_BYTES, BACKUP_HEADER_BYTES + 15]) {
      expect(await codeOfAsync(() => openBackup(good.slice(0, n), 'pw', { kdf }))).toBe('bad_backup');
    }
    expect(kdf.calls).toBe(1);
  });

  it('authenticates the whole header: any changed header byte fails the tag', async () => {
    const kdf = fakeKdf();
    const blob = await sealBackup({ akSeed: SEED, secret: 'pw', params: MIN, random: systemRandom, kdf });
    expect(await openBackup(blob, 'pw', { kdf })).toEqual(SEED);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 8, max: BACKUP_HEADER_BYTES - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const changed = blob.slice();
        changed[at]! ^= x;
        const code = await codeOfAsync(() => openBackup(changed, 'pw', { kdf }));
        // A change in m, t or p may instead leave the bounds: refused either way.
        expect(at < 20 ? ['decrypt_failed', 'bad_backup_params'] : ['decrypt_failed']).toContain(code);
      }),
    );
  });

  it('makes every blob with a fresh salt and nonce', async () => {
    const kdf = fakeKdf();
    const a = await sealBackup({ akSeed: SEED, secret: 'pw', params: MIN, random: systemRandom, kdf });
    const b = await sealBackup({ akSeed: SEED, secret: 'pw', params: MIN, random: systemRandom, kdf });
    expect(a.subarray(20, 36)).not.toEqual(b.subarray(20, 36));
    expect(a.subarray(36, 48)).not.toEqual(b.subarray(36, 48));
  });

  it('writes the default parameters when none are given', async () => {
    const blob = await sealBackup({ akSeed: SEED, secret: 'pw', random: systemRandom, kdf: fakeKdf() });
    expect(blob.subarray(8, 20)).toEqual(concat(u32(BACKUP_DEFAULTS.mKib), u32(BACKUP_DEFAULTS.t), u32(BACKUP_DEFAULTS.p)));
  });

  it('will not write a blob no reader would open', async () => {
    for (const params of [{ mKib: 19455, t: 2, p: 1 }, { mKib: 19456, t: 11, p: 1 }, { mKib: 19456, t: 2, p: 0 }, { mKib: 2 ** 32, t: 2, p: 1 }]) {
      expect(await codeOfAsync(() => sealBackup({ akSeed: SEED, secret: 'pw', params, random: systemRandom, kdf: fakeKdf() }))).toBe('bad_backup_params');
    }
    expect(await codeOfAsync(() => sealBackup({ akSeed: SEED.subarray(0, 31), secret: 'pw', params: MIN, random: systemRandom, kdf: fakeKdf() }))).toBe('bad_length');
  });

  it('reads only v and ak from the plaintext, and checks both', async () => {
    const ak = 'enQCFrZXJKDxLx6pd91ibtZH3Vriy1HI8X1UtQ7q5a4';
    const open = async (pt: string) => openBackup(await rawBlob(pt, 'pw'), 'pw', { kdf: fakeKdf() });
    expect(await open(`{"ak":"${ak}","v":1,"note":"hi","extra":[1,2]}`)).toEqual(SEED);
    expect(await codeOfAsync(async () => open(`{"v":2,"ak":"${ak}"}`))).toBe('bad_version');
    expect(await codeOfAsync(async () => open(`{"ak":"${ak}"}`))).toBe('bad_version');
    expect(await codeOfAsync(async () => open(`{"v":1,"ak":"${ak.slice(0, -1)}"}`))).toBe('bad_backup');
    expect(await codeOfAsync(async () => open(`{"v":1,"ak":"${ak}AAAA"}`))).toBe('bad_backup');
    expect(await codeOfAsync(async () => open(`{"v":1,"ak":"${ak}="}`))).toBe('bad_backup');
    expect(await codeOfAsync(async () => open('{"v":1}'))).toBe('bad_backup');
    expect(await codeOfAsync(async () => open('not json'))).toBe('bad_backup');
  });

  it('never puts the secret or key bytes in an error message', async () => {
    const c = vector('min_params');
    try {
      await openBackup(fromHex(c.blob), 'my secret phrase');
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('my secret phrase');
      expect((e as Error).message).not.toMatch(/[0-9a-f]{16}/);
    }
  });
});
