/**
 * What the relay checks of a sealed copy (SPEC §5) without decrypting it: the body is the whole
 * §5 message, so its version byte must be 0x01, its type byte must be the copy's `type`, and it
 * must be at least as long as the shortest message of that type. A receiver would drop anything
 * else; refusing it here tells the sender at once instead of relaying bytes nobody can read.
 * Only the first bytes are decoded.
 */
import { HEADER_BYTES, TYPE_MESSAGE, TYPE_PREKEY, WIRE_VERSION } from '../../protocol/wire.js';
import { KEM_CIPHERTEXT_BYTES } from '../../protocol/primitives.js';

/** The AEAD tag: every ciphertext is at least this long (SPEC §5). */
const TAG_BYTES = 16;
/** Version and type bytes. */
const PREFIX_BYTES = 2;
/** A type 0x01 body without sender_user_id: u16 length, u32 device, cert, IK, AK, EK, three u32 ids, kem_ct, header, tag. */
const PREKEY_FIXED_BYTES = 2 + 4 + 64 + 32 + 32 + 32 + 4 + 4 + 4 + KEM_CIPHERTEXT_BYTES + HEADER_BYTES + TAG_BYTES;

/** Decoded length of unpadded base64url text of `chars` characters (chars % 4 !== 1). */
function decodedLength(chars: number): number {
  return Math.floor((chars * 3) / 4);
}

/** Why this copy is not a §5 message of its declared type, or null when it may be one. */
export function wireProblem(type: number, body: string): string | null {
  const size = decodedLength(body.length);
  if (size < PREFIX_BYTES) return 'a copy body is shorter than a message (SPEC §5)';
  // 8 characters are 6 bytes: version, type and the prekey message's u16 length.
  const head = Buffer.from(body.slice(0, 8), 'base64url');
  if (head[0] !== WIRE_VERSION) return 'a copy body has an unknown message version (SPEC §5)';
  if (head[1] !== type) return "a copy's type differs from the type byte of its body (SPEC §5)";
  if (type === TYPE_MESSAGE) {
    if (size < PREFIX_BYTES + HEADER_BYTES + TAG_BYTES) return 'a copy body is too short for a type 2 message (SPEC §5)';
    return null;
  }
  if (type === TYPE_PREKEY) {
    if (size < PREFIX_BYTES + 2) return 'a copy body is too short for a type 1 message (SPEC §5)';
    const uidLen = head.readUInt16BE(2);
    if (size < PREFIX_BYTES + PREKEY_FIXED_BYTES + uidLen) return 'a copy body is too short for a type 1 message (SPEC §5)';
    return null;
  }
  return 'a copy has an unknown message type (SPEC §5)';
}
