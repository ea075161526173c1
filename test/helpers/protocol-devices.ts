/** Real devices for protocol tests: generated keys, a MemoryProtocolStore, a bundle to hand out. */
import {
  type LocalDevice,
  type PreKeyBundle,
  type ProtocolContext,
  MemoryProtocolStore,
  defaultCrypto,
  generateOneTimePrekeys,
  generatePqPrekey,
  generateSignedPrekey,
  generateSigningKeyPair,
  signDeviceCert,
  systemRandom,
} from '../../src/protocol/index.js';

export interface TestDevice {
  self: LocalDevice;
  store: MemoryProtocolStore;
  ctx: ProtocolContext;
  /** A bundle with one OPK and the one-time PQPK, as the server would hand out once. */
  bundle: PreKeyBundle;
}

export async function makeDevice(userId: string, deviceId: number, ctx: ProtocolContext = { crypto: defaultCrypto(), random: systemRandom, now: () => Date.now() }): Promise<TestDevice> {
  const c = ctx.crypto;
  const ak = await generateSigningKeyPair(c, ctx.random);
  const ik = await generateSigningKeyPair(c, ctx.random);
  const deviceCert = await signDeviceCert(c, ak, userId, deviceId, ik.publicKey);
  const spk = await generateSignedPrekey(c, ctx.random, ik, 1);
  const [opk] = await generateOneTimePrekeys(c, ctx.random, 1, 1);
  const pq = await generatePqPrekey(c, ctx.random, ik, 1, true);
  const store = new MemoryProtocolStore();
  store.signedPrekeys.set(spk.id, spk);
  store.oneTimePrekeys.set(opk!.id, opk!);
  store.pqPrekeys.set(pq.id, { seed: pq.seed, oneTime: true });
  return {
    self: { userId, deviceId, ik, akPub: ak.publicKey, deviceCert },
    store,
    ctx,
    bundle: {
      userId,
      deviceId,
      ikPub: ik.publicKey,
      deviceCert,
      spkId: spk.id,
      spkPub: spk.publicKey,
      spkSig: spk.signature,
      opkId: opk!.id,
      opkPub: opk!.publicKey,
      pqpkId: pq.id,
      pqpkPub: pq.publicKey,
      pqpkSig: pq.signature,
    },
  };
}

/** Each pins the other's account key, as after trust on first use. */
export function introduce(a: TestDevice, b: TestDevice): void {
  a.store.pinnedAccountKeys.set(b.self.userId, b.self.akPub);
  b.store.pinnedAccountKeys.set(a.self.userId, a.self.akPub);
}

export const addressOf = (d: TestDevice) => ({ userId: d.self.userId, deviceId: d.self.deviceId });
