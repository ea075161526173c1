/**
 * GET /v1/turn against real coturn (use-auth-secret): the credentials it hands out allocate a
 * relay that carries packets to a peer; an expired one, a forged one, or one moved to another
 * username is refused by coturn itself.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientAccount, registerAccount } from '../helpers/accounts.js';
import { allocate, type Coturn, coturnMissing, startCoturn } from '../helpers/coturn.js';
import { openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SECRET = 'turn-shared-secret-for-tests-0123456789';
const TTL = 600;
const missing = coturnMissing();

interface TurnJson {
  username: string;
  credential: string;
  ttl: number;
  uris: string[];
}

describe.skipIf(missing !== null)('TURN credentials with real coturn', () => {
  let t: TestDatabase;
  let turn: Coturn;
  let server: TestServer;
  let alice: ClientAccount;

  const env = () => ({ GCHAT_TURN_SECRET: SECRET, GCHAT_TURN_URLS: `turn:127.0.0.1:${turn.port}?transport=udp,turn:127.0.0.1:${turn.port}?transport=tcp`, GCHAT_TURN_TTL_SECONDS: String(TTL) });

  beforeAll(async () => {
    t = await openTestDatabase('pglite');
    turn = await startCoturn(SECRET);
    server = await startTestServer(t.db, { delivery: true, env: env() });
    alice = await registerAccount(server, 'alice');
  });
  afterAll(async () => {
    await server?.close();
    await turn?.close();
    await t?.close();
  });

  async function credentials(s: TestServer, token: string): Promise<TurnJson> {
    const r = await s.call('GET', '/v1/turn', { token });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    return r.json as TurnJson;
  }

  it('hands out credentials in the shared-secret scheme that allocate a relay on coturn', async () => {
    const c = await credentials(server, alice.devices[0]!.token);
    expect(c.uris).toEqual([`turn:127.0.0.1:${turn.port}?transport=udp`, `turn:127.0.0.1:${turn.port}?transport=tcp`]);
    expect(c.ttl).toBe(TTL);
    const [expiry, who] = c.username.split(':');
    expect(who).toBe('alice.1');
    const left = Number(expiry) - Date.now() / 1000;
    expect(left).toBeGreaterThan(TTL - 120);
    expect(left).toBeLessThanOrEqual(TTL + 1);
    expect(c.credential).toBe(createHmac('sha1', SECRET).update(c.username).digest('base64'));
    // coturn may take a moment to open its listener: the first allocation is retried, within bounds.
    let a = await allocate(turn, c.username, c.credential);
    for (let i = 0; i < 20 && !a.relayed && !a.refused; i++) {
      await new Promise((r) => setTimeout(r, 500));
      a = await allocate(turn, c.username, c.credential);
    }
    expect(a.relayed, `${a.output}\n--- coturn ---\n${turn.log().slice(-3000)}`).toBe(true);
  });

  it('coturn refuses an expired credential, a forged one, and one moved to another username', async () => {
    const ok = await credentials(server, alice.devices[0]!.token);
    const forged = createHmac('sha1', 'not-the-secret-not-the-secret').update(ok.username).digest('base64');
    const f = await allocate(turn, ok.username, forged);
    expect(f.refused, f.output).toBe(true);
    const moved = `${ok.username.split(':')[0]}:bob.1`;
    const m = await allocate(turn, moved, ok.credential);
    expect(m.refused, m.output).toBe(true);
    // A server whose clock is two TTLs behind hands out credentials that have already expired.
    const past = await startTestServer(t.db, { delivery: true, env: env(), overrides: { clock: () => new Date(Date.now() - 2 * TTL * 1000) } });
    try {
      const old = await credentials(past, alice.devices[0]!.token);
      expect(Number(old.username.split(':')[0])).toBeLessThan(Date.now() / 1000);
      const e = await allocate(turn, old.username, old.credential);
      expect(e.refused, e.output).toBe(true);
    } finally {
      await past.close();
    }
    // And the good one still works, so the refusals were about the credentials.
    expect((await allocate(turn, ok.username, ok.credential)).relayed).toBe(true);
  });

  it('needs a device token, and answers 404 where no TURN relay is configured', async () => {
    expect((await server.call('GET', '/v1/turn')).status).toBe(401);
    expect((await server.call('GET', '/v1/turn', { token: 'A'.repeat(43) })).status).toBe(401);
    const none = await startTestServer(t.db, { delivery: true });
    try {
      const r = await none.call('GET', '/v1/turn', { token: alice.devices[0]!.token });
      expect(r.status).toBe(404);
      expect((r.json as { error: { code: string } }).error.code).toBe('not_found');
    } finally {
      await none.close();
    }
  });
});
