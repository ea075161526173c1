import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeArgon2id, nodeCryptoProvider } from '../../src/platform/node-crypto.js';
import { openBackup } from '../../src/protocol/backup.js';
import { argon2id as hashWasmArgon2id } from '../../src/protocol/primitives.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

interface BackupVector {
  name: string;
  secret_input: string;
  secret_utf8: string;
  m_kib: number;
  t: number;
  p: number;
  salt: string;
  ak_seed: string;
  argon2id_key?: string;
  blob: string;
  expect: string;
}
const backup = (JSON.parse(readFileSync(join(import.meta.dirname, '../vectors/backup.json'), 'utf8')) as { cases: BackupVector[] }).cases;

describe("the Node provider's native Argon2id (@node-rs/argon2) gives hash-wasm's bytes", () => {
  it.each(backup.filter((v) => v.argon2id_key))('backup.json %s: the vector key, and the blob opens', async (v) => {
    expect(hex(await nativeArgon2id(unhex(v.secret_utf8), unhex(v.salt), v.m_kib, v.t, v.p, 32))).toBe(v.argon2id_key);
    if (v.expect === 'ok') expect(hex(await openBackup(unhex(v.blob), v.secret_input, { crypto: nodeCryptoProvider }))).toBe(v.ak_seed);
  }, 30_000);

  it('on random passwords, salts, parameters and output lengths', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 64 }), // hash-wasm refuses an empty password (a backup never has one)
        fc.uint8Array({ minLength: 8, maxLength: 48 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 256 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 4, max: 96 }),
        async (password, salt, p, extraKib, t, length) => {
          const mKib = 8 * p + extraKib;
          const a = await nativeArgon2id(password, salt, mKib, t, p, length);
          expect(Object.getPrototypeOf(a)).toBe(Uint8Array.prototype);
          expect(hex(a)).toBe(hex(await hashWasmArgon2id(password, salt, mKib, t, p, length)));
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
