/**
 * An in-memory ProtocolStore for tests, vectors and benchmarks. Sessions are kept serialised, so
 * every operation loads and stores them as a real client does.
 */
import { fromHex, toHex } from './bytes.js';
import type { X25519KeyPair } from './keys.js';
import type { DeviceAddress, PqPrekeySecret, ProtocolStore, SessionChange, SessionState } from './session.js';
import { deserializeSession, serializeSession } from './snapshot.js';

const peerKey = (p: DeviceAddress): string => `${p.deviceId}:${p.userId}`;

export class MemoryProtocolStore implements ProtocolStore {
  private readonly sessions = new Map<string, string[]>();
  readonly signedPrekeys = new Map<number, X25519KeyPair>();
  readonly oneTimePrekeys = new Map<number, X25519KeyPair>();
  readonly pqPrekeys = new Map<number, PqPrekeySecret>();
  /** hex(IK_A_pub || EK_pub) -> SPK id, of every accepted prekey message. */
  readonly acceptedHandshakes = new Map<string, number>();
  readonly pinnedAccountKeys = new Map<string, Uint8Array>();

  async loadSessions(peer: DeviceAddress): Promise<SessionState[]> {
    return (this.sessions.get(peerKey(peer)) ?? []).map(deserializeSession);
  }
  async loadSignedPrekey(id: number): Promise<X25519KeyPair | null> {
    return this.signedPrekeys.get(id) ?? null;
  }
  async loadOneTimePrekey(id: number): Promise<X25519KeyPair | null> {
    return this.oneTimePrekeys.get(id) ?? null;
  }
  async loadPqPrekey(id: number): Promise<PqPrekeySecret | null> {
    return this.pqPrekeys.get(id) ?? null;
  }
  async isHandshakeRecorded(ikPub: Uint8Array, ekPub: Uint8Array): Promise<boolean> {
    return this.acceptedHandshakes.has(toHex(ikPub) + toHex(ekPub));
  }
  async accountKey(userId: string): Promise<Uint8Array | null> {
    return this.pinnedAccountKeys.get(userId) ?? null;
  }
  async commit(change: SessionChange): Promise<void> {
    this.sessions.set(peerKey(change.peer), change.sessions.map(serializeSession));
    if (change.consumedOpkId !== undefined) this.oneTimePrekeys.delete(change.consumedOpkId);
    if (change.consumedPqpkId !== undefined) this.pqPrekeys.delete(change.consumedPqpkId);
    if (change.acceptedHandshake) {
      const h = change.acceptedHandshake;
      this.acceptedHandshakes.set(toHex(h.ikPub) + toHex(h.ekPub), h.spkId);
    }
    if (change.provenAccountKey && !this.pinnedAccountKeys.has(change.provenAccountKey.userId))
      this.pinnedAccountKeys.set(change.provenAccountKey.userId, change.provenAccountKey.akPub);
  }

  /** Drops one session with `peer`, as if its state were lost; the replay record stays. */
  forgetSession(peer: DeviceAddress, sessionId: string): void {
    const list = this.sessions.get(peerKey(peer)) ?? [];
    this.sessions.set(peerKey(peer), list.filter((j) => deserializeSession(j).id !== sessionId));
  }

  /** Everything this store holds, serialised: compare it before and after a refused message, or restore it. */
  dump(): string {
    const sort = <V>(m: Map<string | number, V>, f: (v: V) => unknown): unknown[] => [...m].map(([k, v]) => [k, f(v)]).sort();
    return JSON.stringify({
      sessions: sort(this.sessions, (v) => v),
      spk: sort(this.signedPrekeys, (k) => `${toHex(k.privateKey)}:${toHex(k.publicKey)}`),
      opk: sort(this.oneTimePrekeys, (k) => `${toHex(k.privateKey)}:${toHex(k.publicKey)}`),
      pqpk: sort(this.pqPrekeys, (k) => [toHex(k.seed), k.oneTime]),
      hs: sort(this.acceptedHandshakes, (v) => v),
      aks: sort(this.pinnedAccountKeys, (v) => toHex(v)),
    });
  }

  /** A new store holding exactly what `dump()` saved: a device restarting from disk. */
  static restore(dumped: string): MemoryProtocolStore {
    const d = JSON.parse(dumped) as Record<'sessions' | 'spk' | 'opk' | 'pqpk' | 'hs' | 'aks', [string | number, unknown][]>;
    const s = new MemoryProtocolStore();
    for (const [k, v] of d.sessions) s.sessions.set(String(k), v as string[]);
    for (const [k, v] of d.spk) s.signedPrekeys.set(Number(k), x25519FromPriv(v as string));
    for (const [k, v] of d.opk) s.oneTimePrekeys.set(Number(k), x25519FromPriv(v as string));
    for (const [k, v] of d.pqpk) {
      const [seed, oneTime] = v as [string, boolean];
      s.pqPrekeys.set(Number(k), { seed: fromHex(seed), oneTime });
    }
    for (const [k, v] of d.hs) s.acceptedHandshakes.set(String(k), v as number);
    for (const [k, v] of d.aks) s.pinnedAccountKeys.set(String(k), fromHex(v as string));
    return s;
  }
}

function x25519FromPriv(v: string): X25519KeyPair {
  const [priv, pub] = v.split(':') as [string, string];
  return { privateKey: fromHex(priv), publicKey: fromHex(pub) };
}
