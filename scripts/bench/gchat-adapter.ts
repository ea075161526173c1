/**
 * The GChat side of the benchmark, over the session API in src/protocol (session.ts,
 * memory-store.ts, keys.ts). Sessions live in MemoryProtocolStore, which keeps them as JSON
 * snapshots (snapshot.ts): every encrypt and decrypt loads and stores them as a client does.
 * The modules are loaded at run time so that, should they be missing or renamed, the benchmark
 * still prints the libsignal figures and says plainly that the GChat side is unavailable.
 */
import type { CryptoProvider } from '../../src/protocol/primitives.js';
import type { BenchSide, Conversation, HandshakeResult, KdfResult, Party } from './types.js';

type SessionApi = typeof import('../../src/protocol/session.js');
type StoreApi = typeof import('../../src/protocol/memory-store.js');
type KeysApi = typeof import('../../src/protocol/keys.js');
type PrimitivesApi = typeof import('../../src/protocol/primitives.js');
type SnapshotApi = typeof import('../../src/protocol/snapshot.js');
type LocalDevice = import('../../src/protocol/handshake.js').LocalDevice;
type PreKeyBundle = import('../../src/protocol/handshake.js').PreKeyBundle;
type MemoryProtocolStore = import('../../src/protocol/memory-store.js').MemoryProtocolStore;
type ProtocolContext = import('../../src/protocol/session.js').ProtocolContext;

interface Api {
  session: SessionApi;
  store: StoreApi;
  keys: KeysApi;
  primitives: PrimitivesApi;
  snapshot: SnapshotApi;
}

async function loadApi(): Promise<Api> {
  try {
    const [session, store, keys, primitives, snapshot] = await Promise.all([
      import('../../src/protocol/session.js'),
      import('../../src/protocol/memory-store.js'),
      import('../../src/protocol/keys.js'),
      import('../../src/protocol/primitives.js'),
      import('../../src/protocol/snapshot.js'),
    ]);
    for (const f of ['startSession', 'encryptMessage', 'decryptMessage'] as const) {
      if (typeof session[f] !== 'function') throw new Error(`session.${f} is missing`);
    }
    if (typeof store.MemoryProtocolStore !== 'function') throw new Error('MemoryProtocolStore is missing');
    return { session, store, keys, primitives, snapshot };
  } catch (e) {
    throw new Error(`GChat session API not available: ${(e as Error).message}`);
  }
}

/** GChat's key-backup KDF defaults (SPEC §9). */
export const BACKUP_PARAMS = { mKib: 65536, t: 3, p: 1 } as const;

interface Device {
  readonly self: LocalDevice;
  store: MemoryProtocolStore;
  nextPrekeyId: number;
}

export async function gchatSide(provider: CryptoProvider): Promise<BenchSide> {
  const api = await loadApi();
  const { session, keys, primitives } = api;
  const ctx: ProtocolContext = { crypto: provider, random: primitives.systemRandom, now: () => Date.now() };
  const c = ctx.crypto;

  async function makeDevice(userId: string, deviceId: number): Promise<Device> {
    const ak = await keys.generateSigningKeyPair(c, ctx.random);
    const ik = await keys.generateSigningKeyPair(c, ctx.random);
    const deviceCert = await keys.signDeviceCert(c, ak, userId, deviceId, ik.publicKey);
    return { self: { userId, deviceId, ik, akPub: ak.publicKey, deviceCert }, store: new api.store.MemoryProtocolStore(), nextPrekeyId: 1 };
  }

  /** Fresh SPK, OPK and one-time PQPK, stored on `d`; returns the bundle the server would hand out. */
  async function makeBundle(d: Device): Promise<PreKeyBundle> {
    const id = d.nextPrekeyId++;
    const spk = await keys.generateSignedPrekey(c, ctx.random, d.self.ik, id);
    const [opk] = await keys.generateOneTimePrekeys(c, ctx.random, id, 1);
    const pq = await keys.generatePqPrekey(c, ctx.random, d.self.ik, id, true);
    d.store.signedPrekeys.set(id, { privateKey: spk.privateKey, publicKey: spk.publicKey });
    d.store.oneTimePrekeys.set(id, { privateKey: opk!.privateKey, publicKey: opk!.publicKey });
    d.store.pqPrekeys.set(id, { seed: pq.seed, oneTime: true });
    return {
      userId: d.self.userId,
      deviceId: d.self.deviceId,
      ikPub: d.self.ik.publicKey,
      deviceCert: d.self.deviceCert,
      spkId: id,
      spkPub: spk.publicKey,
      spkSig: spk.signature,
      opkId: id,
      opkPub: opk!.publicKey,
      pqpkId: id,
      pqpkPub: pq.publicKey,
      pqpkSig: pq.signature,
    };
  }

  const alice = await makeDevice('@alice:gchat.test', 1);
  const bob = await makeDevice('@bob:gchat.test', 2);
  const addr = (d: Device) => ({ userId: d.self.userId, deviceId: d.self.deviceId });

  /** New, empty session stores; each side knows the other's account key (pinned, as after a first contact). */
  function resetSessions(): void {
    for (const [d, peer] of [
      [alice, bob],
      [bob, alice],
    ] as const) {
      d.store = new api.store.MemoryProtocolStore();
      d.store.pinnedAccountKeys.set(peer.self.userId, peer.self.akPub);
    }
  }

  const send = async (from: Device, to: Device, plaintext: Uint8Array): Promise<Uint8Array> =>
    (await session.encryptMessage(ctx, from.store, addr(to), plaintext)).wire;
  const receive = async (to: Device, from: Device, wire: Uint8Array): Promise<Uint8Array> =>
    (await session.decryptMessage(ctx, to.store, to.self, addr(from), wire)).plaintext;

  return {
    name: 'GChat',
    describe: `src/protocol with the '${provider.name}' CryptoProvider; ML-KEM-768 ${provider.mlKem768?.name ?? primitives.nobleMlKem768.name}; Argon2id ${provider.argon2id ? 'native (@node-rs/argon2)' : 'hash-wasm'}; sessions as JSON snapshots in MemoryProtocolStore`,

    async handshake(plaintext): Promise<HandshakeResult> {
      resetSessions();
      const bundle = await makeBundle(bob);
      await session.startSession(ctx, alice.store, alice.self, bundle);
      const wire = await send(alice, bob, plaintext);
      if (wire[1] !== 0x01) throw new Error('GChat: first message is not a prekey message');
      const pt = await receive(bob, alice, wire);
      if (pt.length !== plaintext.length) throw new Error('GChat: handshake plaintext mismatch');
      return { wireBytes: wire.length };
    },

    async conversation(): Promise<Conversation> {
      resetSessions();
      await session.startSession(ctx, alice.store, alice.self, await makeBundle(bob));
      const hello = new TextEncoder().encode('{"v":1,"kind":"text","body":"hello"}');
      await receive(bob, alice, await send(alice, bob, hello));
      await receive(alice, bob, await send(bob, alice, hello));
      const dev = (p: Party): Device => (p === 'A' ? alice : bob);
      const other = (p: Party): Device => (p === 'A' ? bob : alice);
      return {
        send: (from, plaintext) => send(dev(from), other(from), plaintext),
        receive: (to, wire) => receive(dev(to), other(to), wire),
        async storedSessionBytes(p) {
          const sessions = await dev(p).store.loadSessions(addr(other(p)));
          return sessions.reduce((n, s) => n + api.snapshot.serializeSession(s).length, 0);
        },
      };
    },

    async backupKdf(): Promise<KdfResult & { params: string }> {
      const secret = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz');
      const salt = ctx.random(16);
      const t0 = performance.now();
      const output = await (provider.argon2id ?? primitives.argon2id)(secret, salt, BACKUP_PARAMS.mKib, BACKUP_PARAMS.t, BACKUP_PARAMS.p, 32);
      return { ms: performance.now() - t0, output, params: `m=${BACKUP_PARAMS.mKib} KiB t=${BACKUP_PARAMS.t} p=${BACKUP_PARAMS.p}` };
    },
  };
}

/** GChat's Argon2id at arbitrary parameters, timed: the provider's own if it has one, else primitives.argon2id (hash-wasm). */
export async function gchatArgon2id(
  provider: CryptoProvider | null,
  password: Uint8Array,
  salt: Uint8Array,
  mKib: number,
  t: number,
  p: number,
  length: number,
): Promise<KdfResult> {
  const { primitives } = await loadApi();
  const kdf = provider?.argon2id ?? primitives.argon2id;
  const t0 = performance.now();
  const output = await kdf(password, salt, mKib, t, p, length);
  return { ms: performance.now() - t0, output };
}
