/**
 * Operations: who may read /metrics, what the delivery metrics say after real traffic, and a whole
 * session's server log at debug level searched for every secret the clients used.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GChatClient } from '../../src/client/client.js';
import { keys, type StoredIdentity } from '../../src/client/state.js';
import { createMetrics, serveMetrics } from '../../src/server/metrics.js';
import { PASSWORD, memoryOptions, registered, waitFor } from '../helpers/clients.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ServerProcess, freePort } from '../helpers/server-process.js';

const TOKEN = 'a-long-enough-metrics-token-0123';

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

await describeEachDatabase('operations: /metrics', (kind) => {
  let t: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    server = await startTestServer(t.db, { delivery: true, env: { GCHAT_METRICS_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('answers only the configured bearer token', async () => {
    expect((await server.call('GET', '/metrics')).status).toBe(401);
    expect((await server.call('GET', '/metrics', { token: 'a-long-enough-metrics-token-0124' })).status).toBe(401);
    expect((await server.call('GET', '/metrics', { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    const ok = await server.call('GET', '/metrics', { token: TOKEN });
    expect(ok.status).toBe(200);
  });

  it('counts queued, delivered and acked envelopes, open streams and queue depth', async () => {
    const alice = await registered(server.url, 'alice');
    const bob = await registered(server.url, 'bob');
    await alice.client.start();
    await bob.client.start();
    try {
      for (let i = 0; i < 5; i++) await alice.client.sendText('bob', `hello ${i}`);
      await waitFor('bob to get 5', () => bob.seen.messages.length === 5);
      await waitFor('alice to see them delivered', () => [...alice.seen.statuses.values()].filter((s) => s === 'delivered' || s === 'read').length === 5);
      const text = (await server.call('GET', '/metrics', { token: TOKEN })).json as string;
      expect(metric(text, 'gchat_envelopes_queued_total')).toBeGreaterThanOrEqual(5);
      expect(metric(text, 'gchat_envelopes_delivered_total')).toBeGreaterThanOrEqual(5);
      expect(metric(text, 'gchat_envelopes_acked_total')).toBeGreaterThanOrEqual(5);
      expect(metric(text, 'gchat_streams')).toBe(2);
      expect(metric(text, 'gchat_queue_envelopes')).toBeGreaterThanOrEqual(0);
      expect(text).toContain('gchat_http_request_duration_seconds_bucket');

      // With bob away, what alice sends waits in his queue, and the gauge says so.
      await bob.client.stop();
      await waitFor('one stream left', async () => metric((await server.call('GET', '/metrics', { token: TOKEN })).json as string, 'gchat_streams') === 1);
      for (let i = 0; i < 3; i++) await alice.client.sendText('bob', `later ${i}`);
      await waitFor('3 envelopes waiting', async () => metric((await server.call('GET', '/metrics', { token: TOKEN })).json as string, 'gchat_queue_envelopes') >= 3);
    } finally {
      await alice.client.stop();
      await bob.client.stop();
    }
  });
});

describe('operations: a separate metrics listener', () => {
  it('serves /metrics without a token on its own address, and nothing else', async () => {
    const m = createMetrics({ processMetrics: false });
    const port = await freePort();
    const s = await serveMetrics(m.registry, { host: '127.0.0.1', port });
    try {
      const ok = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('gchat_envelopes_queued_total');
      expect((await fetch(`http://127.0.0.1:${port}/v1/accounts/alice`)).status).toBe(404);
    } finally {
      s.close();
    }
  });
});

describe('operations: logs', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await ServerProcess.create({ prefix: 'gchat_logs', env: { LOG_LEVEL: 'debug' }, wholeLog: true });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a whole session at debug level logs no token, password, recovery code, private key, plaintext or body', async () => {
    const secrets: string[] = [PASSWORD];
    const alice = await registered(server.url, 'alice');
    const bob = await registered(server.url, 'bob');
    secrets.push(alice.recoveryCode, bob.recoveryCode);
    for (const o of [alice.options, bob.options]) {
      const id = (await o.store.get(keys.identity)) as unknown as StoredIdentity;
      secrets.push(id.token, id.akSeed, id.ikSeed);
    }
    await alice.client.start();
    await bob.client.start();
    const texts = ['the plaintext that must not leak 1', 'the plaintext that must not leak 2'];
    for (const t of texts) await alice.client.sendText('bob', t);
    await waitFor('bob to read them', () => bob.seen.messages.length === 2);
    secrets.push(...texts);

    // Bodies as the server holds them: bob away, alice sends, bob's queue read over REST.
    await bob.client.stop();
    await alice.client.sendText('bob', 'the plaintext that must not leak 3');
    secrets.push('the plaintext that must not leak 3');
    const bobToken = ((await bob.options.store.get(keys.identity)) as unknown as StoredIdentity).token;
    let bodies: string[] = [];
    await waitFor('the envelope in bob\'s queue', async () => {
      const r = await fetch(`${server.url}/v1/messages`, { headers: { authorization: `Bearer ${bobToken}` } });
      bodies = ((await r.json()) as { envelopes: { body: string }[] }).envelopes.map((e) => e.body);
      return bodies.length > 0;
    });
    secrets.push(...bodies.map((b) => b.slice(0, 48)));

    // A new device from the recovery code (password and backup paths), a wrong password, hostile input.
    const second = await GChatClient.addDevice(memoryOptions(), { serverUrl: server.url, username: 'alice', password: PASSWORD, secret: alice.recoveryCode });
    const wrong = await fetch(`${server.url}/v1/accounts/alice/backup/recover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'wrong password that must not leak' }),
    });
    expect(wrong.status).toBeGreaterThanOrEqual(400);
    secrets.push('wrong password that must not leak');
    await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bobToken}` },
      body: JSON.stringify({ message_id: 'not-an-id-hostile-input-marker', recipient: 'alice\u0000hostile-input-marker', copies: [] }),
    });
    secrets.push('hostile-input-marker');
    await alice.client.stop();
    await second.stop();

    const log = server.log;
    expect(log).toContain('"level":20'); // debug lines were written: the search covers them
    for (const s of secrets) expect(log.includes(s), `the server log holds a secret (${s.slice(0, 6)}...)`).toBe(false);
  });
});
