/** SPEC §3: X3DH with an ML-KEM-768 KEM, both sides. */
import { concat, u32, utf8, wipe } from './bytes.js';
import { fail } from './errors.js';
import { type SigningKeyPair, type X25519KeyPair, encodeUserId, verifyDeviceCert, verifyPqpk, verifySpk } from './keys.js';
import { type CryptoProvider, type RandomSource, checkKemPublicKey, dh, identityMontPriv, kemDecapsulate, kemEncapsulate, mont } from './primitives.js';

const X3DH_INFO = utf8('GCHAT-X3DH-v1');
const AD_LABEL = utf8('GCHAT-v1');
const ZERO_SALT = new Uint8Array(32);
const FF_PREFIX = new Uint8Array(32).fill(0xff);

/** What the server hands out for one device (SPEC §2, §3). */
export interface PreKeyBundle {
  readonly userId: string;
  readonly deviceId: number;
  readonly ikPub: Uint8Array;
  readonly deviceCert: Uint8Array;
  readonly spkId: number;
  readonly spkPub: Uint8Array;
  readonly spkSig: Uint8Array;
  readonly opkId: number | null;
  readonly opkPub: Uint8Array | null;
  readonly pqpkId: number;
  readonly pqpkPub: Uint8Array;
  readonly pqpkSig: Uint8Array;
}

/** This device: its names, IK and the certificate its account key gave it. */
export interface LocalDevice {
  readonly userId: string;
  readonly deviceId: number;
  readonly ik: SigningKeyPair;
  readonly akPub: Uint8Array;
  readonly deviceCert: Uint8Array;
}

export interface HandshakeSecrets {
  readonly sk: Uint8Array;
  readonly ad: Uint8Array;
}

export function associatedData(userA: string, deviceA: number, ikA: Uint8Array, userB: string, deviceB: number, ikB: Uint8Array): Uint8Array {
  return concat(AD_LABEL, encodeUserId(userA), u32(deviceA), ikA, encodeUserId(userB), u32(deviceB), ikB);
}

async function deriveSk(c: CryptoProvider, dhs: Uint8Array[], ss: Uint8Array): Promise<Uint8Array> {
  const ikm = concat(FF_PREFIX, ...dhs, ss);
  try {
    return await c.hkdfSha256(ZERO_SALT, ikm, X3DH_INFO, 32);
  } finally {
    wipe(ikm, ...dhs);
  }
}

/** Checks the bundle's three signatures under the peer account's AK (SPEC §2). */
export async function verifyBundle(c: CryptoProvider, bundle: PreKeyBundle, peerAkPub: Uint8Array): Promise<void> {
  if (!(await verifyDeviceCert(c, peerAkPub, bundle.userId, bundle.deviceId, bundle.ikPub, bundle.deviceCert)))
    fail('bad_signature', 'DeviceCert does not verify under the account key');
  if (!(await verifySpk(c, bundle.ikPub, bundle.spkId, bundle.spkPub, bundle.spkSig))) fail('bad_signature', 'SPK signature does not verify');
  if (!(await verifyPqpk(c, bundle.ikPub, bundle.pqpkId, bundle.pqpkPub, bundle.pqpkSig))) fail('bad_signature', 'PQPK signature does not verify');
  if ((bundle.opkId === null) !== (bundle.opkPub === null)) fail('bad_format', 'OPK id and key must both be present or absent');
  if (bundle.opkPub && bundle.opkPub.length !== 32) fail('bad_length', 'OPK must be 32 bytes');
}

export interface InitiatorResult extends HandshakeSecrets {
  /** EK's public key; its private key is wiped once SK is computed (SPEC §3). */
  readonly ekPub: Uint8Array;
  readonly kemCt: Uint8Array;
}

/**
 * Initiator side. Randomness is drawn in a fixed order (EK, then the 32-byte KEM randomness) so a
 * scripted source reproduces the vectors. The caller has verified the bundle.
 */
export async function initiate(c: CryptoProvider, random: RandomSource, self: LocalDevice, bundle: PreKeyBundle): Promise<InitiatorResult> {
  checkKemPublicKey(bundle.pqpkPub);
  const ekPriv = random(32);
  const ekPub = await c.x25519Public(ekPriv);
  const m = random(32);
  const ikMont = await identityMontPriv(c, self.ik.seed); // not wiped: kept beside the seed
  try {
    const dhs = [
      await dh(c, ikMont, bundle.spkPub),
      await dh(c, ekPriv, mont(bundle.ikPub)),
      await dh(c, ekPriv, bundle.spkPub),
    ];
    if (bundle.opkPub) dhs.push(await dh(c, ekPriv, bundle.opkPub));
    const { ct, ss } = await kemEncapsulate(c, bundle.pqpkPub, m);
    const sk = await deriveSk(c, dhs, ss);
    wipe(ss);
    const ad = associatedData(self.userId, self.deviceId, self.ik.publicKey, bundle.userId, bundle.deviceId, bundle.ikPub);
    return { sk, ad, ekPub, kemCt: ct };
  } finally {
    wipe(m, ekPriv);
  }
}

/** The responder's private keys that a prekey message names. */
export interface ResponderPrekeys {
  readonly spk: X25519KeyPair;
  readonly opk: X25519KeyPair | null;
  /** 64-byte ML-KEM seed d || z. */
  readonly pqpkSeed: Uint8Array;
}

export interface InitiatorInfo {
  readonly userId: string;
  readonly deviceId: number;
  readonly ikPub: Uint8Array;
  readonly ekPub: Uint8Array;
  readonly kemCt: Uint8Array;
}

/** Responder side: the same SK and AD from this device's private keys. */
export async function respond(c: CryptoProvider, self: LocalDevice, from: InitiatorInfo, keys: ResponderPrekeys): Promise<HandshakeSecrets> {
  // Not wiped: identityMontPriv keeps it beside the seed it comes from.
  const ikMont = await identityMontPriv(c, self.ik.seed);
  const dhs = [
    await dh(c, keys.spk.privateKey, mont(from.ikPub)),
    await dh(c, ikMont, from.ekPub),
    await dh(c, keys.spk.privateKey, from.ekPub),
  ];
  if (keys.opk) dhs.push(await dh(c, keys.opk.privateKey, from.ekPub));
  const ss = await kemDecapsulate(c, keys.pqpkSeed, from.kemCt);
  const sk = await deriveSk(c, dhs, ss);
  wipe(ss);
  const ad = associatedData(from.userId, from.deviceId, from.ikPub, self.userId, self.deviceId, self.ik.publicKey);
  return { sk, ad };
}
