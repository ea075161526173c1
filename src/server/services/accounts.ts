/**
 * Accounts and devices: register, add and remove a device, the public account record (AK and
 * device certificates), and the opaque key backup blob (SPEC §9).
 *
 * Device ids: the first device of an account is device 1; each added device must use the
 * account's `next_device_id` (public in the account record), which then goes up by one, so an id
 * is never used twice. The client signs its DeviceCert over that id before it sends it; two
 * devices added at once race for the same id, and the loser gets 409 and signs again.
 */
import { equalBytes } from '../../protocol/bytes.js';
import {
  findAccount,
  findTokenOwner,
  getBackup,
  insertAccount,
  insertDevice,
  listDevices,
  markDeviceRemoved,
  setBackup,
  setNextDeviceId,
} from '../data/accounts.js';
import type { AccountRow, BackupRow, DeviceRef, DeviceRow } from '../data/entities.js';
import { deleteDevicePrekeys } from '../data/prekeys.js';
import type { Tx } from '../db.js';
import { ApiError, loggableError } from '../errors.js';
import type { AuthContext, ServiceDeps } from './deps.js';
import { checkDeviceCert, checkNewDeviceKeys, NO_IDS, type NewDeviceInput } from './key-checks.js';
import { storePrekeys } from './prekeys.js';
import { hashesEqual, hashToken, newDeviceToken, TOKEN_PATTERN } from './tokens.js';

export const FIRST_DEVICE_ID = 1;

export interface NewDevice {
  readonly deviceId: number;
  /** Shown once; the server keeps only its hash. */
  readonly token: string;
}

export interface AccountRecord {
  readonly username: string;
  readonly akPub: Uint8Array;
  readonly devices: readonly DeviceRow[];
  readonly nextDeviceId: number;
}

export interface Backup extends BackupRow {
  readonly nextDeviceId: number;
}

export async function register(
  deps: ServiceDeps,
  input: { username: string; password: string; akPub: Uint8Array; device: NewDeviceInput; backup: Uint8Array | undefined },
): Promise<NewDevice> {
  const { device } = input;
  if (device.deviceId !== FIRST_DEVICE_ID) throw new ApiError('device_id_mismatch', `the first device of an account is device ${FIRST_DEVICE_ID}`);
  checkBackupSize(deps, input.backup);
  await checkDeviceCert(deps.crypto, input.akPub, input.username, device);
  await checkNewDeviceKeys(deps.crypto, device);
  const passwordHash = await deps.passwords.hash(input.password);
  const { token, hash } = newDeviceToken(deps.random);
  await deps.db.transaction(async (tx) => {
    const now = deps.clock();
    const account = await insertAccount(tx, { username: input.username, passwordHash, akPub: input.akPub, nextDeviceId: FIRST_DEVICE_ID, now });
    if (!account) throw new ApiError('username_taken', 'this username is taken');
    await addDeviceRows(tx, deps, account, device, hash);
    if (input.backup) await setBackup(tx, account.id, input.backup, now);
  });
  return { deviceId: device.deviceId, token };
}

/** Adds a device to an account, given the account's password and a DeviceCert signed by its AK. */
export async function addDevice(deps: ServiceDeps, input: { username: string; password: string; device: NewDeviceInput }): Promise<NewDevice> {
  const account = await checkPassword(deps, input.username, input.password);
  await checkDeviceCert(deps.crypto, account.akPub, account.username, input.device);
  await checkNewDeviceKeys(deps.crypto, input.device);
  const { token, hash } = newDeviceToken(deps.random);
  await deps.db.transaction(async (tx) => {
    const locked = await findAccount(tx, input.username, { forUpdate: true });
    // The AK the certificate was checked under must still be the account's.
    if (!locked || !equalBytes(locked.akPub, account.akPub)) throw new ApiError('bad_credentials', 'wrong username or password');
    await addDeviceRows(tx, deps, locked, input.device, hash);
  });
  return { deviceId: input.device.deviceId, token };
}

/** Inserts a checked device under a locked (or new) account row and moves next_device_id on. */
async function addDeviceRows(tx: Tx, deps: ServiceDeps, account: AccountRow, device: NewDeviceInput, tokenHash: Uint8Array): Promise<void> {
  if (device.deviceId !== account.nextDeviceId) {
    throw new ApiError('device_id_mismatch', `device_id must be ${account.nextDeviceId}, this account's next device id`);
  }
  if ((await listDevices(tx, account.id)).length >= deps.limits.maxDevicesPerAccount) {
    throw new ApiError('too_many_devices', `an account has at most ${deps.limits.maxDevicesPerAccount} devices; remove one first`);
  }
  const ref: DeviceRef = { accountId: account.id, deviceId: device.deviceId };
  await insertDevice(tx, { ...ref, ikPub: device.ikPub, deviceCert: device.deviceCert, tokenHash, ...maxColumns(NO_IDS), now: deps.clock() });
  await storePrekeys(tx, deps, ref, device.prekeys, NO_IDS);
  await setNextDeviceId(tx, account.id, device.deviceId + 1);
}

const maxColumns = (m: { spk: number; opk: number; pqpk: number }) => ({ maxSpkId: m.spk, maxOpkId: m.opk, maxPqpkId: m.pqpk });

/**
 * Removes one of the caller's account's devices: its token stops working, its certificate and
 * keys are no longer served, its id is never used again. Hooks registered on
 * `deps.deviceRemoval` run inside the same transaction and after it commits.
 */
export async function removeDevice(deps: ServiceDeps, auth: AuthContext, deviceId: number): Promise<void> {
  const event = { accountId: auth.accountId, username: auth.username, deviceId };
  await deps.db.transaction(async (tx) => {
    const ref: DeviceRef = { accountId: auth.accountId, deviceId };
    if (!(await markDeviceRemoved(tx, ref, deps.clock()))) throw new ApiError('not_found', 'this account has no such device');
    await deleteDevicePrekeys(tx, ref);
    await deps.deviceRemoval.runInTransaction(tx, event);
  });
  await deps.deviceRemoval.runAfterCommit(event, (err) => deps.log.error({ error: loggableError(err), deviceId }, 'device removal hook failed'));
}

/** The public record clients pin (AK) and check devices against (certificates). */
export async function getAccount(deps: ServiceDeps, username: string): Promise<AccountRecord> {
  return deps.db.transaction(async (tx) => {
    const account = await findAccount(tx, username);
    if (!account) throw new ApiError('not_found', 'no such account');
    return { username: account.username, akPub: account.akPub, devices: await listDevices(tx, account.id), nextDeviceId: account.nextDeviceId };
  });
}

export async function putBackup(deps: ServiceDeps, auth: AuthContext, blob: Uint8Array): Promise<void> {
  checkBackupSize(deps, blob);
  await deps.db.transaction((tx) => setBackup(tx, auth.accountId, blob, deps.clock()));
}

export async function readBackup(deps: ServiceDeps, auth: AuthContext): Promise<BackupRow> {
  const backup = await deps.db.transaction((tx) => getBackup(tx, auth.accountId));
  if (!backup) throw new ApiError('not_found', 'this account has no key backup');
  return backup;
}

/** For a device being added: the blob (to recover the AK from) and the device id to sign. */
export async function recoverBackup(deps: ServiceDeps, username: string, password: string): Promise<Backup> {
  const account = await checkPassword(deps, username, password);
  const backup = await deps.db.transaction((tx) => getBackup(tx, account.id));
  if (!backup) throw new ApiError('not_found', 'this account has no key backup');
  return { ...backup, nextDeviceId: account.nextDeviceId };
}

/** The device a token belongs to, or null (unknown, malformed, or its device removed). */
export async function authenticateToken(deps: Pick<ServiceDeps, 'db'>, token: string): Promise<AuthContext | null> {
  if (!TOKEN_PATTERN.test(token)) return null;
  const hash = hashToken(token);
  const owner = await deps.db.transaction((tx) => findTokenOwner(tx, hash));
  if (!owner || !hashesEqual(owner.tokenHash, hash)) return null;
  return { accountId: owner.accountId, username: owner.username, deviceId: owner.deviceId };
}

async function checkPassword(deps: ServiceDeps, username: string, password: string): Promise<AccountRow> {
  const account = await deps.db.transaction((tx) => findAccount(tx, username));
  // An unknown username costs the same Argon2id work as a known one: no timing oracle.
  if (!account) await deps.passwords.verifyNone(password);
  if (!account || !(await deps.passwords.verify(account.passwordHash, password))) {
    throw new ApiError('bad_credentials', 'wrong username or password');
  }
  return account;
}

function checkBackupSize(deps: ServiceDeps, blob: Uint8Array | undefined): void {
  if (blob && blob.length > deps.limits.maxBackupBytes) {
    throw new ApiError('payload_too_large', `a key backup is at most ${deps.limits.maxBackupBytes} bytes`);
  }
}
