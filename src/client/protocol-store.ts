/**
 * The protocol's ProtocolStore on the client's key-value store. It reads through, and commits into,
 * a WriteBatch, so the session change of a decrypt lands in the same atomic write as the message it
 * yields (nothing is acked before both are on disk).
 */
import { fromBase64url, toBase64url, toHex } from '../protocol/bytes.js';
import type { X25519KeyPair } from '../protocol/keys.js';
import type { DeviceAddress, PqPrekeySecret, ProtocolStore, SessionChange, SessionState } from '../protocol/session.js';
import { sessionFromSnapshot, sessionToSnapshot, type SessionSnapshot } from '../protocol/snapshot.js';
import type { Json, WriteBatch } from './storage.js';
import { keys, type StoredContact, type StoredPqPrekey, type StoredPrekey } from './state.js';

export interface AccountKeySource {
  /** The AK the server publishes for `userId` (trust on first use), or null. */
  fetchAccountKey(userId: string): Promise<Uint8Array | null>;
}

export class KvProtocolStore implements ProtocolStore {
  constructor(
    private readonly batch: WriteBatch,
    private readonly source: AccountKeySource,
    private readonly now: () => number,
  ) {}

  async loadSessions(peer: DeviceAddress): Promise<SessionState[]> {
    const v = (await this.batch.get(keys.sessions(peer.userId, peer.deviceId))) as SessionSnapshot[] | undefined;
    return (v ?? []).map(sessionFromSnapshot);
  }

  async loadSignedPrekey(id: number): Promise<X25519KeyPair | null> {
    const v = (await this.batch.get(keys.spk(id))) as StoredPrekey | undefined;
    return v ? { privateKey: fromBase64url(v.priv), publicKey: fromBase64url(v.pub) } : null;
  }

  async loadOneTimePrekey(id: number): Promise<X25519KeyPair | null> {
    const v = (await this.batch.get(keys.opk(id))) as StoredPrekey | undefined;
    return v ? { privateKey: fromBase64url(v.priv), publicKey: fromBase64url(v.pub) } : null;
  }

  async loadPqPrekey(id: number): Promise<PqPrekeySecret | null> {
    const v = (await this.batch.get(keys.pqpk(id))) as StoredPqPrekey | undefined;
    return v ? { seed: fromBase64url(v.seed), oneTime: v.oneTime } : null;
  }

  async isHandshakeRecorded(ikPub: Uint8Array, ekPub: Uint8Array): Promise<boolean> {
    return (await this.batch.get(keys.handshake(toHex(ikPub) + toHex(ekPub)))) !== undefined;
  }

  async accountKey(userId: string): Promise<Uint8Array | null> {
    const c = (await this.batch.get(keys.contact(userId))) as StoredContact | undefined;
    if (c) return fromBase64url(c.ak);
    return this.source.fetchAccountKey(userId);
  }

  async commit(change: SessionChange): Promise<void> {
    const b = this.batch;
    b.put(keys.sessions(change.peer.userId, change.peer.deviceId), change.sessions.map(sessionToSnapshot) as unknown as Json);
    if (change.consumedOpkId !== undefined) b.delete(keys.opk(change.consumedOpkId));
    if (change.consumedPqpkId !== undefined) b.delete(keys.pqpk(change.consumedPqpkId));
    if (change.acceptedHandshake) {
      const h = change.acceptedHandshake;
      b.put(keys.handshake(toHex(h.ikPub) + toHex(h.ekPub)), { spkId: h.spkId });
    }
    if (change.provenAccountKey) {
      const { userId, akPub } = change.provenAccountKey;
      if (!(await b.get(keys.contact(userId)))) {
        const contact: StoredContact = { userId, ak: toBase64url(akPub), verified: false, pinnedAt: this.now(), changedAk: null };
        b.put(keys.contact(userId), contact as unknown as Json);
      }
    }
  }
}
