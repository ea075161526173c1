/** SPEC §5: message encoding and decoding. Decoding checks every length before reading. */
import { concat, fromUtf8, readU16, readU32, u32 } from './bytes.js';
import { fail } from './errors.js';
import { encodeUserId } from './keys.js';
import { NO_OPK_ID } from './limits.js';
import { KEM_CIPHERTEXT_BYTES } from './primitives.js';

export const WIRE_VERSION = 0x01;
export const TYPE_PREKEY = 0x01;
export const TYPE_MESSAGE = 0x02;
export type MessageType = typeof TYPE_PREKEY | typeof TYPE_MESSAGE;

export const HEADER_BYTES = 40;
const TAG_BYTES = 16;

/** §4 header: the sender's ratchet key and counters. */
export interface Header {
  readonly dh: Uint8Array;
  readonly pn: number;
  readonly n: number;
}

/** The handshake part of a prekey message (§5), from u16(len(sender_user_id)) through kem_ct. */
export interface PrekeyHandshake {
  readonly senderUserId: string;
  readonly senderDeviceId: number;
  readonly deviceCert: Uint8Array;
  readonly ikPub: Uint8Array;
  readonly akPub: Uint8Array;
  readonly ekPub: Uint8Array;
  readonly spkId: number;
  /** null when no OPK was used (0xFFFFFFFF on the wire). */
  readonly opkId: number | null;
  readonly pqpkId: number;
  readonly kemCt: Uint8Array;
}

export interface DecodedMessage {
  readonly type: MessageType;
  /** Present for type 0x01, with its exact bytes. */
  readonly handshake: PrekeyHandshake | null;
  readonly handshakeBytes: Uint8Array | null;
  readonly header: Header;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export function encodeHeader(h: Header): Uint8Array {
  return concat(h.dh, u32(h.pn), u32(h.n));
}

export function encodeHandshake(h: PrekeyHandshake): Uint8Array {
  return concat(
    encodeUserId(h.senderUserId),
    u32(h.senderDeviceId),
    h.deviceCert,
    h.ikPub,
    h.akPub,
    h.ekPub,
    u32(h.spkId),
    u32(h.opkId ?? NO_OPK_ID),
    u32(h.pqpkId),
    h.kemCt,
  );
}

export function encodeMessage(handshakeBytes: Uint8Array | null, headerBytes: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return handshakeBytes
    ? concat(Uint8Array.of(WIRE_VERSION, TYPE_PREKEY), handshakeBytes, headerBytes, ciphertext)
    : concat(Uint8Array.of(WIRE_VERSION, TYPE_MESSAGE), headerBytes, ciphertext);
}

function decodeHeader(b: Uint8Array): Header {
  return { dh: b.slice(0, 32), pn: readU32(b, 32), n: readU32(b, 36) };
}

export function decodeMessage(wire: Uint8Array): DecodedMessage {
  if (!(wire instanceof Uint8Array)) fail('bad_format', 'message must be bytes');
  if (wire.length < 2) fail('bad_length', 'message shorter than 2 bytes');
  if (wire[0] !== WIRE_VERSION) fail('bad_version', 'unknown message version');
  const type = wire[1];
  const body = wire.subarray(2);
  if (type === TYPE_MESSAGE) {
    if (body.length < HEADER_BYTES + TAG_BYTES) fail('bad_length', 'message body too short');
    const headerBytes = body.slice(0, HEADER_BYTES);
    return { type, handshake: null, handshakeBytes: null, header: decodeHeader(headerBytes), headerBytes, ciphertext: body.slice(HEADER_BYTES) };
  }
  if (type !== TYPE_PREKEY) fail('bad_type', 'unknown message type');
  if (body.length < 2) fail('bad_length', 'prekey message body too short');
  const uidLen = readU16(body, 0);
  const fixed = 4 + 64 + 32 + 32 + 32 + 4 + 4 + 4 + KEM_CIPHERTEXT_BYTES;
  if (body.length < 2 + uidLen + fixed + HEADER_BYTES + TAG_BYTES) fail('bad_length', 'prekey message body too short');
  let o = 2;
  const senderUserId = fromUtf8(body.subarray(o, (o += uidLen)));
  const senderDeviceId = readU32(body, o);
  o += 4;
  const take = (n: number): Uint8Array => body.slice(o, (o += n));
  const deviceCert = take(64);
  const ikPub = take(32);
  const akPub = take(32);
  const ekPub = take(32);
  const spkId = readU32(body, o);
  const opkRaw = readU32(body, o + 4);
  const pqpkId = readU32(body, o + 8);
  o += 12;
  const kemCt = take(KEM_CIPHERTEXT_BYTES);
  const handshakeBytes = body.slice(0, o);
  const headerBytes = take(HEADER_BYTES);
  const ciphertext = body.slice(o);
  return {
    type,
    handshake: { senderUserId, senderDeviceId, deviceCert, ikPub, akPub, ekPub, spkId, opkId: opkRaw === NO_OPK_ID ? null : opkRaw, pqpkId, kemCt },
    handshakeBytes,
    header: decodeHeader(headerBytes),
    headerBytes,
    ciphertext,
  };
}
