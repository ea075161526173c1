import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex } from '../../src/protocol/bytes.js';
import { codeOf } from '../helpers/protocol-errors.js';
import { displaySafetyNumber, fingerprint, safetyNumber, safetyNumberOf } from '../../src/protocol/fingerprint.js';

interface Party {
  ak_pub: string;
  user_id: string;
}
interface SafetyCase {
  name: string;
  kind: string;
  a: Party;
  b: Party;
  fingerprint_a: string;
  fingerprint_b: string;
  safety_number: string;
  display: string;
}
const cases = (
  JSON.parse(readFileSync(new URL('../vectors/keys.json', import.meta.url), 'utf8')) as { cases: SafetyCase[] }
).cases.filter((c) => c.kind === 'safety_number');

const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));

describe('safety numbers (SPEC §8)', () => {
  it('has vectors to check', () => expect(cases.length).toBeGreaterThanOrEqual(3));

  it.each(cases)('vector $name: fingerprints, safety number and display', (c) => {
    const fa = fingerprint(fromHex(c.a.ak_pub), c.a.user_id);
    const fb = fingerprint(fromHex(c.b.ak_pub), c.b.user_id);
    expect(fa).toBe(c.fingerprint_a);
    expect(fb).toBe(c.fingerprint_b);
    expect(safetyNumber(fa, fb)).toBe(c.safety_number);
    expect(displaySafetyNumber(c.safety_number)).toBe(c.display);
  });

  it('shows both users the same number', () => {
    const [c] = cases;
    const a = { akPub: fromHex(c!.a.ak_pub), userId: c!.a.user_id };
    const b = { akPub: fromHex(c!.b.ak_pub), userId: c!.b.user_id };
    expect(safetyNumberOf(a, b)).toBe(safetyNumberOf(b, a));
    expect(safetyNumberOf(a, b)).toBe(c!.safety_number);
  });

  it('puts the numerically smaller fingerprint first, whatever the order given', () => {
    fc.assert(
      fc.property(digits(30), digits(30), (a, b) => {
        const sn = safetyNumber(a, b);
        expect(sn).toBe(safetyNumber(b, a));
        expect(sn).toHaveLength(60);
        expect(BigInt(sn.slice(0, 30)) <= BigInt(sn.slice(30))).toBe(true);
        expect([sn.slice(0, 30), sn.slice(30)].sort()).toEqual([a, b].sort());
      }),
    );
  });

  it('changes when the account key changes in any single bit', () => {
    const c = cases[0]!;
    const ak = fromHex(c.a.ak_pub);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), (bit) => {
        const changed = ak.slice();
        changed[bit >> 3]! ^= 1 << (bit & 7);
        expect(fingerprint(changed, c.a.user_id)).not.toBe(c.fingerprint_a);
      }),
      { numRuns: 8 },
    );
  });

  it('binds the user_id: the same key under another account gives another number', () => {
    const c = cases[0]!;
    const ak = fromHex(c.a.ak_pub);
    expect(fingerprint(ak, c.a.user_id + ' ')).not.toBe(c.fingerprint_a);
    expect(fingerprint(ak, c.b.user_id)).not.toBe(c.fingerprint_a);
  });

  it('displays 12 groups of 5 digits joined by single spaces', () => {
    fc.assert(
      fc.property(digits(60), (sn) => {
        const shown = displaySafetyNumber(sn);
        expect(shown).toMatch(/^[0-9]{5}( [0-9]{5}){11}$/);
        expect(shown.replaceAll(' ', '')).toBe(sn);
      }),
    );
  });

  it('refuses malformed inputs with a ProtocolError', () => {
    expect(codeOf(() => fingerprint(new Uint8Array(31), 'a'))).toBe('bad_length');
    expect(codeOf(() => fingerprint(new Uint8Array(32), 'x'.repeat(65536)))).toBe('bad_length');
    expect(codeOf(() => safetyNumber('1'.repeat(29), '2'.repeat(30)))).toBe('bad_format');
    expect(codeOf(() => safetyNumber('1'.repeat(30), '2'.repeat(29) + 'a'))).toBe('bad_format');
    expect(codeOf(() => displaySafetyNumber('1'.repeat(59)))).toBe('bad_format');
  });
});
