/**
 * SPEC §3-§5 end to end: sessions per peer device, prekey messages, session selection and the replay
 * record, over a store the application owns. Each operation loads what it needs, works on copies,
 * and writes once through `store.commit`; a rejected message commits nothing.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes, toHex } from './bytes.js';
import { ProtocolError, fail } from './errors.js';
import { type InitiatorInfo, type LocalDevice, type PreKeyBundle, type ResponderPrekeys, initiate, respond, verifyBundle } from './handshake.js';
import type { X25519KeyPair } from './keys.js';
import { verifyDeviceCert } from './keys.js';
import { MAX_ARCHIVED_SESSIONS } from './limits.js';
import { pad, unpad } from './content.js';
import type { CryptoProvider, RandomSource } from './primitives.js';
import { type RatchetState, type ReceivePath, initInitiator, initResponder, ratchetDecrypt, ratchetEncrypt } from './ratchet.js';
import { type DecodedMessage, type MessageType, TYPE_MESSAGE, TYPE_PREKEY, decodeMessage, encodeHandshake, encodeMessage } from './wire.js';

export interface ProtocolContext {
  readonly crypto: CryptoProvider;
  readonly random: RandomSource;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

export interface DeviceAddress {
  readonly userId: string;
  readonly deviceId: number;
}

export interface SessionState {
  /** hex(IK_A_pub) || hex(EK_pub): how SPEC §5 names a session. */
  readonly id: string;
  readonly initiator: boolean;
  readonly ad: Uint8Array;
  /** SHA-256 of the handshake part that made this session: a later prekey message must carry the same (SPEC §5). */
  readonly handshakeDigest: Uint8Array;
  /** Initiator only: the handshake part it prefixes to its prekey messages; dropped once confirmed. */
  readonly prekeyPrefix: Uint8Array | null;
  /** Initiator only: a message of the peer has decrypted in this session, so it sends type 0x02. */
  readonly confirmed: boolean;
  readonly ratchet: RatchetState;
}

export interface PqPrekeySecret {
  readonly seed: Uint8Array;
  readonly oneTime: boolean;
}

export interface SessionChange {
  readonly peer: DeviceAddress;
  /** All sessions with `peer`, the active one first, then archived ones, most recently active first. */
  readonly sessions: readonly SessionState[];
  readonly consumedOpkId?: number;
  readonly consumedPqpkId?: number;
  /** (IK_A_pub, EK_pub) of an accepted prekey message, kept until that SPK's private key is deleted. */
  readonly acceptedHandshake?: { readonly ikPub: Uint8Array; readonly ekPub: Uint8Array; readonly spkId: number };
  /** The account key that a prekey message proved; the store pins it if nothing was pinned (trust on first use). */
  readonly provenAccountKey?: { readonly userId: string; readonly akPub: Uint8Array };
}

/** What the protocol needs from the application's storage (libsignal-style store interface). */
export interface ProtocolStore {
  loadSessions(peer: DeviceAddress): Promise<SessionState[]>;
  loadSignedPrekey(id: number): Promise<X25519KeyPair | null>;
  loadOneTimePrekey(id: number): Promise<X25519KeyPair | null>;
  loadPqPrekey(id: number): Promise<PqPrekeySecret | null>;
  isHandshakeRecorded(ikPub: Uint8Array, ekPub: Uint8Array): Promise<boolean>;
  /** The AK pinned for `userId`, or, with none pinned, the one the server publishes; null if unknown. */
  accountKey(userId: string): Promise<Uint8Array | null>;
  commit(change: SessionChange): Promise<void>;
}

const sessionId = (ikPub: Uint8Array, ekPub: Uint8Array): string => toHex(ikPub) + toHex(ekPub);

/** Puts `s` first (active) and keeps at most MAX_ARCHIVED_SESSIONS others. */
function activate(sessions: readonly SessionState[], s: SessionState): SessionState[] {
  return [s, ...sessions.filter((x) => x.id !== s.id)].slice(0, 1 + MAX_ARCHIVED_SESSIONS);
}

async function trustedAccountKey(store: ProtocolStore, userId: string): Promise<Uint8Array> {
  const ak = await store.accountKey(userId);
  if (!ak) fail('untrusted_identity', 'no account key known for this user');
  return ak;
}

/** SPEC §3: starts a session with the device of `bundle`; it becomes the active one. Returns its id. */
export async function startSession(ctx: ProtocolContext, store: ProtocolStore, self: LocalDevice, bundle: PreKeyBundle): Promise<string> {
  const { crypto: c, random } = ctx;
  await verifyBundle(c, bundle, await trustedAccountKey(store, bundle.userId));
  const peer = { userId: bundle.userId, deviceId: bundle.deviceId };
  const sessions = await store.loadSessions(peer);
  const hs = await initiate(c, random, self, bundle);
  const ratchetPriv = random(32);
  const ratchet = await initInitiator(c, hs.sk, bundle.spkPub, { privateKey: ratchetPriv, publicKey: await c.x25519Public(ratchetPriv) });
  const handshake = encodeHandshake({
    senderUserId: self.userId,
    senderDeviceId: self.deviceId,
    deviceCert: self.deviceCert,
    ikPub: self.ik.publicKey,
    akPub: self.akPub,
    ekPub: hs.ekPub,
    spkId: bundle.spkId,
    opkId: bundle.opkId,
    pqpkId: bundle.pqpkId,
    kemCt: hs.kemCt,
  });
  const session: SessionState = {
    id: sessionId(self.ik.publicKey, hs.ekPub),
    initiator: true,
    ad: hs.ad,
    handshakeDigest: sha256(handshake),
    prekeyPrefix: handshake,
    confirmed: false,
    ratchet,
  };
  await store.commit({ peer, sessions: activate(sessions, session) });
  return session.id;
}

export interface EncryptedMessage {
  readonly type: MessageType;
  readonly wire: Uint8Array;
  readonly sessionId: string;
}

/** Pads `plaintext` (content JSON bytes, SPEC §6) and encrypts it on the active session with `peer`. */
export async function encryptMessage(
  ctx: ProtocolContext,
  store: ProtocolStore,
  peer: DeviceAddress,
  plaintext: Uint8Array,
): Promise<EncryptedMessage> {
  const sessions = await store.loadSessions(peer);
  const active = sessions[0];
  if (!active) fail('no_session', 'no session with this device');
  const { state, headerBytes, ciphertext } = await ratchetEncrypt(ctx.crypto, ctx.random, active.ratchet, pad(plaintext), active.ad);
  const prekey = active.initiator && !active.confirmed && active.prekeyPrefix !== null;
  // The advanced chain is stored before the ciphertext leaves (SPEC §4).
  await store.commit({ peer, sessions: [{ ...active, ratchet: state }, ...sessions.slice(1)] });
  return { type: prekey ? TYPE_PREKEY : TYPE_MESSAGE, wire: encodeMessage(prekey ? active.prekeyPrefix : null, headerBytes, ciphertext), sessionId: active.id };
}

export interface DecryptedMessage {
  /** The content JSON bytes, padding removed. */
  readonly plaintext: Uint8Array;
  readonly type: MessageType;
  readonly sessionId: string;
  readonly path: ReceivePath;
  /** Set when this message created a session (a first prekey message). */
  readonly newSession: boolean;
}

async function decryptIn(ctx: ProtocolContext, s: SessionState, m: DecodedMessage): Promise<{ session: SessionState; plaintext: Uint8Array; path: ReceivePath }> {
  const r = await ratchetDecrypt(ctx.crypto, ctx.random, s.ratchet, m.header, m.headerBytes, m.ciphertext, s.ad, ctx.now());
  const plaintext = unpad(r.plaintext);
  const confirmed = s.confirmed || s.initiator;
  return { session: { ...s, ratchet: r.state, confirmed, prekeyPrefix: confirmed ? null : s.prekeyPrefix }, plaintext, path: r.path };
}

/**
 * Decrypts a message that the server's envelope says came from `from`. Throws ProtocolError and
 * changes nothing when the message is refused.
 */
export async function decryptMessage(
  ctx: ProtocolContext,
  store: ProtocolStore,
  self: LocalDevice,
  from: DeviceAddress,
  wire: Uint8Array,
): Promise<DecryptedMessage> {
  const m = decodeMessage(wire);
  const sessions = await store.loadSessions(from);
  if (m.type === TYPE_PREKEY) return decryptPrekey(ctx, store, self, from, sessions, m);

  for (const s of sessions) {
    try {
      const r = await decryptIn(ctx, s, m);
      await store.commit({ peer: from, sessions: activate(sessions, r.session) });
      return { plaintext: r.plaintext, type: m.type, sessionId: s.id, path: r.path, newSession: false };
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
    }
  }
  return fail(sessions.length ? 'decrypt_failed' : 'no_session', 'message does not decrypt in any session with this device');
}

async function decryptPrekey(
  ctx: ProtocolContext,
  store: ProtocolStore,
  self: LocalDevice,
  from: DeviceAddress,
  sessions: SessionState[],
  m: DecodedMessage,
): Promise<DecryptedMessage> {
  const c = ctx.crypto;
  const hs = m.handshake!;
  if (hs.senderUserId !== from.userId || hs.senderDeviceId !== from.deviceId) fail('sender_mismatch', 'prekey message names another sender than its envelope');
  const ak = await trustedAccountKey(store, hs.senderUserId);
  if (!equalBytes(ak, hs.akPub)) fail('untrusted_identity', 'account key differs from the one known for this user');
  if (!(await verifyDeviceCert(c, hs.akPub, hs.senderUserId, hs.senderDeviceId, hs.ikPub, hs.deviceCert)))
    fail('bad_signature', 'DeviceCert_A does not verify');

  const id = sessionId(hs.ikPub, hs.ekPub);
  const existing = sessions.find((s) => s.id === id);
  if (existing) {
    if (existing.initiator || !equalBytes(existing.handshakeDigest, sha256(m.handshakeBytes!))) fail('handshake_mismatch', 'prekey message differs from the one that created its session');
    const r = await decryptIn(ctx, existing, m);
    await store.commit({ peer: from, sessions: activate(sessions, r.session) });
    return { plaintext: r.plaintext, type: m.type, sessionId: id, path: r.path, newSession: false };
  }
  if (await store.isHandshakeRecorded(hs.ikPub, hs.ekPub)) fail('replayed_prekey', 'prekey message of a session no longer held');

  const spk = await store.loadSignedPrekey(hs.spkId);
  const opk = hs.opkId === null ? null : await store.loadOneTimePrekey(hs.opkId);
  const pqpk = await store.loadPqPrekey(hs.pqpkId);
  if (!spk || (hs.opkId !== null && !opk) || !pqpk) fail('unknown_prekey', 'prekey message names an unknown prekey');
  const keys: ResponderPrekeys = { spk, opk, pqpkSeed: pqpk.seed };
  const info: InitiatorInfo = { userId: hs.senderUserId, deviceId: hs.senderDeviceId, ikPub: hs.ikPub, ekPub: hs.ekPub, kemCt: hs.kemCt };
  const secrets = await respond(c, self, info, keys);
  const fresh: SessionState = {
    id,
    initiator: false,
    ad: secrets.ad,
    handshakeDigest: sha256(m.handshakeBytes!),
    prekeyPrefix: null,
    confirmed: false,
    ratchet: initResponder(secrets.sk, spk),
  };
  const r = await decryptIn(ctx, fresh, m);
  await store.commit({
    peer: from,
    sessions: activate(sessions, r.session),
    ...(hs.opkId !== null ? { consumedOpkId: hs.opkId } : {}),
    ...(pqpk.oneTime ? { consumedPqpkId: hs.pqpkId } : {}),
    acceptedHandshake: { ikPub: hs.ikPub, ekPub: hs.ekPub, spkId: hs.spkId },
    provenAccountKey: { userId: hs.senderUserId, akPub: hs.akPub },
  });
  return { plaintext: r.plaintext, type: m.type, sessionId: id, path: r.path, newSession: true };
}
