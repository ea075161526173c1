/** Stable ids across the two networks: the same source message always maps to the same target id. */
import { createHash } from 'node:crypto';

/**
 * A UUIDv7-shaped GChat message id derived from a Matrix event id: the event's timestamp in the
 * time field (so ids sort like the events), the rest from a hash of the room and event id.
 */
export function messageIdFromEvent(roomId: string, eventId: string, originServerTs: number): string {
  const h = createHash('sha256').update(`${roomId}\0${eventId}`).digest();
  const b = Buffer.alloc(16);
  b.writeUIntBE(Math.max(0, Math.min(originServerTs, 2 ** 48 - 1)), 0, 6);
  h.copy(b, 6, 0, 10);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The Matrix transaction id for bridging a GChat message (or a status of it) into a room. */
export function txnIdFor(kind: string, messageId: string): string {
  return `gchat.${kind}.${messageId}`;
}

/** The GChat username the bridge registers for a Matrix user: readable and collision-free. */
export function gchatUsernameFor(matrixUserId: string): string {
  const local = matrixUserId.slice(1, matrixUserId.indexOf(':')).toLowerCase().replace(/[^a-z0-9._-]/g, '');
  const tag = createHash('sha256').update(matrixUserId).digest('hex').slice(0, 6);
  return `mx.${local.slice(0, 20)}.${tag}`;
}

export const GCHAT_USERNAME = /^[a-z0-9._-]{3,32}$/;
