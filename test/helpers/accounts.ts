/**
 * The client side of the server tests: real key material made with src/protocol, the JSON the
 * API takes, and fetched bundles turned back into the protocol's PreKeyBundle.
 */
import { type BundleJson, bundleFromJson } from '../../src/client/transport/api.js';
import { expect } from 'vitest';
import { fromBase64url, toBase64url as b64 } from '../../src/protocol/bytes.js';
import type { PreKeyBundle } from '../../src/protocol/handshake.js';
import {
  generateOneTimePrekeys,
  generatePqPrekey,
  generateSignedPrekey,
  generateSigningKeyPair,
  signDeviceCert,
  type OneTimePrekey,
  type PqPrekey,
  type SignedPrekey,
  type SigningKeyPair,
} from '../../src/protocol/keys.js';
import { defaultCrypto, systemRandom } from '../../src/protocol/primitives.js';
import type { TestServer } from './server.js';

export const crypto = defaultCrypto();
export const PASSWORD = 'correct horse battery staple';

export interface ClientDevice {
  readonly username: string;
  readonly deviceId: number;
  readonly ik: SigningKeyPair;
  readonly cert: Uint8Array;
  readonly spk: SignedPrekey;
  readonly opks: OneTimePrekey[];
  /** One-time PQPKs. */
  readonly pqpks: PqPrekey[];
  readonly lastResort: PqPrekey;
  token: string;
}

export interface ClientAccount {
  readonly username: string;
  readonly password: string;
  readonly ak: SigningKeyPair;
  readonly devices: ClientDevice[];
}

export interface KeyCounts {
  readonly opks?: number;
  readonly pqpks?: number;
  readonly firstOpkId?: number;
  readonly firstPqpkId?: number;
  readonly spkId?: number;
}

export async function newDeviceKeys(ak: SigningKeyPair, username: string, deviceId: number, k: KeyCounts = {}): Promise<ClientDevice> {
  const ik = await generateSigningKeyPair(crypto, systemRandom);
  const firstPq = k.firstPqpkId ?? 1;
  const pqpks: PqPrekey[] = [];
  for (let i = 0; i < (k.pqpks ?? 5); i++) pqpks.push(await generatePqPrekey(crypto, systemRandom, ik, firstPq + i, true));
  return {
    username,
    deviceId,
    ik,
    cert: await signDeviceCert(crypto, ak, username, deviceId, ik.publicKey),
    spk: await generateSignedPrekey(crypto, systemRandom, ik, k.spkId ?? 1),
    opks: await generateOneTimePrekeys(crypto, systemRandom, k.firstOpkId ?? 1, k.opks ?? 5),
    pqpks,
    lastResort: await generatePqPrekey(crypto, systemRandom, ik, firstPq + pqpks.length, false),
    token: '',
  };
}

export const spkJson = (k: SignedPrekey) => ({ id: k.id, pub: b64(k.publicKey), sig: b64(k.signature) });
export const opkJson = (k: OneTimePrekey) => ({ id: k.id, pub: b64(k.publicKey) });
export const pqpkJson = (k: PqPrekey, lastResort = !k.oneTime) => ({ id: k.id, pub: b64(k.publicKey), sig: b64(k.signature), last_resort: lastResort });

export function newDeviceJson(d: ClientDevice) {
  return {
    device_id: d.deviceId,
    ik: b64(d.ik.publicKey),
    device_cert: b64(d.cert),
    spk: spkJson(d.spk),
    opks: d.opks.map(opkJson),
    pqpks: [...d.pqpks.map((k) => pqpkJson(k)), pqpkJson(d.lastResort, true)],
  };
}

export async function registerBody(username: string, k: KeyCounts = {}) {
  const ak = await generateSigningKeyPair(crypto, systemRandom);
  const device = await newDeviceKeys(ak, username, 1, k);
  return { ak, device, body: { username, password: PASSWORD, ak: b64(ak.publicKey), device: newDeviceJson(device) } };
}

export async function registerAccount(server: TestServer, username: string, k: KeyCounts = {}): Promise<ClientAccount> {
  const { ak, device, body } = await registerBody(username, k);
  const r = await server.call('POST', '/v1/accounts', { body });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  device.token = (r.json as { token: string }).token;
  return { username, password: PASSWORD, ak, devices: [device] };
}

/** Adds a device the way a client does: reads next_device_id, signs its DeviceCert over it, sends it. */
export async function addDevice(server: TestServer, account: ClientAccount, k: KeyCounts = {}): Promise<ClientDevice> {
  const rec = await server.call('GET', `/v1/accounts/${account.username}`);
  const next = (rec.json as { next_device_id: number }).next_device_id;
  const device = await newDeviceKeys(account.ak, account.username, next, k);
  const r = await server.call('POST', `/v1/accounts/${account.username}/devices`, { body: { password: account.password, device: newDeviceJson(device) } });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  device.token = (r.json as { token: string }).token;
  account.devices.push(device);
  return device;
}

export interface BundlesJson {
  username: string;
  ak: string;
  bundles: BundleJson[];
}

/** A fetched bundle in the protocol's shape: the client SDK's own conversion. */
export const fetchedBundleToProtocol = bundleFromJson;

/** Claims `username`'s bundles as `token`'s device; returns the AK and the bundles in the protocol's shape. */
export async function fetchBundlesForProtocol(
  server: TestServer,
  token: string,
  username: string,
  deviceIds?: number[],
): Promise<{ akPub: Uint8Array; bundles: PreKeyBundle[]; raw: BundlesJson }> {
  const r = await server.call('POST', `/v1/accounts/${username}/bundles`, { token, body: deviceIds ? { device_ids: deviceIds } : {} });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const raw = r.json as BundlesJson;
  return { akPub: fromBase64url(raw.ak), bundles: raw.bundles.map((b) => fetchedBundleToProtocol(username, b)), raw };
}
