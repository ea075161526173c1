/**
 * Generated input at every route in the OpenAPI document: random JSON, random path segments,
 * valid bodies with one member replaced or removed, raw garbage, with no token, a valid one,
 * another account's or a made-up one. Whatever comes in, the answer is never a 5xx and always the
 * error format.
 */
import fc from 'fast-check';
import { createECDH } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toBase64url as b64 } from '../../src/protocol/bytes.js';
import { generateOneTimePrekeys, generatePqPrekey, generateSignedPrekey } from '../../src/protocol/keys.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { crypto, newDeviceJson, newDeviceKeys, opkJson, pqpkJson, registerAccount, registerBody, spkJson, type ClientAccount } from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const RUNS = Number(process.env.GCHAT_FUZZ_RUNS ?? 500);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a member or element of `v`. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

/** `v` with the member at `path` replaced by `value` (or removed when value is undefined). */
function mutate(v: Json, path: (string | number)[], value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(v)) {
    const copy = [...v];
    if (rest.length === 0 && value === undefined) copy.splice(Number(head), 1);
    else copy[Number(head)] = mutate(copy[Number(head)] ?? null, rest, value);
    return copy;
  }
  if (v && typeof v === 'object') {
    const copy = { ...v };
    if (rest.length === 0 && value === undefined) delete copy[String(head)];
    else copy[String(head)] = mutate(copy[String(head)] ?? null, rest, value);
    return copy;
  }
  return v;
}

await describeEachDatabase('generated input', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let alice: ClientAccount;
  let bob: ClientAccount;
  const valid: Record<string, Json> = {};

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, { env: { GCHAT_MAX_BODY_BYTES: String(64 * 1024) }, delivery: true });
    alice = await registerAccount(server, 'alice', { opks: 100, pqpks: 20 });
    bob = await registerAccount(server, 'bob', { opks: 5, pqpks: 5 });
    const d = alice.devices[0]!;
    const newDevice = await newDeviceKeys(alice.ak, 'alice', 2, { opks: 2, pqpks: 2 });
    valid['POST /v1/accounts'] = (await registerBody('zed', { opks: 2, pqpks: 2 })).body as Json;
    valid['POST /v1/accounts/{username}/devices'] = { password: alice.password, device: newDeviceJson(newDevice) } as Json;
    valid['PUT /v1/accounts/{username}/backup'] = { blob: b64(systemRandom(100)) };
    const copy = { user: 'bob', device: 1, key: b64(bob.devices[0]!.ik.publicKey), type: 2, body: b64(Uint8Array.of(0x01, 0x02, ...systemRandom(64))) };
    valid['POST /v1/messages'] = { message_id: '0196f5a0-5c1e-7a3b-8c2d-d35335e0a478', recipient: 'bob', copies: [copy] };
    valid['POST /v1/messages/resend'] = { message_id: '0196f5a0-5c1e-7a3b-8c2d-d35335e0a478', recipient: 'bob', copy };
    valid['POST /v1/messages/ack'] = { ids: ['1', '2'] };
    const ua = createECDH('prime256v1');
    ua.generateKeys();
    valid['PUT /v1/push/registrations'] = {
      kind: 'webpush',
      endpoint: 'https://push.example.org/wpush/v2/abc',
      keys: { p256dh: ua.getPublicKey().toString('base64url'), auth: b64(systemRandom(16)) },
    };
    valid['POST /v1/accounts/{username}/backup/recover'] = { password: alice.password };
    valid['POST /v1/accounts/{username}/bundles'] = { device_ids: [1, 2] };
    valid['POST /v1/accounts/{username}/devices/{deviceId}/keys'] = {
      spk: spkJson(await generateSignedPrekey(crypto, systemRandom, d.ik, 10)),
      opks: (await generateOneTimePrekeys(crypto, systemRandom, 500, 2)).map(opkJson),
      pqpks: [pqpkJson(await generatePqPrekey(crypto, systemRandom, d.ik, 500, true))],
    } as Json;
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('answers every route with a 2xx or a 4xx in the error format, never a 5xx', async () => {
    const routes = Object.entries(server.app.openapi.paths ?? {}).flatMap(([path, item]) =>
      Object.keys(item ?? {})
        .filter((m) => ['get', 'post', 'put', 'delete'].includes(m))
        .map((m) => ({ method: m.toUpperCase(), path })),
    );
    expect(routes.length).toBeGreaterThanOrEqual(14);
    // the delivery routes are in the served document, so they are fuzzed too
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(['POST /v1/messages', 'POST /v1/messages/resend', 'GET /v1/messages', 'POST /v1/messages/ack']));

    const segment = fc.oneof(
      fc.constantFrom('alice', 'bob', '1', '2', '0', '4294967295', '4294967296', '-1', '1.5', 'ALICE', '%ff', '%00', '..', ''),
      fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)),
    );
    const token = fc.oneof(
      fc.constant<string | undefined>(undefined),
      fc.constant('alice'),
      fc.constant('bob'),
      fc.string({ maxLength: 60 }).filter((s) => /^[\x21-\x7e]*$/.test(s)),
    );
    const route = fc.constantFrom(...routes);
    const body = (key: string) =>
      fc.oneof(
        { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ json: v as Json })) },
        {
          weight: 4,
          arbitrary: valid[key]
            ? fc
                .tuple(fc.constantFrom(...paths(valid[key]!)), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }))
                .map(([p, v]) => ({ json: mutate(valid[key]!, p, v as Json | undefined) }))
            : fc.constant({ json: {} as Json }),
        },
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((raw) => ({ raw })) },
        { weight: 1, arbitrary: fc.constant({ none: true as const }) },
      );

    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        route.chain((r) => fc.tuple(fc.constant(r), fc.oneof(fc.constant('alice'), segment), segment, token, body(`${r.method} ${r.path}`))),
        async ([r, s1, s2, tok, b]) => {
          const path = r.path
            .replace('{username}', s1 === '' ? 'alice' : s1)
            .replace('{deviceId}', s2 === '' ? '1' : s2);
          const t = tok === 'alice' ? alice.devices[0]!.token : tok === 'bob' ? bob.devices[0]!.token : tok;
          const res = await server.call(r.method, path, {
            ...(t !== undefined ? { token: t } : {}),
            // fetch sends no body with GET.
            ...(r.method === 'GET' ? {} : 'json' in b ? { body: b.json } : 'raw' in b ? { rawBody: b.raw } : {}),
          });
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          if (res.status >= 500) throw new Error(`${r.method} ${path} -> ${res.status} ${JSON.stringify(res.json)}`);
          if (res.status >= 400) {
            const e = (res.json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
            if (typeof e?.code !== 'string' || typeof e.message !== 'string') throw new Error(`${r.method} ${path} -> ${res.status} without the error format`);
          }
        },
      ),
      { numRuns: RUNS },
    );
    // The generator reaches past validation: some requests succeed, most are refused.
    expect([...seen.keys()].some((s) => s < 300)).toBe(true);
    expect([...seen.keys()].some((s) => s >= 400)).toBe(true);
  });
});
