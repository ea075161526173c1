/**
 * Session state <-> versioned JSON (the "pickle"), kept apart from the ratchet logic. Binary values
 * are base64url. Loading validates every field, so a corrupt snapshot is a ProtocolError, never a
 * half-loaded session.
 */
import { fromBase64url, toBase64url } from './bytes.js';
import { fail } from './errors.js';
import type { Chain, RatchetState, SkippedKey } from './ratchet.js';
import type { SessionState } from './session.js';

export const SNAPSHOT_VERSION = 1;

export interface ChainSnapshot {
  ck: string;
  n: number;
}

export interface SessionSnapshot {
  v: typeof SNAPSHOT_VERSION;
  id: string;
  initiator: boolean;
  ad: string;
  handshakeDigest: string;
  prekeyPrefix: string | null;
  confirmed: boolean;
  rk: string;
  dhs: { priv: string; pub: string };
  dhr: string | null;
  send: ChainSnapshot | null;
  recv: ChainSnapshot | null;
  pn: number;
  /** [chain key id "hex(dh):n", message key, stored-at ms], oldest first. */
  skipped: [string, string, number][];
}

const chainOut = (c: Chain | null): ChainSnapshot | null => (c ? { ck: toBase64url(c.key), n: c.n } : null);

export function sessionToSnapshot(s: SessionState): SessionSnapshot {
  const r = s.ratchet;
  return {
    v: SNAPSHOT_VERSION,
    id: s.id,
    initiator: s.initiator,
    ad: toBase64url(s.ad),
    handshakeDigest: toBase64url(s.handshakeDigest),
    prekeyPrefix: s.prekeyPrefix ? toBase64url(s.prekeyPrefix) : null,
    confirmed: s.confirmed,
    rk: toBase64url(r.rootKey),
    dhs: { priv: toBase64url(r.dhs.privateKey), pub: toBase64url(r.dhs.publicKey) },
    dhr: r.dhr ? toBase64url(r.dhr) : null,
    send: chainOut(r.send),
    recv: chainOut(r.recv),
    pn: r.pn,
    skipped: [...r.skipped].map(([id, k]) => [id, toBase64url(k.mk), k.storedAt]),
  };
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('bad_format', `snapshot: ${what} must be an object`);
  return v as Record<string, unknown>;
}

function bytes(v: unknown, what: string, len?: number): Uint8Array {
  if (typeof v !== 'string') fail('bad_format', `snapshot: ${what} must be base64url`);
  const b = fromBase64url(v);
  if (len !== undefined && b.length !== len) fail('bad_format', `snapshot: ${what} must be ${len} bytes`);
  return b;
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) fail('bad_format', `snapshot: ${what} must be a u32`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail('bad_format', `snapshot: ${what} must be a boolean`);
  return v;
}

function chainIn(v: unknown, what: string): Chain | null {
  if (v === null) return null;
  const o = obj(v, what);
  return { key: bytes(o.ck, `${what}.ck`, 32), n: count(o.n, `${what}.n`) };
}

export function sessionFromSnapshot(value: unknown): SessionState {
  const o = obj(value, 'session');
  if (o.v !== SNAPSHOT_VERSION) fail('bad_version', 'snapshot: unknown version');
  if (typeof o.id !== 'string' || !/^[0-9a-f]{128}$/.test(o.id)) fail('bad_format', 'snapshot: id');
  const dhs = obj(o.dhs, 'dhs');
  if (!Array.isArray(o.skipped)) fail('bad_format', 'snapshot: skipped must be an array');
  const skipped = new Map<string, SkippedKey>();
  for (const entry of o.skipped as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 3 || typeof entry[0] !== 'string' || !/^[0-9a-f]{64}:\d+$/.test(entry[0]))
      fail('bad_format', 'snapshot: skipped entry');
    const storedAt = entry[2];
    if (typeof storedAt !== 'number' || !Number.isFinite(storedAt)) fail('bad_format', 'snapshot: skipped entry time');
    skipped.set(entry[0], { mk: bytes(entry[1], 'skipped key', 32), storedAt });
  }
  const ratchet: RatchetState = {
    rootKey: bytes(o.rk, 'rk', 32),
    dhs: { privateKey: bytes(dhs.priv, 'dhs.priv', 32), publicKey: bytes(dhs.pub, 'dhs.pub', 32) },
    dhr: o.dhr === null ? null : bytes(o.dhr, 'dhr', 32),
    send: chainIn(o.send, 'send'),
    recv: chainIn(o.recv, 'recv'),
    pn: count(o.pn, 'pn'),
    skipped,
  };
  return {
    id: o.id,
    initiator: bool(o.initiator, 'initiator'),
    ad: bytes(o.ad, 'ad'),
    handshakeDigest: bytes(o.handshakeDigest, 'handshakeDigest', 32),
    prekeyPrefix: o.prekeyPrefix === null ? null : bytes(o.prekeyPrefix, 'prekeyPrefix'),
    confirmed: bool(o.confirmed, 'confirmed'),
    ratchet,
  };
}

export const serializeSession = (s: SessionState): string => JSON.stringify(sessionToSnapshot(s));

export function deserializeSession(json: string): SessionState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return fail('bad_format', 'snapshot: not JSON');
  }
  return sessionFromSnapshot(parsed);
}
