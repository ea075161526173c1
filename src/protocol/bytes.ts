import { fail } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Strict UTF-8 decoding: invalid sequences are a format error, not U+FFFD. */
export function fromUtf8(b: Uint8Array): string {
  try {
    return decoder.decode(b);
  } catch {
    return fail('bad_format', 'invalid UTF-8');
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function u16(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) fail('bad_format', 'u16 out of range');
  return new Uint8Array([n >>> 8, n & 0xff]);
}

export function u32(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) fail('bad_format', 'u32 out of range');
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

export function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function isAllZero(b: Uint8Array): boolean {
  let d = 0;
  for (let i = 0; i < b.length; i++) d |= b[i]!;
  return d === 0;
}

/** Checks that `value` is a Uint8Array of `len` bytes, naming the argument in the error. */
export function checkBytes(name: string, value: unknown, len?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) fail('bad_format', `${name} must be a Uint8Array`);
  if (len !== undefined && value.length !== len) fail('bad_length', `${name} must be ${len} bytes, got ${value.length}`);
  return value;
}

export function wipe(...arrays: (Uint8Array | null | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) fail('bad_format', 'invalid hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

const B64URL_CODES = Uint8Array.from(B64URL, (c) => c.charCodeAt(0));
const ascii = new TextDecoder('latin1');

/** base64url without padding (SPEC: binary values in JSON). Writes ASCII codes, then decodes once. */
export function toBase64url(b: Uint8Array): string {
  const out = new Uint8Array(Math.ceil((b.length * 4) / 3));
  let o = 0;
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    out[o++] = B64URL_CODES[n >> 18]!;
    out[o++] = B64URL_CODES[(n >> 12) & 63]!;
    out[o++] = B64URL_CODES[(n >> 6) & 63]!;
    out[o++] = B64URL_CODES[n & 63]!;
  }
  const rest = b.length - i;
  if (rest > 0) {
    const n = (b[i]! << 16) | (rest === 2 ? b[i + 1]! << 8 : 0);
    out[o++] = B64URL_CODES[n >> 18]!;
    out[o++] = B64URL_CODES[(n >> 12) & 63]!;
    if (rest === 2) out[o++] = B64URL_CODES[(n >> 6) & 63]!;
  }
  return ascii.decode(out);
}

/** Strict base64url without padding: rejects padding, other alphabets and non-zero trailing bits. */
export function fromBase64url(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length % 4 === 1) fail('bad_format', 'invalid base64url');
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  const at = (i: number): number => {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B64URL_INDEX[c]! : -1;
    if (v < 0) fail('bad_format', 'invalid base64url');
    return v;
  };
  let o = 0;
  let i = 0;
  for (; i + 3 < s.length; i += 4) {
    const n = (at(i) << 18) | (at(i + 1) << 12) | (at(i + 2) << 6) | at(i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  const rest = s.length - i;
  if (rest >= 2) {
    const n = (at(i) << 18) | (at(i + 1) << 12) | (rest === 3 ? at(i + 2) << 6 : 0);
    // The bits past the last whole byte must be zero (one encoding per value).
    if ((rest === 2 && n & 0xffff) || (rest === 3 && n & 0xff)) fail('bad_format', 'invalid base64url');
    out[o++] = n >> 16;
    if (rest === 3) out[o++] = (n >> 8) & 0xff;
  }
  return out;
}
