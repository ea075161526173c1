/**
 * The whole path a client takes: register, back up the AK, recover it on a new device, add that
 * device, upload and rotate prekeys, fetch and verify bundles, remove a device; and the job that
 * deletes replaced SPKs after 30 days.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBase64url, fromUtf8, toBase64url as b64, utf8 } from '../../src/protocol/bytes.js';
import { verifyBundle } from '../../src/protocol/handshake.js';
import { MemoryProtocolStore } from '../../src/protocol/memory-store.js';
import { decryptMessage, encryptMessage, startSession } from '../../src/protocol/session.js';
import { generateOneTimePrekeys, generatePqPrekey, generateSignedPrekey } from '../../src/protocol/keys.js';
import { OLD_SPK_RETENTION_MS } from '../../src/protocol/limits.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { deleteExpiredPrekeys } from '../../src/server/services/prekey-gc.js';
import { AccountOut, BundlesOut, NewDeviceOut, PrekeyCountsOut, PrekeyStatusOut, RecoveredBackupOut } from '../../src/server/routes/schemas.js';
import {
  addDevice,
  crypto,
  fetchBundlesForProtocol,
  newDeviceJson,
  newDeviceKeys,
  opkJson,
  pqpkJson,
  registerAccount,
  registerBody,
  spkJson,
  type ClientAccount,
} from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

await describeEachDatabase('register -> add device -> upload -> bundles', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let now = new Date('2026-01-01T00:00:00Z');
  let alice: ClientAccount;
  let bob: ClientAccount;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, { overrides: { clock: () => now } });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('registers accounts with their first device and serves the AK and certificates', async () => {
    alice = await registerAccount(server, 'alice', { opks: 10, pqpks: 10 });
    bob = await registerAccount(server, 'bob', { opks: 3, pqpks: 3 });
    const r = await server.call('GET', '/v1/accounts/alice');
    expect(r.status).toBe(200);
    const rec = AccountOut.parse(r.json);
    expect(rec.ak).toBe(b64(alice.ak.publicKey));
    expect(rec.next_device_id).toBe(2);
    expect(rec.devices.map((d) => d.device_id)).toEqual([1]);
    expect(rec.devices[0]!.device_cert).toBe(b64(alice.devices[0]!.cert));
    expect(alice.devices[0]!.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a second account with the same username, and leaves the first intact', async () => {
    const { body } = await registerBody('alice');
    const r = await server.call('POST', '/v1/accounts', { body });
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ error: { code: 'username_taken' } });
    const rec = AccountOut.parse((await server.call('GET', '/v1/accounts/alice')).json);
    expect(rec.ak).toBe(b64(alice.ak.publicKey));
  });

  it('stores the key backup blob opaquely and returns it to the account and to the password', async () => {
    const blob = systemRandom(120);
    const put = await server.call('PUT', '/v1/accounts/alice/backup', { token: alice.devices[0]!.token, body: { blob: b64(blob) } });
    expect(put.status).toBe(204);
    const get = await server.call('GET', '/v1/accounts/alice/backup', { token: alice.devices[0]!.token });
    expect(get.status).toBe(200);
    expect((get.json as { blob: string }).blob).toBe(b64(blob));
    const rec = await server.call('POST', '/v1/accounts/alice/backup/recover', { body: { password: alice.password } });
    expect(rec.status).toBe(200);
    const parsed = RecoveredBackupOut.parse(rec.json);
    expect(fromBase64url(parsed.blob)).toEqual(blob);
    expect(parsed.next_device_id).toBe(2);
    const wrong = await server.call('POST', '/v1/accounts/alice/backup/recover', { body: { password: 'not the password' } });
    expect(wrong.status).toBe(401);
    expect(await server.call('GET', '/v1/accounts/bob/backup', { token: bob.devices[0]!.token })).toMatchObject({ status: 404 });
  });

  it('adds a device whose DeviceCert the AK signed over next_device_id', async () => {
    const d2 = await addDevice(server, alice, { opks: 4, pqpks: 4, firstOpkId: 1000, firstPqpkId: 2000, spkId: 7 });
    expect(d2.deviceId).toBe(2);
    const rec = AccountOut.parse((await server.call('GET', '/v1/accounts/alice')).json);
    expect(rec.devices.map((d) => d.device_id)).toEqual([1, 2]);
    expect(rec.next_device_id).toBe(3);
    // The id is taken now: a device signed for 2 again is refused.
    const again = await newDeviceKeys(alice.ak, 'alice', 2);
    const r = await server.call('POST', '/v1/accounts/alice/devices', { body: { password: alice.password, device: newDeviceJson(again) } });
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ error: { code: 'device_id_mismatch' } });
  });

  it('hands out verifiable bundles, one OPK and one one-time PQPK per device per fetch', async () => {
    const { akPub, bundles, raw } = await fetchBundlesForProtocol(server, bob.devices[0]!.token, 'alice');
    BundlesOut.parse(raw);
    expect(akPub).toEqual(alice.ak.publicKey);
    expect(bundles.map((b) => b.deviceId)).toEqual([1, 2]);
    for (const b of bundles) await verifyBundle(crypto, b, akPub);
    const [b1, b2] = bundles as [(typeof bundles)[0], (typeof bundles)[0]];
    expect(b1.opkId).toBe(alice.devices[0]!.opks[0]!.id);
    expect(b1.opkPub).toEqual(alice.devices[0]!.opks[0]!.publicKey);
    expect(b1.pqpkId).toBe(alice.devices[0]!.pqpks[0]!.id);
    expect(b2.spkId).toBe(7);
    expect(b2.opkId).toBe(1000);
    expect(b2.pqpkId).toBe(2000);
    const counts = await server.call('GET', '/v1/accounts/alice/devices/1/keys', { token: alice.devices[0]!.token });
    expect(PrekeyStatusOut.parse(counts.json)).toMatchObject({ opk_count: 9, pqpk_count: 9, spk_id: 1, max_ids: { opk: 10, pqpk: 11, spk: 1 } });
  });

  it('a session started from a fetched bundle decrypts at the other side', async () => {
    const { akPub, bundles } = await fetchBundlesForProtocol(server, bob.devices[0]!.token, 'alice');
    const target = alice.devices[0]!;
    const bundle = bundles.find((b) => b.deviceId === target.deviceId)!;
    // Bob's side: his device keys and Alice's AK as fetched (trust on first use).
    const bobDevice = bob.devices[0]!;
    const bobStore = new MemoryProtocolStore();
    bobStore.pinnedAccountKeys.set('alice', akPub);
    const ctx = { crypto, random: systemRandom, now: () => Date.now() };
    const bobSelf = { userId: 'bob', deviceId: bobDevice.deviceId, ik: bobDevice.ik, akPub: bob.ak.publicKey, deviceCert: bobDevice.cert };
    await startSession(ctx, bobStore, bobSelf, bundle);
    const sealed = await encryptMessage(ctx, bobStore, { userId: 'alice', deviceId: target.deviceId }, utf8('{"v":1,"hello":"alice"}'));
    // Alice's side: the private halves of exactly the keys the server handed out.
    const aliceStore = new MemoryProtocolStore();
    aliceStore.pinnedAccountKeys.set('bob', bob.ak.publicKey);
    aliceStore.signedPrekeys.set(target.spk.id, target.spk);
    for (const k of target.opks) aliceStore.oneTimePrekeys.set(k.id, k);
    for (const k of [...target.pqpks, target.lastResort]) aliceStore.pqPrekeys.set(k.id, { seed: k.seed, oneTime: k.oneTime });
    const aliceSelf = { userId: 'alice', deviceId: target.deviceId, ik: target.ik, akPub: alice.ak.publicKey, deviceCert: target.cert };
    const opened = await decryptMessage(ctx, aliceStore, aliceSelf, { userId: 'bob', deviceId: bobDevice.deviceId }, sealed.wire);
    expect(fromUtf8(opened.plaintext)).toBe('{"v":1,"hello":"alice"}');
    expect(aliceStore.oneTimePrekeys.has(bundle.opkId!)).toBe(false);
  });

  it("leaves the requesting device out of its own account's bundles, and fetches only the devices asked for", async () => {
    const own = await fetchBundlesForProtocol(server, alice.devices[0]!.token, 'alice');
    expect(own.bundles.map((b) => b.deviceId)).toEqual([2]);
    const some = await fetchBundlesForProtocol(server, bob.devices[0]!.token, 'alice', [1]);
    expect(some.bundles.map((b) => b.deviceId)).toEqual([1]);
  });

  it('falls back to no OPK and the last-resort PQPK when the one-time keys run out', async () => {
    const bobDevice = bob.devices[0]!;
    for (let i = 0; i < 3; i++) {
      const { bundles } = await fetchBundlesForProtocol(server, alice.devices[0]!.token, 'bob');
      expect(bundles[0]!.opkId).toBe(bobDevice.opks[i]!.id);
      expect(bundles[0]!.pqpkId).toBe(bobDevice.pqpks[i]!.id);
    }
    const { akPub, bundles } = await fetchBundlesForProtocol(server, alice.devices[0]!.token, 'bob');
    const b = bundles[0]!;
    await verifyBundle(crypto, b, akPub);
    expect(b.opkId).toBeNull();
    expect(b.opkPub).toBeNull();
    expect(b.pqpkId).toBe(bobDevice.lastResort.id);
    const raw = await server.call('GET', '/v1/accounts/bob/devices/1/keys', { token: bobDevice.token });
    expect(raw.json).toMatchObject({ opk_count: 0, pqpk_count: 0, last_resort_pqpk_id: bobDevice.lastResort.id });
  });

  it('tops up prekeys and rotates the SPK and the last-resort PQPK; the new ones are served', async () => {
    const d = bob.devices[0]!;
    const opks = await generateOneTimePrekeys(crypto, systemRandom, 100, 20);
    const pq = [];
    for (let i = 0; i < 20; i++) pq.push(await generatePqPrekey(crypto, systemRandom, d.ik, 100 + i, true));
    const lastResort = await generatePqPrekey(crypto, systemRandom, d.ik, 200, false);
    const spk = await generateSignedPrekey(crypto, systemRandom, d.ik, 2);
    const r = await server.call('POST', '/v1/accounts/bob/devices/1/keys', {
      token: d.token,
      body: { spk: spkJson(spk), opks: opks.map(opkJson), pqpks: [...pq.map((k) => pqpkJson(k)), pqpkJson(lastResort, true)] },
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(PrekeyCountsOut.parse(r.json)).toEqual({ opk_count: 20, pqpk_count: 20 });
    const { akPub, bundles } = await fetchBundlesForProtocol(server, alice.devices[0]!.token, 'bob');
    await verifyBundle(crypto, bundles[0]!, akPub);
    expect(bundles[0]).toMatchObject({ spkId: 2, opkId: 100, pqpkId: 100 });
    const status = await server.call('GET', '/v1/accounts/bob/devices/1/keys', { token: d.token });
    expect(status.json).toMatchObject({ spk_id: 2, last_resort_pqpk_id: 200, max_ids: { spk: 2, opk: 119, pqpk: 200 } });
  });

  it('refuses prekey ids used before, even once the key is gone', async () => {
    const d = bob.devices[0]!;
    const [old] = await generateOneTimePrekeys(crypto, systemRandom, 1, 1); // id 1 was handed out above
    const r = await server.call('POST', '/v1/accounts/bob/devices/1/keys', { token: d.token, body: { opks: [opkJson(old!)] } });
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ error: { code: 'prekey_id_reused' } });
    const spk = await generateSignedPrekey(crypto, systemRandom, d.ik, 1);
    const s = await server.call('POST', '/v1/accounts/bob/devices/1/keys', { token: d.token, body: { spk: spkJson(spk) } });
    expect(s.status).toBe(409);
  });

  it('deletes replaced SPKs 30 days after their replacement, not before', async () => {
    const count = () => t.db.transaction(async (tx) => (await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM signed_prekeys')).rows[0]!.n);
    const before = await count();
    const replacedAt = now.getTime();
    expect(await deleteExpiredPrekeys({ db: t.db, clock: () => new Date(replacedAt + OLD_SPK_RETENTION_MS - 60_000) })).toEqual({ spks: 0, pqpks: 0 });
    expect(await count()).toBe(before);
    expect(await deleteExpiredPrekeys({ db: t.db, clock: () => new Date(replacedAt + OLD_SPK_RETENTION_MS + 60_000) })).toEqual({ spks: 1, pqpks: 1 });
    expect(await count()).toBe(before - 1);
    const { akPub, bundles } = await fetchBundlesForProtocol(server, alice.devices[0]!.token, 'bob');
    await verifyBundle(crypto, bundles[0]!, akPub);
    expect(bundles[0]!.spkId).toBe(2);
  });

  it("removes a device: its token, certificate and keys are gone, its id is never reused", async () => {
    const d2 = alice.devices[1]!;
    const r = await server.call('DELETE', '/v1/accounts/alice/devices/2', { token: alice.devices[0]!.token });
    expect(r.status).toBe(204);
    expect((await server.call('GET', '/v1/accounts/alice/devices/2/keys', { token: d2.token })).status).toBe(401);
    const rec = AccountOut.parse((await server.call('GET', '/v1/accounts/alice')).json);
    expect(rec.devices.map((d) => d.device_id)).toEqual([1]);
    expect(rec.next_device_id).toBe(3);
    const { bundles } = await fetchBundlesForProtocol(server, bob.devices[0]!.token, 'alice');
    expect(bundles.map((b) => b.deviceId)).toEqual([1]);
    const left = await t.db.transaction(async (tx) => (await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM one_time_prekeys WHERE device_id = 2")).rows[0]!.n);
    expect(left).toBe(0);
    expect((await server.call('DELETE', '/v1/accounts/alice/devices/2', { token: alice.devices[0]!.token })).status).toBe(404);
    const d3 = await addDevice(server, alice);
    expect(d3.deviceId).toBe(3);
    NewDeviceOut.parse({ username: 'alice', device_id: d3.deviceId, token: d3.token });
  });

  it('lets a device remove itself', async () => {
    const d3 = alice.devices[2]!;
    expect((await server.call('DELETE', '/v1/accounts/alice/devices/3', { token: d3.token })).status).toBe(204);
    expect((await server.call('GET', '/v1/accounts/alice/devices/3/keys', { token: d3.token })).status).toBe(401);
  });

  describe('operations', () => {
    it('serves /live, /ready and the OpenAPI document; /metrics is not open without a token (test/server/operations.test.ts)', async () => {
      expect((await server.call('GET', '/live')).status).toBe(200);
      expect((await server.call('GET', '/ready')).status).toBe(200);
      expect((await server.call('GET', '/metrics')).status).toBe(404);
      const doc = (await server.call('GET', '/v1/openapi.json')).json as { openapi: string };
      expect(doc.openapi).toBe('3.1.0');
    });
  });
});
