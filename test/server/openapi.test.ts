/** The OpenAPI document: generated from the route declarations, served at /v1/openapi.json. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface Doc {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>; requestBody?: unknown }>>;
  components: { schemas: Record<string, { properties?: Record<string, { pattern?: string; minLength?: number; maxLength?: number }> }> };
}

describe('OpenAPI document', () => {
  let t: TestDatabase;
  let server: TestServer;
  let doc: Doc;
  beforeAll(async () => {
    t = await openTestDatabase('pglite');
    server = await startTestServer(t.db);
    const r = await server.call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    doc = r.json as Doc;
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('is OpenAPI 3.1 and lists every v1 route', () => {
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    expect(ops.sort()).toEqual(
      [
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
      ].sort(),
    );
  });

  it('documents the error format on every route, and the token on authenticated ones', () => {
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        const errors = Object.entries(op.responses).filter(([s]) => Number(s) >= 400);
        expect(errors.length, `${m} ${p}`).toBeGreaterThan(0);
        for (const [, r] of errors) expect(r.content?.['application/json']?.schema.$ref).toBe('#/components/schemas/Error');
      }
    }
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
  });
});
