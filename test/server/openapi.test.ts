/**
 * The OpenAPI document served at /v1/openapi.json: a valid OpenAPI 3.1 document (a real
 * validator, every $ref resolving from the root), generated from the route declarations, listing
 * every error code per route and status, and agreeing with what the server accepts and answers.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ERROR_CODES, ERRORS, type ApiErrorCode } from '../../src/server/errors.js';
import { openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { registerAccount, type ClientAccount } from '../helpers/accounts.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface Operation {
  security?: unknown[];
  parameters?: { name: string; in: string; schema: { pattern?: string; type?: string; minimum?: number } }[];
  requestBody?: { required?: boolean };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, { pattern?: string; minLength?: number; maxLength?: number; enum?: string[] }> }> };
}

/** Every value under `key` anywhere in `v`, with where it was. */
function collect(v: unknown, key: string, at = '#', out: { at: string; value: unknown }[] = []): { at: string; value: unknown }[] {
  if (Array.isArray(v)) v.forEach((x, i) => collect(x, key, `${at}/${i}`, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === key) out.push({ at, value: x });
      collect(x, key, `${at}/${k}`, out);
    }
  }
  return out;
}

/** A local JSON pointer (#/a/b) resolved from the document root, or undefined. */
function resolve(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!node || typeof node !== 'object' || !(part in node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** The error codes a response schema admits (the `code` enums it narrows to). */
function codesOf(schema: unknown): string[] {
  return collect(schema, 'enum')
    .filter((e) => e.at.endsWith('/properties/code'))
    .flatMap((e) => e.value as string[]);
}

const ROUTES = [
  'POST /v1/accounts',
  'GET /v1/accounts/{username}',
  'POST /v1/accounts/{username}/devices',
  'DELETE /v1/accounts/{username}/devices/{deviceId}',
  'PUT /v1/accounts/{username}/backup',
  'GET /v1/accounts/{username}/backup',
  'POST /v1/accounts/{username}/backup/recover',
  'POST /v1/accounts/{username}/devices/{deviceId}/keys',
  'GET /v1/accounts/{username}/devices/{deviceId}/keys',
  'POST /v1/accounts/{username}/bundles',
  'POST /v1/messages',
  'GET /v1/messages',
  'POST /v1/messages/ack',
  'POST /v1/messages/resend',
  'GET /v1/stream',
  'GET /v1/push/vapid',
  'PUT /v1/push/registrations',
  'GET /v1/push/registrations',
  'DELETE /v1/push/registrations/{kind}',
  'GET /v1/turn',
];

describe('OpenAPI document', () => {
  let t: TestDatabase;
  let server: TestServer;
  let doc: Doc;
  let alice: ClientAccount;
  const ops = () =>
    Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ method, path, op, name: `${method.toUpperCase()} ${path}` })));

  beforeAll(async () => {
    t = await openTestDatabase('pglite');
    // The whole server as main.ts builds it: the delivery routes and the stream are documented too.
    server = await startTestServer(t.db, { delivery: true });
    const r = await server.call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    doc = r.json as Doc;
    alice = await registerAccount(server, 'alice');
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('is a valid OpenAPI 3.1 document for a real validator, and every $ref resolves from the root', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Parameters<Validator["validate"]>[0]);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(() => validator.resolveRefs()).not.toThrow();
    // Strict on our side too: each $ref is a local pointer to a component that exists, and no
    // schema carries its own $defs (whose refs would resolve against the wrong root).
    const refs = collect(doc, '$ref');
    expect(refs.length).toBeGreaterThan(50);
    for (const { at, value } of refs) {
      expect(value, at).toMatch(/^#\/components\/schemas\/[A-Za-z]+$/);
      expect(resolve(doc, value as string), `${at}: ${String(value)}`).toBeDefined();
    }
    expect(collect(doc, '$defs')).toEqual([]);
    expect(collect(doc, 'definitions')).toEqual([]);
  });

  it('lists every route of the server, the stream and its frames included', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(ops().map((o) => o.name).sort()).toEqual([...ROUTES].sort());
    for (const name of ['StreamClientFrame', 'StreamServerFrame', 'Envelope', 'SendRequest', 'ResendRequest', 'DeviceMismatchError', 'QueueFullError'])
      expect(doc.components.schemas[name], name).toBeDefined();
  });

  it('the error schema lists every code of the error table, and each route its codes under their statuses', () => {
    const listed = doc.components.schemas.ErrorInfo!.properties!.code!.enum!;
    expect([...listed].sort()).toEqual([...API_ERROR_CODES].sort());
    for (const c of ['device_mismatch', 'message_id_conflict', 'queue_full', 'upgrade_required', 'rate_limited'] as const) expect(listed).toContain(c);

    const answered = new Set<string>();
    for (const { name, op } of ops()) {
      const errors = Object.entries(op.responses).filter(([s]) => Number(s) >= 400);
      expect(errors.length, name).toBeGreaterThan(0);
      for (const [status, r] of errors) {
        const codes = codesOf(r.content?.['application/json']?.schema);
        expect(codes.length, `${name} ${status}`).toBeGreaterThan(0);
        for (const c of codes) {
          expect(ERRORS[c as ApiErrorCode]?.status, `${name}: ${c} under ${status}`).toBe(Number(status));
          answered.add(c);
        }
      }
      if (op.security) expect(codesOf(op.responses['401']?.content?.['application/json']?.schema), name).toContain('unauthorized');
    }
    // Every code is answered by some route; bad_frame only on the stream, as an error frame.
    expect([...answered, 'bad_frame'].sort()).toEqual([...API_ERROR_CODES].sort());
    const send = doc.paths['/v1/messages']!.post!.responses;
    expect(codesOf(send['409']!.content!['application/json']!.schema).sort()).toEqual(['device_mismatch', 'message_id_conflict']);
    expect(codesOf(send['507']!.content!['application/json']!.schema)).toEqual(['queue_full']);
    expect(JSON.stringify(send['409'])).toContain('#/components/schemas/DeviceMismatchError');
    expect(JSON.stringify(send['507'])).toContain('#/components/schemas/QueueFullError');
    expect(doc.paths['/v1/accounts/{username}/bundles']!.post!.security).toEqual([{ deviceToken: [] }]);
    expect(doc.paths['/v1/accounts']!.post!.security).toBeUndefined();
  });

  it('carries the validation rules of the schemas the server uses', () => {
    const reg = doc.components.schemas.RegisterRequest!.properties!;
    expect(reg.username!.pattern).toBe('^[a-z0-9._-]{3,32}$');
    expect(reg.ak!.minLength).toBe(43);
    expect(reg.ak!.maxLength).toBe(43);
    const pq = doc.components.schemas.PqPrekeyIn!.properties!;
    expect(pq.pub!.minLength).toBe(1579);
    // A recipient is a username: what the document admits is what the server looks up.
    expect(doc.components.schemas.SendRequest!.properties!.recipient!.pattern).toBe('^[a-z0-9._-]{3,32}$');
  });

  it('a deviceId in a path admits exactly 1..2^32-1, in the document and the server alike', async () => {
    const param = doc.paths['/v1/accounts/{username}/devices/{deviceId}']!.delete!.parameters!.find((p) => p.name === 'deviceId')!;
    const pattern = new RegExp(param.schema.pattern!);
    const cases: [string, boolean][] = [
      ['1', true],
      ['9', true],
      ['10', true],
      ['999999999', true],
      ['4294967295', true],
      ['4294967294', true],
      ['4199999999', true],
      ['0', false],
      ['01', false],
      ['4294967296', false],
      ['4300000000', false],
      ['9999999999', false],
      ['42949672950', false],
      ['-1', false],
      ['1.0', false],
    ];
    for (const [id, ok] of cases) {
      expect(pattern.test(id), id).toBe(ok);
      const r = await server.call('GET', `/v1/accounts/alice/devices/${id}/keys`, { token: alice.devices[0]!.token });
      // Valid ids reach the handler (another device's keys are forbidden to alice's device 1).
      if (ok) expect(r.status, id).toBe(id === '1' ? 200 : 403);
      else expect(r.json, id).toMatchObject({ error: { code: 'invalid_request' } });
    }
  });

  it('an envelope id admits exactly 1..2^63-1, in the document and the server alike', async () => {
    const ids = doc.components.schemas.AckRequest!.properties!.ids as unknown as { items: { pattern: string } };
    const pattern = new RegExp(ids.items.pattern);
    for (const [id, ok] of [
      ['1', true],
      ['9223372036854775807', true],
      ['999999999999999999', true],
      ['9223372036854775808', false],
      ['9999999999999999999', false],
      ['0', false],
    ] as const) {
      expect(pattern.test(id), id).toBe(ok);
      const r = await server.call('POST', '/v1/messages/ack', { token: alice.devices[0]!.token, body: { ids: [id] } });
      expect(r.status, `${id}: ${JSON.stringify(r.json)}`).toBe(ok ? 200 : 400);
    }
  });

  it('a request body is required in the document exactly where the server refuses a request without one', async () => {
    const token = alice.devices[0]!.token;
    for (const { name, method, path, op } of ops()) {
      if (!op.requestBody) continue;
      const url = path.replace('{username}', 'alice').replace('{deviceId}', '1');
      const r = await server.call(method.toUpperCase(), url, { ...(op.security ? { token } : {}) });
      const refusedForNoBody = r.status === 400 && (r.json as { error: { message: string } }).error.message === 'a JSON body is required';
      expect(refusedForNoBody, `${name}: ${r.status} ${JSON.stringify(r.json)}`).toBe(op.requestBody.required === true);
    }
    // Bundles and key uploads take an empty body: documented as optional.
    expect(doc.paths['/v1/accounts/{username}/bundles']!.post!.requestBody!.required).toBe(false);
    expect(doc.paths['/v1/messages']!.post!.requestBody!.required).toBe(true);
  });

  it('a body that is not JSON is refused with 415, before anything is done', async () => {
    const r = await server.call('POST', '/v1/accounts/alice/bundles', { token: alice.devices[0]!.token, rawBody: 'device_ids=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(415);
    expect(r.json).toMatchObject({ error: { code: 'unsupported_media_type' } });
  });

  it('a plain GET of /v1/stream is a documented JSON refusal: 401 without a token, 426 with one', async () => {
    const documented = Object.keys(doc.paths['/v1/stream']!.get!.responses);
    const anon = await server.call('GET', '/v1/stream');
    expect(anon.status).toBe(401);
    expect(anon.json).toMatchObject({ error: { code: 'unauthorized' } });
    const plain = await server.call('GET', '/v1/stream', { token: alice.devices[0]!.token });
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(plain.json).toMatchObject({ error: { code: 'upgrade_required' } });
    expect(documented).toEqual(expect.arrayContaining(['101', '401', '426']));
  });

  it('GET /v1/messages takes a limit from 1, refuses anything else, and caps it at the page size', async () => {
    const token = alice.devices[0]!.token;
    for (const q of ['1', '256', '100000', '99999999999999999999999']) expect((await server.call('GET', `/v1/messages?limit=${q}`, { token })).status, q).toBe(200);
    for (const q of ['0', '-1', 'abc', '1.5', '']) {
      const r = await server.call('GET', `/v1/messages?limit=${q}`, { token });
      expect(r.status, q).toBe(400);
      expect(r.json).toMatchObject({ error: { code: 'invalid_request' } });
    }
  });
});
