/**
 * Every route refuses what it must with the right 4xx and the error format, and a refused request
 * changes nothing: no token, an unknown, another account's, another device's or a removed
 * device's token, malformed and oversized bodies, bad path parameters, wrong signatures, reused
 * ids, exceeded bounds and rate limits.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toBase64url as b64 } from '../../src/protocol/bytes.js';
import { generateOneTimePrekeys, generatePqPrekey, generateSignedPrekey, generateSigningKeyPair, signDeviceCert } from '../../src/protocol/keys.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import {
  addDevice,
  crypto,
  newDeviceJson,
  newDeviceKeys,
  opkJson,
  pqpkJson,
  registerAccount,
  registerBody,
  spkJson,
  type ClientAccount,
} from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, snapshotTables, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type CallResult, type TestServer } from '../helpers/server.js';

const MAX_BODY = 64 * 1024;
const MAX_BACKUP = 1024;

interface Case {
  readonly name: string;
  readonly run: () => Promise<CallResult>;
  readonly status: number;
  readonly code?: string;
}

await describeEachDatabase('refusals change nothing', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let alice: ClientAccount;
  let bob: ClientAccount;
  let removedToken: string;
  const unknownToken = b64(new Uint8Array(32).fill(7));

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, {
      env: { GCHAT_MAX_BODY_BYTES: String(MAX_BODY), GCHAT_MAX_BACKUP_BYTES: String(MAX_BACKUP), GCHAT_MAX_STORED_PREKEYS: '30', GCHAT_MAX_DEVICES_PER_ACCOUNT: '3' },
    });
    alice = await registerAccount(server, 'alice', { opks: 10, pqpks: 10 });
    bob = await registerAccount(server, 'bob', { opks: 2, pqpks: 2 });
    await addDevice(server, alice, { opks: 2, pqpks: 2 });
    const removed = await addDevice(server, alice, { opks: 2, pqpks: 2 });
    removedToken = removed.token;
    expect((await server.call('DELETE', `/v1/accounts/alice/devices/${removed.deviceId}`, { token: alice.devices[0]!.token })).status).toBe(204);
    await addDevice(server, alice, { opks: 2, pqpks: 2 }); // device 4: alice now has 3 devices, the bound
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const a1 = () => alice.devices[0]!;
  const validUpload = async () => {
    const opks = await generateOneTimePrekeys(crypto, systemRandom, 5000, 2);
    return { opks: opks.map(opkJson) };
  };

  /** Authenticated routes, each with a request that would succeed for alice's device 1. */
  const authed = (): { name: string; method: string; path: string; body?: () => Promise<unknown>; crossAccount: boolean }[] => [
    { name: 'remove device', method: 'DELETE', path: '/v1/accounts/alice/devices/2', crossAccount: true },
    { name: 'put backup', method: 'PUT', path: '/v1/accounts/alice/backup', body: async () => ({ blob: b64(systemRandom(64)) }), crossAccount: true },
    { name: 'get backup', method: 'GET', path: '/v1/accounts/alice/backup', crossAccount: true },
    { name: 'upload keys', method: 'POST', path: '/v1/accounts/alice/devices/1/keys', body: validUpload, crossAccount: true },
    { name: 'key counts', method: 'GET', path: '/v1/accounts/alice/devices/1/keys', crossAccount: true },
    { name: 'bundles', method: 'POST', path: '/v1/accounts/alice/bundles', body: async () => ({}), crossAccount: false },
  ];

  function cases(): Case[] {
    const out: Case[] = [];
    for (const r of authed()) {
      const send = (token?: string, headers?: Record<string, string>) => async () =>
        server.call(r.method, r.path, { ...(token !== undefined ? { token } : {}), ...(r.body ? { body: await r.body() } : {}), ...(headers ? { headers } : {}) });
      out.push({ name: `${r.name}: no token`, run: send(), status: 401, code: 'unauthorized' });
      out.push({ name: `${r.name}: unknown token`, run: send(unknownToken), status: 401, code: 'unauthorized' });
      out.push({ name: `${r.name}: malformed token`, run: send('not a token!'), status: 401, code: 'unauthorized' });
      out.push({ name: `${r.name}: basic auth`, run: send(undefined, { authorization: `Basic ${btoa('alice:x')}` }), status: 401, code: 'unauthorized' });
      out.push({ name: `${r.name}: removed device's token`, run: send(removedToken), status: 401, code: 'unauthorized' });
      if (r.crossAccount) out.push({ name: `${r.name}: another account's token`, run: send(bob.devices[0]!.token), status: 403, code: 'forbidden' });
    }
    const a2 = () => alice.devices[1]!.token;
    out.push({ name: "upload keys: another device's token", run: async () => server.call('POST', '/v1/accounts/alice/devices/1/keys', { token: a2(), body: await validUpload() }), status: 403, code: 'forbidden' });
    out.push({ name: "key counts: another device's token", run: () => server.call('GET', '/v1/accounts/alice/devices/1/keys', { token: a2() }), status: 403, code: 'forbidden' });
    out.push({ name: 'remove a device the account does not have', run: () => server.call('DELETE', '/v1/accounts/alice/devices/77', { token: a1().token }), status: 404, code: 'not_found' });
    out.push({ name: 'remove an already removed device', run: () => server.call('DELETE', '/v1/accounts/alice/devices/3', { token: a1().token }), status: 404, code: 'not_found' });

    // Bodies: malformed, of the wrong shape, too large.
    const bodyRoutes: [string, string, string | undefined][] = [
      ['POST', '/v1/accounts', undefined],
      ['POST', '/v1/accounts/alice/devices', undefined],
      ['POST', '/v1/accounts/alice/backup/recover', undefined],
      ['PUT', '/v1/accounts/alice/backup', 'a1'],
      ['POST', '/v1/accounts/alice/devices/1/keys', 'a1'],
      ['POST', '/v1/accounts/alice/bundles', 'a1'],
    ];
    for (const [method, path, auth] of bodyRoutes) {
      const token = () => (auth ? { token: a1().token } : {});
      const isBundles = path.endsWith('/bundles');
      out.push({ name: `${method} ${path}: invalid JSON`, run: () => server.call(method, path, { ...token(), rawBody: '{"username": ' }), status: 400, code: 'malformed_json' });
      out.push({ name: `${method} ${path}: a JSON string`, run: () => server.call(method, path, { ...token(), rawBody: '"hello"' }), status: 400, code: 'malformed_json' });
      out.push({ name: `${method} ${path}: an array`, run: () => server.call(method, path, { ...token(), body: [1, 2] }), status: 400, code: 'invalid_request' });
      out.push({
        name: `${method} ${path}: oversized`,
        run: () => server.call(method, path, { ...token(), body: { padding: 'x'.repeat(MAX_BODY + 10) } }),
        status: 413,
        code: 'payload_too_large',
      });
      // An empty upload is a valid no-op (it answers the counts).
      if (!isBundles && !path.endsWith('/keys')) {
        out.push({ name: `${method} ${path}: empty object`, run: () => server.call(method, path, { ...token(), body: {} }), status: 400, code: 'invalid_request' });
        out.push({ name: `${method} ${path}: no body`, run: () => server.call(method, path, { ...token() }), status: 400, code: 'invalid_request' });
      }
    }
    out.push({ name: 'bundles: device_ids of the wrong type', run: () => server.call('POST', '/v1/accounts/alice/bundles', { token: a1().token, body: { device_ids: 'all' } }), status: 400, code: 'invalid_request' });

    // Path parameters.
    out.push({ name: 'account with an invalid username', run: () => server.call('GET', '/v1/accounts/ALICE'), status: 400, code: 'invalid_request' });
    out.push({ name: 'unknown account', run: () => server.call('GET', '/v1/accounts/nobody'), status: 404, code: 'not_found' });
    out.push({ name: 'bundles of an unknown account', run: () => server.call('POST', '/v1/accounts/nobody/bundles', { token: a1().token, body: {} }), status: 404, code: 'not_found' });
    out.push({ name: 'device id not a number', run: () => server.call('GET', '/v1/accounts/alice/devices/one/keys', { token: a1().token }), status: 400, code: 'invalid_request' });
    out.push({ name: 'device id 0', run: () => server.call('DELETE', '/v1/accounts/alice/devices/0', { token: a1().token }), status: 400, code: 'invalid_request' });
    out.push({ name: 'device id above u32', run: () => server.call('DELETE', '/v1/accounts/alice/devices/4294967296', { token: a1().token }), status: 400, code: 'invalid_request' });
    out.push({ name: 'unknown route', run: () => server.call('GET', '/v1/nothing'), status: 404, code: 'not_found' });
    out.push({ name: 'unknown method', run: () => server.call('PATCH', '/v1/accounts/alice'), status: 404, code: 'not_found' });

    // Registration: signatures, keys, shape.
    const reg = async (mutate: (b: Awaited<ReturnType<typeof registerBody>>) => Promise<unknown> | unknown) => {
      const b = await registerBody('carol');
      return server.call('POST', '/v1/accounts', { body: await mutate(b) });
    };
    const otherAk = () => generateSigningKeyPair(crypto, systemRandom);
    out.push({
      name: 'register: DeviceCert signed by another AK',
      run: () => reg(async (b) => ({ ...b.body, device: { ...b.body.device, device_cert: b64(await signDeviceCert(crypto, await otherAk(), 'carol', 1, b.device.ik.publicKey)) } })),
      status: 422,
      code: 'bad_signature',
    });
    out.push({
      name: 'register: DeviceCert over another username',
      run: () => reg(async (b) => ({ ...b.body, device: { ...b.body.device, device_cert: b64(await signDeviceCert(crypto, b.ak, 'carl', 1, b.device.ik.publicKey)) } })),
      status: 422,
      code: 'bad_signature',
    });
    out.push({
      name: 'register: SPK signed by another key',
      run: () => reg(async (b) => ({ ...b.body, device: { ...b.body.device, spk: spkJson(await generateSignedPrekey(crypto, systemRandom, await otherAk(), 1)) } })),
      status: 422,
      code: 'bad_signature',
    });
    out.push({
      name: 'register: one PQPK signed by another key',
      run: () =>
        reg(async (b) => {
          const bad = pqpkJson(await generatePqPrekey(crypto, systemRandom, await otherAk(), 99, true));
          return { ...b.body, device: { ...b.body.device, pqpks: [...b.body.device.pqpks, bad] } };
        }),
      status: 422,
      code: 'bad_signature',
    });
    out.push({
      name: 'register: a PQPK that is not an ML-KEM-768 key',
      run: () =>
        reg((b) => {
          const pqpks = b.body.device.pqpks.map((k, i) => (i === 0 ? { ...k, pub: b64(new Uint8Array(1184).fill(0xff)) } : k));
          return { ...b.body, device: { ...b.body.device, pqpks } };
        }),
      status: 422,
      code: 'bad_key',
    });
    out.push({
      name: 'register: no last-resort PQPK',
      run: () => reg((b) => ({ ...b.body, device: { ...b.body.device, pqpks: b.body.device.pqpks.filter((k) => !k.last_resort) } })),
      status: 422,
      code: 'inconsistent_request',
    });
    out.push({
      name: 'register: two last-resort PQPKs',
      run: () => reg((b) => ({ ...b.body, device: { ...b.body.device, pqpks: b.body.device.pqpks.map((k) => ({ ...k, last_resort: true })) } })),
      status: 422,
      code: 'inconsistent_request',
    });
    out.push({
      name: 'register: duplicate OPK ids',
      run: () => reg((b) => ({ ...b.body, device: { ...b.body.device, opks: [b.body.device.opks[0], b.body.device.opks[0]] } })),
      status: 422,
      code: 'inconsistent_request',
    });
    out.push({
      name: 'register: 101 OPKs',
      run: () => reg(async (b) => ({ ...b.body, device: { ...b.body.device, opks: (await generateOneTimePrekeys(crypto, systemRandom, 1, 101)).map(opkJson) } })),
      status: 400,
      code: 'invalid_request',
    });
    out.push({ name: 'register: first device not 1', run: () => reg((b) => ({ ...b.body, device: { ...b.body.device, device_id: 2 } })), status: 409, code: 'device_id_mismatch' });
    out.push({ name: 'register: bad username', run: () => reg((b) => ({ ...b.body, username: 'Carol!' })), status: 400, code: 'invalid_request' });
    out.push({ name: 'register: short password', run: () => reg((b) => ({ ...b.body, password: 'short' })), status: 400, code: 'invalid_request' });
    out.push({ name: 'register: AK of 31 bytes', run: () => reg((b) => ({ ...b.body, ak: b64(new Uint8Array(31)) })), status: 400, code: 'invalid_request' });
    out.push({ name: 'register: base64 with padding', run: () => reg((b) => ({ ...b.body, ak: `${b.body.ak.slice(0, 42)}=` })), status: 400, code: 'invalid_request' });
    out.push({ name: 'register: base64url with non-zero trailing bits', run: () => reg((b) => ({ ...b.body, ak: `${b.body.ak.slice(0, 42)}B` })), status: 400, code: 'invalid_request' });
    out.push({
      name: 'register: taken username',
      run: async () => server.call('POST', '/v1/accounts', { body: (await registerBody('alice')).body }),
      status: 409,
      code: 'username_taken',
    });
    out.push({
      name: 'register: backup above the configured bound',
      run: () => reg((b) => ({ ...b.body, backup: b64(new Uint8Array(MAX_BACKUP + 1)) })),
      status: 413,
      code: 'payload_too_large',
    });

    // Adding a device.
    const add = async (password: string, deviceId: number, signFor = deviceId, ak = alice.ak) => {
      const d = await newDeviceKeys(alice.ak, 'alice', deviceId);
      const cert = await signDeviceCert(crypto, ak, 'alice', signFor, d.ik.publicKey);
      return server.call('POST', '/v1/accounts/alice/devices', { body: { password, device: { ...newDeviceJson(d), device_cert: b64(cert) } } });
    };
    out.push({ name: 'add device: wrong password', run: () => add('wrong password!', 5), status: 401, code: 'bad_credentials' });
    out.push({ name: 'add device: unknown account', run: async () => server.call('POST', '/v1/accounts/nobody/devices', { body: { password: 'whatever1', device: newDeviceJson(await newDeviceKeys(alice.ak, 'nobody', 1)) } }), status: 401, code: 'bad_credentials' });
    out.push({ name: 'add device: DeviceCert by another AK', run: async () => add(alice.password, 5, 5, await otherAk()), status: 422, code: 'bad_signature' });
    out.push({ name: 'add device: DeviceCert over another device id', run: () => add(alice.password, 5, 6), status: 422, code: 'bad_signature' });
    out.push({ name: 'add device: a used device id', run: () => add(alice.password, 3), status: 409, code: 'device_id_mismatch' });
    out.push({ name: 'add device: beyond the device bound', run: () => add(alice.password, 5), status: 409, code: 'too_many_devices' });
    out.push({ name: 'recover backup: wrong password', run: () => server.call('POST', '/v1/accounts/alice/backup/recover', { body: { password: 'wrong password!' } }), status: 401, code: 'bad_credentials' });

    // Uploads: all or nothing.
    const upload = (body: unknown) => () => server.call('POST', '/v1/accounts/alice/devices/1/keys', { token: a1().token, body });
    out.push({
      name: 'upload: SPK signed by another key',
      run: async () => upload({ spk: spkJson(await generateSignedPrekey(crypto, systemRandom, await otherAk(), 50)), opks: (await validUpload()).opks })(),
      status: 422,
      code: 'bad_signature',
    });
    out.push({
      name: 'upload: ten PQPKs, the last signed by another key',
      run: async () => {
        const pq = [];
        for (let i = 0; i < 9; i++) pq.push(pqpkJson(await generatePqPrekey(crypto, systemRandom, a1().ik, 300 + i, true)));
        pq.push(pqpkJson(await generatePqPrekey(crypto, systemRandom, await otherAk(), 309, true)));
        return upload({ pqpks: pq })();
      },
      status: 422,
      code: 'bad_signature',
    });
    out.push({
      name: 'upload: fresh OPKs with one reused id',
      run: async () => upload({ opks: (await generateOneTimePrekeys(crypto, systemRandom, 9, 5)).map(opkJson) })(),
      status: 409,
      code: 'prekey_id_reused',
    });
    out.push({
      name: 'upload: a reused PQPK id as last resort',
      run: async () => upload({ pqpks: [pqpkJson(await generatePqPrekey(crypto, systemRandom, a1().ik, 3, false), true)] })(),
      status: 409,
      code: 'prekey_id_reused',
    });
    out.push({
      name: 'upload: beyond the stored-prekey bound',
      run: async () => upload({ opks: (await generateOneTimePrekeys(crypto, systemRandom, 1000, 25)).map(opkJson) })(),
      status: 409,
      code: 'too_many_prekeys',
    });
    out.push({ name: 'upload: OPK id 0xFFFFFFFF', run: async () => upload({ opks: [{ ...opkJson((await generateOneTimePrekeys(crypto, systemRandom, 1, 1))[0]!), id: 0xffffffff }] })(), status: 400, code: 'invalid_request' });
    out.push({ name: 'put backup: above the configured bound', run: () => server.call('PUT', '/v1/accounts/alice/backup', { token: a1().token, body: { blob: b64(new Uint8Array(MAX_BACKUP + 1)) } }), status: 413, code: 'payload_too_large' });
    return out;
  }

  it('refuses each bad request with its status and code, and changes nothing', async () => {
    const failures: string[] = [];
    for (const c of cases()) {
      const before = await snapshotTables(t.db);
      const r = await c.run();
      const after = await snapshotTables(t.db);
      const body = r.json as { error?: { code?: unknown; message?: unknown } } | null;
      if (r.status !== c.status) failures.push(`${c.name}: status ${r.status}, wanted ${c.status} (${JSON.stringify(r.json)})`);
      else if (typeof body?.error?.message !== 'string' || (c.code && body.error.code !== c.code)) failures.push(`${c.name}: body ${JSON.stringify(r.json)}, wanted code ${c.code}`);
      if (after !== before) failures.push(`${c.name}: the database changed`);
    }
    expect(failures).toEqual([]);
  });

  it('still serves the accounts it refused requests about', async () => {
    const r = await server.call('GET', '/v1/accounts/alice');
    expect(r.status).toBe(200);
    expect((r.json as { devices: { device_id: number }[] }).devices.map((d) => d.device_id)).toEqual([1, 2, 4]);
  });
});

await describeEachDatabase('rate limits', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let now = Date.parse('2026-02-01T00:00:00Z');

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, {
      env: { GCHAT_RATE_REGISTER_IP: '2/3600', GCHAT_RATE_LOGIN_ACCOUNT: '2/300', GCHAT_RATE_BUNDLES_ACCOUNT: '3/60' },
      overrides: { clock: () => new Date(now) },
    });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('limits registrations per IP, with Retry-After, and stores nothing when refused', async () => {
    await registerAccount(server, 'dave');
    await registerAccount(server, 'erin');
    const before = await snapshotTables(t.db);
    const { body } = await registerBody('frank');
    const r = await server.call('POST', '/v1/accounts', { body });
    expect(r.status).toBe(429);
    expect(r.json).toMatchObject({ error: { code: 'rate_limited' } });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await snapshotTables(t.db)).toBe(before);
    now += 3600_000;
    expect((await server.call('POST', '/v1/accounts', { body })).status).toBe(201);
  });

  it('limits password attempts per account', async () => {
    const tries = [];
    for (let i = 0; i < 3; i++) tries.push((await server.call('POST', '/v1/accounts/dave/backup/recover', { body: { password: 'guess number ' + i } })).status);
    expect(tries).toEqual([401, 401, 429]);
  });

  it('limits bundle fetches per requesting account, before any key is claimed', async () => {
    const g = await registerAccount(server, 'grace', { opks: 10, pqpks: 10 });
    now += 3600_000;
    const h = await registerAccount(server, 'heidi');
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await server.call('POST', '/v1/accounts/grace/bundles', { token: h.devices[0]!.token, body: {} })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const left = await server.call('GET', '/v1/accounts/grace/devices/1/keys', { token: g.devices[0]!.token });
    expect(left.json).toMatchObject({ opk_count: 7, pqpk_count: 7 });
  });
});
