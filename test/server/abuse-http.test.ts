/**
 * Abuse, part 2: hostile HTTP. Oversize, malformed, deeply nested, non-UTF-8, wrongly typed and
 * gzip-encoded bodies on every kind of body-taking route; header abuse (huge, many, duplicate
 * Authorization, bad Content-Length) over raw sockets; rate limits reached. Expected: a 4xx with
 * the error JSON (or, for what Node's HTTP parser itself refuses, its 400/431 and a closed
 * connection), no 5xx, no table changed, and an honest pair of clients still exchanging messages
 * after each group.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toBase64url as b64 } from '../../src/protocol/bytes.js';
import { registerAccount, registerBody, type ClientAccount } from '../helpers/accounts.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AbuseTally, changedTables, settle, HonestPair, expectErrorJson, expectServing, jsonOf, rawRequest, sealedBody, snapshotAll } from './abuse-fixture.js';

/** One body-taking route of each kind: public, authenticated (app parser), delivery (its own parser). */
interface Target {
  readonly method: string;
  readonly path: string;
  readonly token?: () => string;
  /** A valid body, to derive hostile variants from. */
  readonly body: () => unknown;
}

await describeEachDatabase('abuse: hostile HTTP bodies and headers', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let victim: ClientAccount;
  let other: ClientAccount;
  let pair: HonestPair;
  const tally = new AbuseTally();
  let targets: Target[] = [];

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, { delivery: true });
    victim = await registerAccount(server, 'victim');
    other = await registerAccount(server, 'other');
    pair = await HonestPair.start(server.url, 'h');
    await pair.roundTrip();
    await settle(t.db);
    const copy = { user: 'other', device: 1, key: b64(other.devices[0]!.ik.publicKey), type: 2, body: sealedBody() };
    targets = [
      { method: 'POST', path: '/v1/accounts/victim/backup/recover', body: () => ({ password: 'not the password at all' }) },
      { method: 'PUT', path: '/v1/accounts/victim/backup', token: () => victim.devices[0]!.token, body: () => ({ blob: b64(new Uint8Array(32).fill(3)) }) },
      {
        method: 'POST',
        path: '/v1/messages',
        token: () => victim.devices[0]!.token,
        body: () => ({ message_id: '0190e4b3-7c1a-7d2e-8f3a-0000000000c1', recipient: 'other', copies: [copy] }),
      },
      { method: 'POST', path: '/v1/messages/ack', token: () => other.devices[0]!.token, body: () => ({ ids: ['1'] }) },
    ];
  });

  afterAll(async () => {
    await pair?.stop();
    await server?.close();
    await t?.close();
  });

  /**
   * Sends a body over a raw socket (Connection: close), so an answer the server gives before it
   * has read the whole upload is still seen; null when it closed without one.
   */
  async function send(target: Target, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number | null; json: unknown }> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const h: Record<string, string> = { host: 'x', connection: 'close', 'content-length': String(bytes.length), ...headers };
    if (target.token) h.authorization = `Bearer ${target.token()}`;
    const head = `${target.method} ${target.path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    const r = await rawRequest(server.url, [head, bytes], 60_000);
    return { status: r.status, json: jsonOf(r.body) };
  }

  /** The body with its first string value replaced by bytes that are not UTF-8. */
  function withBadBytes(valid: unknown): Buffer {
    let done = false;
    const marked = JSON.stringify(valid, (_k, x: unknown) => {
      if (typeof x === 'string' && !done) {
        done = true;
        return '@@BAD@@';
      }
      return x;
    });
    const [a, b] = marked.split('@@BAD@@');
    return Buffer.concat([Buffer.from(a!), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80]), Buffer.from(b!)]);
  }

  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const cases: { name: string; body: (valid: unknown) => Buffer | string; headers?: Record<string, string>; statuses: number[]; closedOk?: boolean }[] = [
    { name: 'oversize (40 MB)', body: () => `{"x":"${'a'.repeat(40 * 1024 * 1024)}"}`, statuses: [413], closedOk: true },
    { name: 'malformed JSON', body: () => '{"password": "abc", ', statuses: [400] },
    { name: 'JSON that is not an object', body: () => '"just a string"', statuses: [400] },
    { name: '100k nested arrays', body: () => deep(100_000), statuses: [400, 413] },
    { name: '100k nested objects', body: () => deepObject(100_000), statuses: [400, 413] },
    { name: 'non-UTF-8 bytes in a string', body: withBadBytes, statuses: [400, 401, 404, 415] },
    { name: 'a charset that is not UTF-8', body: (v) => JSON.stringify(v), headers: { 'content-type': 'application/json; charset=latin1' }, statuses: [400, 415] },
    { name: 'Content-Type text/plain', body: (v) => JSON.stringify(v), headers: { 'content-type': 'text/plain' }, statuses: [400, 415] },
    { name: 'Content-Type multipart/form-data', body: () => '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n', headers: { 'content-type': 'multipart/form-data; boundary=x' }, statuses: [400, 415] },
    { name: 'gzip-encoded', body: (v) => gzipSync(JSON.stringify(v)), headers: { 'content-encoding': 'gzip' }, statuses: [400, 413, 415] },
    { name: 'a gzip bomb (64 MB of zeros)', body: () => gzipSync(Buffer.concat([Buffer.from('{"x":"'), Buffer.alloc(64 * 1024 * 1024, 0x30), Buffer.from('"}')])), headers: { 'content-encoding': 'gzip' }, statuses: [400, 413, 415] },
    { name: 'a NUL character in every string', body: (v) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? `${x}\u0000` : x)), statuses: [400, 401, 403, 404] },
  ];

  it('answers hostile bodies with a 4xx error JSON, changes nothing, never 5xx', async () => {
    const failures: string[] = [];
    // The honest pair talks between requests, not during them: its traffic would show in the digests.
    for (const target of targets) {
      for (const c of cases) {
        const before = await snapshotAll(t.db);
        const r = await send(target, c.body(target.body()), { 'content-type': 'application/json', ...(c.headers ?? {}) });
        const what = `${target.method} ${target.path}, ${c.name}: ${r.status} ${JSON.stringify(r.json)?.slice(0, 160)}`;
        tally.record(r.status, what);
        if (r.status === null) {
          if (!c.closedOk) failures.push(`connection closed without an answer: ${what}`);
        } else if (!c.statuses.includes(r.status)) failures.push(`expected ${c.statuses.join('/')}: ${what}`);
        else if (!(typeof (r.json as { error?: { code?: unknown } } | undefined)?.error?.code === 'string')) failures.push(`no error JSON: ${what}`);
        const after = await snapshotAll(t.db);
        if (changedTables(before, after).length > 0) failures.push(`state changed (${changedTables(before, after).join(', ')}): ${what}`);
      }
      await pair.roundTrip(tally);
      await settle(t.db);
    }
    expect(failures).toEqual([]);
    await expectServing(server);
    await pair.roundTrip(tally);
  });

  it('refuses header abuse with a 4xx (or Node closing the connection), never 5xx', async () => {
    const token = victim.devices[0]!.token;
    const get = (extra: string) => `GET /v1/accounts/victim/backup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}\r\n`;
    const post = (headers: string, body: string) => `PUT /v1/accounts/victim/backup HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n${headers}\r\n${body}`;
    const many = Array.from({ length: 5000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    const cases: { name: string; bytes: string; statuses: number[] }[] = [
      { name: 'a 1 MB header', bytes: get(`X-Big: ${'a'.repeat(1024 * 1024)}\r\n`), statuses: [431, 400] },
      { name: '5000 headers', bytes: get(many), statuses: [431, 400] },
      { name: 'a 64 KB Authorization', bytes: get(`Authorization: Bearer ${'t'.repeat(64 * 1024)}\r\n`), statuses: [431, 400, 401] },
      { name: 'a 4 KB bearer token', bytes: get(`Authorization: Bearer ${'t'.repeat(4096)}\r\n`), statuses: [400, 401] },
      // Two Authorization headers: neither may authenticate as the other's account.
      { name: 'duplicate Authorization (garbage first)', bytes: get(`Authorization: Bearer garbage\r\nAuthorization: Bearer ${token}\r\n`), statuses: [400, 401] },
      { name: "duplicate Authorization (another account's first)", bytes: get(`Authorization: Bearer ${other.devices[0]!.token}\r\nAuthorization: Bearer ${token}\r\n`), statuses: [400, 401, 403] },
      { name: 'Authorization with a NUL', bytes: get(`Authorization: Bearer ${token}\u0000x\r\n`), statuses: [400, 401] },
      { name: 'Content-Length not a number', bytes: post('Content-Length: abc\r\n', '{}'), statuses: [400] },
      { name: 'Content-Length negative', bytes: post('Content-Length: -5\r\n', '{}'), statuses: [400] },
      { name: 'two different Content-Lengths', bytes: post('Content-Length: 2\r\nContent-Length: 40\r\n', '{}'), statuses: [400] },
      { name: 'Content-Length and chunked', bytes: post('Content-Length: 2\r\nTransfer-Encoding: chunked\r\n', '2\r\n{}\r\n0\r\n\r\n'), statuses: [400] },
      { name: 'Content-Length larger than the body (then the client closes)', bytes: post('Content-Length: 100000\r\n', '{"blob":"'), statuses: [] },
      { name: 'Content-Length smaller than the body', bytes: post('Content-Length: 3\r\n', '{"blob":"AAAA"}'), statuses: [400] },
      { name: 'a Content-Length of 10^20', bytes: post('Content-Length: 100000000000000000000\r\n', '{}'), statuses: [400, 413] },
      { name: 'a bad chunked encoding', bytes: post('Transfer-Encoding: chunked\r\n', 'zz\r\n{}\r\n0\r\n\r\n'), statuses: [400] },
      { name: 'an HTTP/0.9 request line', bytes: 'GET /v1/nowhere\r\n\r\n', statuses: [400, 404] },
      { name: 'a request line of 100 KB', bytes: `GET /${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, statuses: [400, 414, 431, 404] },
    ];
    await settle(t.db);
    const failures: string[] = [];
    for (const [i, c] of cases.entries()) {
      const before = await snapshotAll(t.db);
      // "Larger than the body": the client gives up half-way; the server must not wait forever or fail.
      const r = await rawRequest(server.url, c.bytes, c.statuses.length === 0 ? 2000 : 30_000);
      const what = `${c.name}: ${r.status ?? 'no answer'} ${r.body.slice(0, 160)}`;
      tally.record(r.status, what);
      const after = await snapshotAll(t.db);
      if (changedTables(before, after).length > 0) failures.push(`state changed (${changedTables(before, after).join(', ')}): ${what}`);
      if (i % 4 === 3) {
        await pair.roundTrip(tally);
        await settle(t.db);
      }
      if (c.statuses.length === 0) continue;
      if (r.status === null || !c.statuses.includes(r.status)) failures.push(`expected ${c.statuses.join('/')}: ${what}`);
      else if (r.status !== 431 && r.status !== 400 && r.status !== 414 && jsonOf(r.body) === undefined) failures.push(`no JSON body: ${what}`);
      else if (r.body.length > 0 && jsonOf(r.body) !== undefined) expectErrorJson(jsonOf(r.body), what);
    }
    await expectServing(server);
    await pair.roundTrip(tally);
    console.log(tally.figure(`http ${kind}`, 'between'));
    expect(failures).toEqual([]);
    expect(tally.server5xx, tally.fiveHundreds.join('\n')).toBe(0);
  });
});

await describeEachDatabase('abuse: rate limits reached', (kind) => {
  let t: TestDatabase;
  let server: TestServer;
  let pair: HonestPair;
  const tally = new AbuseTally();
  const from = (ip: string) => ({ 'x-forwarded-for': ip });
  const ATTACKER = '203.0.113.66';

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, {
      delivery: true,
      env: {
        GCHAT_TRUST_PROXY: 'true',
        // Per address: the loopback one registers the honest pair and the accounts below (7).
        GCHAT_RATE_REGISTER_IP: '8/3600',
        GCHAT_RATE_LOGIN_IP: '5/300',
        GCHAT_RATE_LOGIN_ACCOUNT: '5/300',
        GCHAT_RATE_BUNDLES_ACCOUNT: '5/60',
        GCHAT_RATE_BUNDLES_IP: '1000/60',
      },
    });
    // The honest pair registers from its own address before the attacker starts.
    pair = await HonestPair.start(server.url, 'h');
  });

  afterAll(async () => {
    await pair?.stop();
    await server?.close();
    await t?.close();
  });

  /** Repeats `attempt` until it answers 429; checks Retry-After and the error JSON. */
  async function untilLimited(what: string, attempt: (i: number) => Promise<{ status: number; json: unknown; headers: Headers }>, most = 50): Promise<number> {
    for (let i = 0; i < most; i++) {
      const r = await attempt(i);
      tally.record(r.status, `${what} #${i}`);
      expect(r.status, `${what} #${i}: ${JSON.stringify(r.json)}`).toBeLessThan(500);
      if (r.status === 429) {
        const retry = r.headers.get('retry-after');
        expect(retry, `${what}: Retry-After`).toMatch(/^\d+$/);
        expect(Number(retry)).toBeGreaterThanOrEqual(1);
        expectErrorJson(r.json, what);
        return i;
      }
    }
    throw new Error(`${what}: no 429 after ${most} attempts`);
  }

  it('registrations: 429 with Retry-After for the flooding address; another address still registers', async () => {
    const n = await untilLimited('registration flood', async (i) => server.call('POST', '/v1/accounts', { body: (await registerBody(`flood${i}`)).body, headers: from(ATTACKER) }));
    expect(n).toBeGreaterThan(0);
    const ok = await tally.call(server, 'POST', '/v1/accounts', { body: (await registerBody('newcomer')).body, headers: from('198.51.100.2') });
    expect(ok.status, JSON.stringify(ok.json)).toBe(201);
    await pair.roundTrip(tally);
  });

  it('bundle claims: 429 with Retry-After for the claiming account; another account still gets the bundles', async () => {
    const victim = await registerAccount(server, 'bvictim');
    const attacker = await registerAccount(server, 'battacker');
    const bystander = await registerAccount(server, 'bbystander');
    // Each registration came from the loopback address, which is not the flooding one.
    await untilLimited('bundle claims', () => server.call('POST', '/v1/accounts/bvictim/bundles', { token: attacker.devices[0]!.token, body: {} }));
    const r = await tally.call(server, 'POST', '/v1/accounts/bvictim/bundles', { token: bystander.devices[0]!.token, body: {} });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect((r.json as { bundles: unknown[] }).bundles).toHaveLength(victim.devices.length);
    await pair.roundTrip(tally);
  });

  it('password checks: 429 with Retry-After for the guesser; the owner and other users still get in', async () => {
    const owner = await registerAccount(server, 'pvictim');
    const otherUser = await registerAccount(server, 'pother');
    for (const a of [owner, otherUser]) {
      const put = await server.call('PUT', `/v1/accounts/${a.username}/backup`, { token: a.devices[0]!.token, body: { blob: b64(new Uint8Array(40).fill(9)) } });
      expect(put.status).toBe(204);
    }
    await untilLimited('password guesses', () =>
      server.call('POST', '/v1/accounts/pvictim/backup/recover', { body: { password: 'guess guess guess' }, headers: from(ATTACKER) }),
    );
    const mine = await tally.call(server, 'POST', '/v1/accounts/pother/backup/recover', { body: { password: otherUser.password }, headers: from('198.51.100.3') });
    expect(mine.status, `another user's recovery: ${JSON.stringify(mine.json)}`).toBe(200);
    // Issue 10: wrong passwords from someone else must not lock the owner out.
    console.log(tally.figure(`rate limits ${kind}`, 'between'));
    const owners = await tally.call(server, 'POST', '/v1/accounts/pvictim/backup/recover', { body: { password: owner.password }, headers: from('198.51.100.4') });
    expect(owners.status, `the owner's recovery from their own address after the guesses: ${JSON.stringify(owners.json)}`).toBe(200);
    await pair.roundTrip(tally);
    await expectServing(server);
    expect(tally.server5xx, tally.fiveHundreds.join('\n')).toBe(0);
  });
});
