/** Prekey upload, rotation, counts and bundle claims (SPEC §2, §7). */
import { findAccount, findDevice, listDevices, setMaxPrekeyIds } from '../data/accounts.js';
import type { DeviceRef, OneTimePrekeyRow, PqPrekeyRow, SignedPrekeyRow } from '../data/entities.js';
import {
  claimOneTimePqPrekey,
  claimOneTimePrekey,
  countPrekeys,
  currentLastResortPqPrekey,
  currentSignedPrekey,
  insertOneTimePqPrekeys,
  insertOneTimePrekeys,
  oneTimePrekeyIds,
  putLastResortPqPrekey,
  putSignedPrekey,
} from '../data/prekeys.js';
import type { RateLimit } from '../config.js';
import { hitCounters } from '../data/rate-counters.js';
import type { Tx } from '../db.js';
import { bucketOf } from '../rate-limit.js';
import { ApiError } from '../errors.js';
import type { AuthContext, ServiceDeps } from './deps.js';
import { checkIdsUnused, checkPrekeySignatures, type MaxIds, type PrekeyUpload } from './key-checks.js';

export interface PrekeyCounts {
  readonly opks: number;
  /** One-time PQPKs; the last-resort PQPK is not counted. */
  readonly pqpks: number;
}

export interface PrekeyStatus extends PrekeyCounts {
  readonly spkId: number | null;
  readonly lastResortPqpkId: number | null;
  /** The highest id of each kind used so far; the next upload's ids must be above them. */
  readonly maxIds: MaxIds;
  /** The OPKs and one-time PQPKs still held: the device may forget the private keys of the others. */
  readonly oneTimeIds: { readonly opks: readonly number[]; readonly pqpks: readonly number[] };
}

export interface Bundle {
  readonly deviceId: number;
  readonly ikPub: Uint8Array;
  readonly deviceCert: Uint8Array;
  readonly spk: SignedPrekeyRow;
  readonly opk: OneTimePrekeyRow | null;
  readonly pqpk: PqPrekeyRow;
}

export interface Bundles {
  readonly username: string;
  readonly akPub: Uint8Array;
  readonly bundles: readonly Bundle[];
}

/**
 * Stores an upload already checked by checkPrekeySignatures, for a device whose row is locked:
 * checks ids against `max` and the storage bound, then writes. Returns the device's new maxima.
 */
export async function storePrekeys(tx: Tx, deps: ServiceDeps, ref: DeviceRef, u: PrekeyUpload, max: MaxIds): Promise<MaxIds> {
  const next = checkIdsUnused(u, max);
  const now = deps.clock();
  const oneTimePq = u.pqpks.filter((k) => !k.lastResort);
  if (u.opks.length > 0 || oneTimePq.length > 0) {
    const have = await countPrekeys(tx, ref);
    const bound = deps.limits.maxStoredPrekeys;
    if (have.opks + u.opks.length > bound || have.pqpks + oneTimePq.length > bound) {
      throw new ApiError('too_many_prekeys', `a device holds at most ${bound} OPKs and ${bound} one-time PQPKs on the server`);
    }
  }
  if (u.spk) await putSignedPrekey(tx, ref, u.spk, now);
  const lastResort = u.pqpks.find((k) => k.lastResort);
  if (lastResort) await putLastResortPqPrekey(tx, ref, lastResort, now);
  await insertOneTimePrekeys(tx, ref, u.opks);
  await insertOneTimePqPrekeys(tx, ref, oneTimePq, now);
  await setMaxPrekeyIds(tx, ref, next);
  return next;
}

/** Uploads prekeys for the authenticated device; an SPK or last-resort PQPK replaces the current one. */
export async function uploadPrekeys(deps: ServiceDeps, auth: AuthContext, u: PrekeyUpload): Promise<PrekeyCounts> {
  const ref: DeviceRef = { accountId: auth.accountId, deviceId: auth.deviceId };
  // The IK of a device never changes, so the signatures are checked outside the transaction.
  const device = await deps.db.transaction((tx) => findDevice(tx, ref));
  if (!device) throw new ApiError('unauthorized', 'this device has been removed');
  await checkPrekeySignatures(deps.crypto, device.ikPub, u);
  return deps.db.transaction(async (tx) => {
    const locked = await findDevice(tx, ref, { forUpdate: true });
    if (!locked) throw new ApiError('unauthorized', 'this device has been removed');
    await storePrekeys(tx, deps, ref, u, { spk: locked.maxSpkId, opk: locked.maxOpkId, pqpk: locked.maxPqpkId });
    return countPrekeys(tx, ref);
  });
}

export async function prekeyStatus(deps: ServiceDeps, auth: AuthContext): Promise<PrekeyStatus> {
  const ref: DeviceRef = { accountId: auth.accountId, deviceId: auth.deviceId };
  return deps.db.transaction(async (tx) => {
    const device = await findDevice(tx, ref);
    if (!device) throw new ApiError('unauthorized', 'this device has been removed');
    const oneTimeIds = await oneTimePrekeyIds(tx, ref);
    const spk = await currentSignedPrekey(tx, ref);
    const pq = await currentLastResortPqPrekey(tx, ref);
    return {
      opks: oneTimeIds.opks.length,
      pqpks: oneTimeIds.pqpks.length,
      oneTimeIds,
      spkId: spk?.id ?? null,
      lastResortPqpkId: pq?.id ?? null,
      maxIds: { spk: device.maxSpkId, opk: device.maxOpkId, pqpk: device.maxPqpkId },
    };
  });
}

/**
 * One bundle per device of `username` (all, or those in `deviceIds`), the requesting device
 * itself left out. Each claims the device's next OPK and one-time PQPK; with none left the bundle
 * has no OPK and the last-resort PQPK.
 *
 * `budget`: bundles with one-time keys one requesting account may take from one device per
 * window. Past it the bundle is still served, without OPK and with the last-resort PQPK (SPEC §3
 * allows both), so a session can still start but one account cannot drain a device's pool.
 */
export async function fetchBundles(
  deps: ServiceDeps,
  requester: AuthContext,
  username: string,
  deviceIds: readonly number[] | undefined,
  budget: RateLimit,
): Promise<Bundles> {
  const wanted = deviceIds ? new Set(deviceIds) : null;
  return deps.db.transaction(async (tx) => {
    const account = await findAccount(tx, username);
    if (!account) throw new ApiError('not_found', 'no such account');
    const devices = (await listDevices(tx, account.id)).filter(
      (d) => (!wanted || wanted.has(d.deviceId)) && !(account.id === requester.accountId && d.deviceId === requester.deviceId),
    );
    // One statement counts this claim against every device's budget; it commits with the claims.
    const now = deps.clock().getTime();
    const bucket = (deviceId: number) => bucketOf('opk-claims', `${requester.accountId}>${account.id}/${deviceId}`);
    const counts = await hitCounters(tx, devices.map((d) => ({ bucket: bucket(d.deviceId), windowMs: budget.windowSeconds * 1000 })), now);
    const bundles: Bundle[] = [];
    for (const d of devices) {
      const ref: DeviceRef = { accountId: account.id, deviceId: d.deviceId };
      const spk = await currentSignedPrekey(tx, ref);
      const lastResort = await currentLastResortPqPrekey(tx, ref);
      if (!spk || !lastResort) continue; // cannot happen: registration stores both
      const withinBudget = (counts.get(bucket(d.deviceId))?.hits ?? Infinity) <= budget.count;
      const opk = withinBudget ? await claimOneTimePrekey(tx, ref) : null;
      const pqpk = (withinBudget ? await claimOneTimePqPrekey(tx, ref) : null) ?? lastResort;
      bundles.push({ deviceId: d.deviceId, ikPub: d.ikPub, deviceCert: d.deviceCert, spk, opk, pqpk });
    }
    return { username: account.username, akPub: account.akPub, bundles };
  });
}
