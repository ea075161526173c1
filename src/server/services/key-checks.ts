/**
 * Checks on uploaded key material, before anything is stored: every signature (SPEC §2), every
 * ML-KEM key (FIPS 203 §7.2), and the id rules (distinct, and above every id of the same kind the
 * device uploaded before, so no id is ever reused).
 */
import { verifyDeviceCert, verifyPqpk, verifySpk } from '../../protocol/keys.js';
import { checkKemPublicKey, type CryptoProvider } from '../../protocol/primitives.js';
import { PREKEY_TOP_UP } from '../../protocol/limits.js';
import { ApiError } from '../errors.js';

export interface SignedPrekeyInput {
  readonly id: number;
  readonly pub: Uint8Array;
  readonly sig: Uint8Array;
}

export interface OneTimePrekeyInput {
  readonly id: number;
  readonly pub: Uint8Array;
}

export interface PqPrekeyInput {
  readonly id: number;
  readonly pub: Uint8Array;
  readonly sig: Uint8Array;
  readonly lastResort: boolean;
}

export interface PrekeyUpload {
  readonly spk: SignedPrekeyInput | undefined;
  readonly opks: readonly OneTimePrekeyInput[];
  /** One-time and at most one last-resort PQPK, each marked. */
  readonly pqpks: readonly PqPrekeyInput[];
}

export interface NewDeviceInput {
  readonly deviceId: number;
  readonly ikPub: Uint8Array;
  readonly deviceCert: Uint8Array;
  /** Must hold an SPK and exactly one last-resort PQPK. */
  readonly prekeys: PrekeyUpload;
}

/** The highest id of each kind a device has uploaded; -1 when none. */
export interface MaxIds {
  readonly spk: number;
  readonly opk: number;
  readonly pqpk: number;
}

export const NO_IDS: MaxIds = { spk: -1, opk: -1, pqpk: -1 };

export async function checkDeviceCert(c: CryptoProvider, akPub: Uint8Array, username: string, d: NewDeviceInput): Promise<void> {
  if (!(await verifyDeviceCert(c, akPub, username, d.deviceId, d.ikPub, d.deviceCert))) {
    throw new ApiError('bad_signature', "device_cert does not verify under the account's AK for this username, device_id and IK");
  }
}

/** A new device's keys: complete, and signed by its IK. */
export async function checkNewDeviceKeys(c: CryptoProvider, d: NewDeviceInput): Promise<void> {
  if (!d.prekeys.spk) throw new ApiError('inconsistent_request', 'a new device needs an SPK');
  if (!d.prekeys.pqpks.some((k) => k.lastResort)) throw new ApiError('inconsistent_request', 'a new device needs a last-resort PQPK');
  await checkPrekeySignatures(c, d.ikPub, d.prekeys);
}

/** Shape rules and signatures; needs no stored state. */
export async function checkPrekeySignatures(c: CryptoProvider, ikPub: Uint8Array, u: PrekeyUpload): Promise<void> {
  if (u.pqpks.filter((k) => k.lastResort).length > 1) throw new ApiError('inconsistent_request', 'at most one last-resort PQPK per upload');
  if (u.pqpks.filter((k) => !k.lastResort).length > PREKEY_TOP_UP) throw new ApiError('inconsistent_request', `at most ${PREKEY_TOP_UP} one-time PQPKs per upload`);
  distinct('opks', u.opks);
  distinct('pqpks', u.pqpks);
  if (u.spk && !(await verifySpk(c, ikPub, u.spk.id, u.spk.pub, u.spk.sig))) {
    throw new ApiError('bad_signature', "spk.sig does not verify under the device's IK");
  }
  for (const [i, k] of u.pqpks.entries()) {
    try {
      checkKemPublicKey(k.pub);
    } catch {
      throw new ApiError('bad_key', `pqpks[${i}].pub is not a valid ML-KEM-768 encapsulation key`);
    }
    if (!(await verifyPqpk(c, ikPub, k.id, k.pub, k.sig))) {
      throw new ApiError('bad_signature', `pqpks[${i}].sig does not verify under the device's IK`);
    }
  }
}

/** Every id above the device's previous maximum; returns the new maxima. */
export function checkIdsUnused(u: PrekeyUpload, max: MaxIds): MaxIds {
  const above = (kind: string, ids: number[], prev: number): number => {
    for (const id of ids) {
      if (id <= prev) throw new ApiError('prekey_id_reused', `${kind} id ${id} is not above ${prev}, the highest ${kind} id this device used before`);
    }
    return Math.max(prev, ...ids);
  };
  return {
    spk: above('spk', u.spk ? [u.spk.id] : [], max.spk),
    opk: above('opk', u.opks.map((k) => k.id), max.opk),
    pqpk: above('pqpk', u.pqpks.map((k) => k.id), max.pqpk),
  };
}

function distinct(name: string, keys: readonly { id: number }[]): void {
  if (new Set(keys.map((k) => k.id)).size !== keys.length) throw new ApiError('inconsistent_request', `${name} ids must be distinct`);
}
