/**
 * The libsignal side of the benchmark: @signalapp/libsignal-client (AGPL-3.0, a devDependency used
 * by this script only; nothing under src/ may import it). Stores keep every record serialised, as a
 * client's database does: each store call deserialises on load and serialises on save.
 */
import { createRequire } from 'node:module';
import {
  CiphertextMessageType,
  type Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import { PinHash } from '@signalapp/libsignal-client/dist/AccountKeys.js';
import type { BenchSide, Conversation, HandshakeResult, KdfResult, Party } from './types.js';

type Bytes = Uint8Array<ArrayBuffer>;

class SerialisedSessionStore extends SessionStore {
  readonly records = new Map<string, Bytes>();
  async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.records.set(name.toString(), record.serialize());
  }
  async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    const b = this.records.get(name.toString());
    return b ? SessionRecord.deserialize(b) : null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return addresses.map((a) => {
      const b = this.records.get(a.toString());
      if (!b) throw new Error(`no session for ${a.toString()}`);
      return SessionRecord.deserialize(b);
    });
  }
}

class SerialisedIdentityStore extends IdentityKeyStore {
  private readonly identity: Bytes;
  private readonly known = new Map<string, Bytes>();
  constructor(
    identity: IdentityKeyPair,
    private readonly registrationId: number,
  ) {
    super();
    this.identity = identity.privateKey.serialize();
  }
  async getIdentityKey(): Promise<PrivateKey> {
    return PrivateKey.deserialize(this.identity);
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.registrationId;
  }
  async saveIdentity(name: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const k = name.toString();
    const old = this.known.get(k);
    this.known.set(k, key.serialize());
    return old && !PublicKey.deserialize(old).equals(key) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(name: ProtocolAddress, key: PublicKey, _direction: Direction): Promise<boolean> {
    const old = this.known.get(name.toString());
    return !old || PublicKey.deserialize(old).equals(key);
  }
  async getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    const b = this.known.get(name.toString());
    return b ? PublicKey.deserialize(b) : null;
  }
}

class SerialisedPreKeyStore extends PreKeyStore {
  readonly records = new Map<number, Bytes>();
  async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    this.records.set(id, record.serialize());
  }
  async getPreKey(id: number): Promise<PreKeyRecord> {
    const b = this.records.get(id);
    if (!b) throw new Error(`no prekey ${id}`);
    return PreKeyRecord.deserialize(b);
  }
  async removePreKey(id: number): Promise<void> {
    this.records.delete(id);
  }
}

class SerialisedSignedPreKeyStore extends SignedPreKeyStore {
  readonly records = new Map<number, Bytes>();
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    this.records.set(id, record.serialize());
  }
  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const b = this.records.get(id);
    if (!b) throw new Error(`no signed prekey ${id}`);
    return SignedPreKeyRecord.deserialize(b);
  }
}

class SerialisedKyberPreKeyStore extends KyberPreKeyStore {
  readonly records = new Map<number, Bytes>();
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord): Promise<void> {
    this.records.set(id, record.serialize());
  }
  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    const b = this.records.get(id);
    if (!b) throw new Error(`no kyber prekey ${id}`);
    return KyberPreKeyRecord.deserialize(b);
  }
  /** One-time Kyber prekeys are deleted once used, as a client does. */
  async markKyberPreKeyUsed(id: number): Promise<void> {
    this.records.delete(id);
  }
}

/** One device: identity, registration id, address and its stores. */
class Device {
  readonly identity = IdentityKeyPair.generate();
  readonly address: ProtocolAddress;
  sessions = new SerialisedSessionStore();
  identities: SerialisedIdentityStore;
  readonly preKeys = new SerialisedPreKeyStore();
  readonly signedPreKeys = new SerialisedSignedPreKeyStore();
  readonly kyberPreKeys = new SerialisedKyberPreKeyStore();
  private nextId = 1;

  constructor(
    name: string,
    readonly deviceId: number,
    readonly registrationId: number,
  ) {
    this.address = ProtocolAddress.new(name, deviceId);
    this.identities = new SerialisedIdentityStore(this.identity, registrationId);
  }

  /** Drops sessions and known identities (identity keys and prekeys stay). */
  resetSessions(): void {
    this.sessions = new SerialisedSessionStore();
    this.identities = new SerialisedIdentityStore(this.identity, this.registrationId);
  }

  /** Fresh signed, one-time EC and one-time Kyber prekeys, stored; returns the bundle the server would hand out. */
  makeBundle(): PreKeyBundle {
    const id = this.nextId++;
    const now = Date.now();
    const opk = PrivateKey.generate();
    this.preKeys.records.set(id, PreKeyRecord.new(id, opk.getPublicKey(), opk).serialize());
    const spk = PrivateKey.generate();
    const spkSig = this.identity.privateKey.sign(spk.getPublicKey().serialize());
    this.signedPreKeys.records.set(id, SignedPreKeyRecord.new(id, now, spk.getPublicKey(), spk, spkSig).serialize());
    const kem = KEMKeyPair.generate();
    const kemSig = this.identity.privateKey.sign(kem.getPublicKey().serialize());
    this.kyberPreKeys.records.set(id, KyberPreKeyRecord.new(id, now, kem, kemSig).serialize());
    return PreKeyBundle.new(
      this.registrationId,
      this.deviceId,
      id,
      opk.getPublicKey(),
      id,
      spk.getPublicKey(),
      spkSig,
      this.identity.publicKey,
      id,
      kem.getPublicKey(),
      kemSig,
    );
  }

  /** Decrypts wire bytes from `from`; the first byte of our framing says which message type follows. */
  async decrypt(from: Device, wire: Uint8Array): Promise<Bytes> {
    const body = wire.subarray(1) as Bytes;
    if (wire[0] === CiphertextMessageType.PreKey) {
      return signalDecryptPreKey(
        PreKeySignalMessage.deserialize(body),
        from.address,
        this.address,
        this.sessions,
        this.identities,
        this.preKeys,
        this.signedPreKeys,
        this.kyberPreKeys,
      );
    }
    return signalDecrypt(SignalMessage.deserialize(body), from.address, this.address, this.sessions, this.identities);
  }

  /** Encrypts and frames as type byte || serialised message (the envelope carries the type in Signal). */
  async send(to: Device, plaintext: Uint8Array): Promise<Bytes> {
    const m = await signalEncrypt(plaintext as Bytes, to.address, this.address, this.sessions, this.identities);
    const body = m.serialize();
    const out = new Uint8Array(1 + body.length);
    out[0] = m.type();
    out.set(body, 1);
    return out;
  }
}

function packageVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('@signalapp/libsignal-client/package.json') as { version: string }).version;
}

export function libsignalSide(): BenchSide {
  const alice = new Device('a1b2c3d4-0000-4000-8000-00000000000a', 1, 1111);
  const bob = new Device('a1b2c3d4-0000-4000-8000-00000000000b', 2, 2222);
  const kemPubBytes = KEMKeyPair.generate().getPublicKey().serialize().length - 1;
  return {
    name: 'libsignal',
    describe: `@signalapp/libsignal-client ${packageVersion()} (Rust, prebuilt ${process.platform}-${process.arch} binary), PQXDH with a ${kemPubBytes}-byte KEM key (ML-KEM-1024 class)`,

    async handshake(plaintext): Promise<HandshakeResult> {
      alice.resetSessions();
      bob.resetSessions();
      const bundle = bob.makeBundle();
      await processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identities);
      const wire = await alice.send(bob, plaintext);
      if (wire[0] !== CiphertextMessageType.PreKey) throw new Error('libsignal: first message is not a prekey message');
      const pt = await bob.decrypt(alice, wire);
      if (pt.length !== plaintext.length) throw new Error('libsignal: handshake plaintext mismatch');
      return { wireBytes: wire.length };
    },

    async conversation(): Promise<Conversation> {
      alice.resetSessions();
      bob.resetSessions();
      await processPreKeyBundle(bob.makeBundle(), bob.address, alice.address, alice.sessions, alice.identities);
      const hello = new TextEncoder().encode('hello');
      await bob.decrypt(alice, await alice.send(bob, hello));
      await alice.decrypt(bob, await bob.send(alice, hello));
      const dev = (p: Party): Device => (p === 'A' ? alice : bob);
      const other = (p: Party): Device => (p === 'A' ? bob : alice);
      return {
        send: (from, plaintext) => dev(from).send(other(from), plaintext),
        receive: (to, wire) => dev(to).decrypt(other(to), wire),
        storedSessionBytes: async (p) => dev(p).sessions.records.get(other(p).address.toString())?.length ?? 0,
      };
    },

    async backupKdf(): Promise<KdfResult & { params?: string }> {
      return {
        na: 'libsignal has no Argon2id key-backup KDF with settable parameters (its backups use AccountEntropyPool + HKDF); its only Argon2id is PinHash (SVR PIN hashing, fixed m=16384 KiB t=32 p=1): see the next line',
      };
    },
  };
}

/** libsignal's PinHash.fromSalt: Argon2id, m = 16384 KiB, t = 32, p = 1, 64-byte output (encryption key || access key). */
export const PIN_HASH_PARAMS = { mKib: 16384, t: 32, p: 1, length: 64 } as const;

export function libsignalPinHash(pin: Uint8Array, salt32: Uint8Array): KdfResult {
  const t0 = performance.now();
  const h = PinHash.fromSalt(pin as Bytes, salt32 as Bytes);
  const ms = performance.now() - t0;
  const output = new Uint8Array(64);
  output.set(h.encryptionKey);
  output.set(h.accessKey, 32);
  return { ms, output };
}
