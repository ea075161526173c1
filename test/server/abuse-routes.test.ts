/**
 * Abuse, part 1: every route the server's own OpenAPI document lists, times every identity that
 * is not the owner of the resource in the path: no token, a malformed token, another account's
 * token, another device's token (same account) and a removed device's token. The owner is
 * `victim` device 1; the path is filled with its real username and device id, and the body is one
 * the owner could send, so that only authorization can stop it. A refusal is 401/403/404 as the
 * route's contract says, with the error JSON, and every table is unchanged; nothing answers 5xx.
 * A route in the document without a contract below fails the suite: new routes get one.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { toBase64url as b64 } from '../../src/protocol/bytes.js';
import { generateOneTimePrekeys } from '../../src/protocol/keys.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { addDevice, crypto, newDeviceJson, newDeviceKeys, opkJson, registerAccount, registerBody, type ClientAccount } from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AbuseTally, changedTables, settle, HonestPair, expectErrorJson, expectServing, sealedBody, snapshotAll } from './abuse-fixture.js';

type Identity = 'no token' | 'malformed token' | "another account's token" | "another device's token" | "a removed device's token";
const IDENTITIES: Identity[] = ['no token', 'malformed token', "another account's token", "another device's token", "a removed device's token"];

/**
 * What a route must answer to each identity. `refuse`: those statuses only, and nothing changes.
 * `allowed`: the identity may do this by contract (its own queue, a public claim, any device of the
 * account): not a refusal, so it is not sent here (it would change state legitimately).
 * `own`: the route acts on the token holder's own resources; `check` says what must hold.
 */
type Outcome = { refuse: number[] } | { allowed: string } | { own: 'no-victim-envelopes' | 'refuse-no-change' | 'not-2xx' };

interface Contract {
  /** A body the owner (victim device 1) could send. */
  readonly body?: () => unknown;
  readonly outcome: (who: Identity, auth: boolean) => Outcome;
}

const UNAUTH = { refuse: [401] };
const NOT_YOURS = { refuse: [403, 404] };
/** An authenticated route over the account or device in its path. */
const owned =
  (scope: 'account' | 'device', sameAccount?: string) =>
  (who: Identity): Outcome => {
    if (who === "another account's token") return NOT_YOURS;
    if (who === "another device's token") return scope === 'device' ? NOT_YOURS : { allowed: sameAccount ?? 'any device of the account' };
    return UNAUTH;
  };
/** A public route: tokens do not matter; the body is one that must be refused. */
const publicRefused = (statuses: number[]) => (): Outcome => ({ refuse: statuses });

await describeEachDatabase('abuse: every route times every identity', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let victim: ClientAccount;
  let other: ClientAccount;
  let removedToken: string;
  let victimMessageId: string;
  let victimEnvelopeIds: string[] = [];
  let pair: HonestPair;
  const tally = new AbuseTally();

  const tokenOf = (who: Identity): string | null => {
    switch (who) {
      case 'no token':
        return null;
      case 'malformed token':
        return 'not-a-token%%';
      case "another account's token":
        return other.devices[0]!.token;
      case "another device's token":
        return victim.devices[1]!.token;
      case "a removed device's token":
        return removedToken;
    }
  };

  const copyFor = (user: ClientAccount, i: number) => ({ user: user.username, device: user.devices[i]!.deviceId, key: b64(user.devices[i]!.ik.publicKey), type: 2, body: sealedBody() });

  const contracts: Record<string, Contract> = {
    'post /v1/accounts': { body: async () => (await registerBody('victim')).body, outcome: publicRefused([409]) },
    'get /v1/accounts/{username}': { outcome: () => ({ allowed: 'public record' }) },
    'post /v1/accounts/{username}/devices': {
      body: async () => ({ password: 'not the password', device: newDeviceJson(await newDeviceKeys(victim.ak, 'victim', 4)) }),
      outcome: publicRefused([401, 403]),
    },
    'delete /v1/accounts/{username}/devices/{deviceId}': { outcome: owned('account', 'SPEC §7: any device of the account may remove any of its devices') },
    'put /v1/accounts/{username}/backup': { body: () => ({ blob: b64(new Uint8Array(64).fill(7)) }), outcome: owned('account', 'any device of the account stores the backup') },
    'get /v1/accounts/{username}/backup': { outcome: owned('account', 'any device of the account reads the backup') },
    'post /v1/accounts/{username}/backup/recover': { body: () => ({ password: 'not the password' }), outcome: publicRefused([401, 403]) },
    'post /v1/accounts/{username}/devices/{deviceId}/keys': {
      body: async () => ({ opks: (await generateOneTimePrekeys(crypto, systemRandom, 5000, 2)).map(opkJson) }),
      outcome: owned('device'),
    },
    'get /v1/accounts/{username}/devices/{deviceId}/keys': { outcome: owned('device') },
    'post /v1/accounts/{username}/bundles': {
      body: () => ({}),
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { allowed: 'claiming bundles is what another device does before its first message' } : UNAUTH),
    },
    'post /v1/messages': {
      body: () => ({ message_id: '0190e4b3-7c1a-7d2e-8f3a-0123456789ab', recipient: 'other', copies: [copyFor(other, 0), copyFor(victim, 0), copyFor(victim, 1)] }),
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { allowed: 'a send from the token holder' } : UNAUTH),
    },
    'post /v1/messages/resend': {
      // Victim device 1's message: nobody else may send it again.
      body: () => ({ message_id: victimMessageId, recipient: 'other', copy: copyFor(other, 0) }),
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { own: 'refuse-no-change' } : UNAUTH),
    },
    'get /v1/messages': { outcome: (who) => (who === "another account's token" || who === "another device's token" ? { own: 'no-victim-envelopes' } : UNAUTH) },
    'post /v1/messages/ack': {
      // Victim device 1's envelopes: acking them from elsewhere must not remove them.
      body: () => ({ ids: victimEnvelopeIds }),
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { own: 'refuse-no-change' } : UNAUTH),
    },
    'get /v1/stream': { outcome: (who) => (who === "another account's token" || who === "another device's token" ? { own: 'not-2xx' } : UNAUTH) },
    'get /v1/push/vapid': { outcome: () => ({ allowed: "the server's public VAPID key" }) },
    'put /v1/push/registrations': {
      body: () => ({ kind: 'fcm', token: 'attacker-registration-token-0123456789' }),
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { allowed: "registers the token holder's own device" } : UNAUTH),
    },
    'get /v1/push/registrations': {
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { allowed: "lists the token holder's own registrations" } : UNAUTH),
    },
    // Victim device 1 holds an FCM registration: deleting "fcm" with any other token must leave it.
    'delete /v1/push/registrations/{kind}': {
      outcome: (who) => (who === "another account's token" || who === "another device's token" ? { own: 'refuse-no-change' } : UNAUTH),
    },
    'get /v1/turn': { outcome: (who) => (who === "another account's token" || who === "another device's token" ? { allowed: "the token holder's own TURN credentials" } : UNAUTH) },
  };

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, { delivery: true });
    victim = await registerAccount(server, 'victim');
    await addDevice(server, victim);
    const doomed = await addDevice(server, victim);
    removedToken = doomed.token;
    expect((await server.call('DELETE', `/v1/accounts/victim/devices/${doomed.deviceId}`, { token: victim.devices[0]!.token })).status).toBe(204);
    victim.devices.pop();
    other = await registerAccount(server, 'other');
    expect((await server.call('PUT', '/v1/accounts/victim/backup', { token: victim.devices[0]!.token, body: { blob: b64(new Uint8Array(48).fill(1)) } })).status).toBe(204);
    // Victim device 1 sends a message (for resend), and receives one from other (for GET and ack).
    victimMessageId = '0190e4b3-7c1a-7d2e-8f3a-00000000000a';
    const sent = await server.call('POST', '/v1/messages', { token: victim.devices[0]!.token, body: { message_id: victimMessageId, recipient: 'other', copies: [copyFor(other, 0), copyFor(victim, 1)] } });
    expect(sent.status, JSON.stringify(sent.json)).toBe(200);
    const got = await server.call('POST', '/v1/messages', { token: other.devices[0]!.token, body: { message_id: '0190e4b3-7c1a-7d2e-8f3a-00000000000b', recipient: 'victim', copies: [copyFor(victim, 0), copyFor(victim, 1)] } });
    expect(got.status, JSON.stringify(got.json)).toBe(200);
    victimEnvelopeIds = (got.json as { envelopes: { device: number; id: string }[] }).envelopes.filter((e) => e.device === 1).map((e) => e.id);
    expect(victimEnvelopeIds).toHaveLength(1);
    const reg = await server.call('PUT', '/v1/push/registrations', { token: victim.devices[0]!.token, body: { kind: 'fcm', token: 'victim-fcm-registration-token-0123456789' } });
    expect(reg.status, JSON.stringify(reg.json)).toBe(204);
    pair = await HonestPair.start(server.url, 'h');
    await pair.roundTrip();
    await settle(t.db);
  });

  afterAll(async () => {
    await pair?.stop();
    await server?.close();
    await t?.close();
  });

  it('answers each identity as the contract says, changes nothing it refuses, never 5xx', async () => {
    const doc = (await server.call('GET', '/v1/openapi.json')).json as { paths: Record<string, Record<string, { security?: unknown[]; parameters?: { in: string; name: string }[] }>> };
    const ops: { method: string; path: string; auth: boolean }[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'delete', 'patch'].includes(method)) continue;
        ops.push({ method, path, auth: (op.security?.length ?? 0) > 0 });
      }
    }
    expect(ops.length).toBeGreaterThanOrEqual(15);
    const uncovered = ops.map((o) => `${o.method} ${o.path}`).filter((k) => !(k in contracts));
    expect(uncovered, 'routes in the OpenAPI document without an abuse contract').toEqual([]);

    const failures: string[] = [];
    let refusals = 0;
    let allowedSkipped = 0;
    for (const op of ops) {
      const contract = contracts[`${op.method} ${op.path}`]!;
      const url = op.path.replace('{username}', 'victim').replace('{deviceId}', '1').replace('{kind}', 'fcm');
      for (const who of IDENTITIES) {
        const outcome = contract.outcome(who, op.auth);
        if ('allowed' in outcome) {
          allowedSkipped++;
          continue;
        }
        const token = tokenOf(who);
        const body = contract.body ? await contract.body() : undefined;
        const before = await snapshotAll(t.db);
        const r = await tally.call(server, op.method.toUpperCase(), url, { ...(token !== null ? { token } : {}), ...(body !== undefined ? { body } : {}) }, `${op.method} ${op.path} [${who}]`);
        const after = await snapshotAll(t.db);
        const what = `${op.method.toUpperCase()} ${op.path} with ${who}: ${r.status} ${JSON.stringify(r.json)?.slice(0, 160)}`;
        if (r.status >= 500) failures.push(`5xx: ${what}`);
        if ('refuse' in outcome) {
          refusals++;
          if (!outcome.refuse.includes(r.status)) failures.push(`expected ${outcome.refuse.join('/')}: ${what}`);
          else expectErrorJson(r.json, what);
          if (changedTables(before, after).length > 0) failures.push(`state changed (${changedTables(before, after).join(', ')}): ${what}`);
        } else if (outcome.own === 'refuse-no-change') {
          if (r.status >= 200 && r.status < 300) {
            // An ack of ids that are not this device's may answer 200, but must remove nothing.
            const acked = (r.json as { acked?: unknown } | null)?.acked;
            if (op.path !== '/v1/messages/ack' || acked !== 0) failures.push(`2xx on another device's message: ${what}`);
          }
          if (changedTables(before, after).length > 0) failures.push(`state changed (${changedTables(before, after).join(', ')}): ${what}`);
        } else if (outcome.own === 'no-victim-envelopes') {
          const envs = ((r.json as { envelopes?: { id: string }[] } | null)?.envelopes ?? []).map((e) => e.id);
          if (r.status !== 200) failures.push(`expected 200 on own queue: ${what}`);
          if (envs.some((id) => victimEnvelopeIds.includes(id))) failures.push(`another device's envelope listed: ${what}`);
        } else if (r.status < 400) failures.push(`expected a 4xx: ${what}`);
      }
    }
    console.log(`abuse routes [${kind}]: ${ops.length} operations, ${refusals} refusals checked, ${allowedSkipped} pairs allowed by contract and not sent`);
    await expectServing(server);
    await pair.roundTrip(tally);
    console.log(tally.figure(`routes matrix ${kind}`, 'between'));
    expect(failures).toEqual([]);
  });

  it('refuses a stream upgrade with no, a malformed or a removed token, and changes nothing', async () => {
    await settle(t.db);
    for (const who of ['no token', 'malformed token', "a removed device's token"] as const) {
      const token = tokenOf(who);
      const before = await snapshotAll(t.db);
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/stream`, ['gchat.v1'], token ? { headers: { authorization: `Bearer ${token}` } } : {});
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('open', () => {
          resolve(101);
          ws.close();
        });
        ws.on('error', () => resolve(0));
      });
      tally.record(status, `stream upgrade [${who}]`);
      expect(status, `stream upgrade with ${who}`).toBe(401);
      expect(await snapshotAll(t.db)).toEqual(before);
    }
    // The victim's device 1 envelope is still there for its owner.
    const own = await server.call('GET', '/v1/messages', { token: victim.devices[0]!.token });
    expect((own.json as { envelopes: { id: string }[] }).envelopes.map((e) => e.id)).toEqual(expect.arrayContaining(victimEnvelopeIds));
    await pair.roundTrip(tally);
    expect(tally.server5xx, tally.fiveHundreds.join('\n')).toBe(0);
    console.log(`${tally.figure(`routes ${kind}`, 'between')}`);
  });
});
