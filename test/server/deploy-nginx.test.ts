/**
 * The nginx configuration in deploy/nginx, run for real: Debian's nginx terminates TLS on loopback
 * in front of two server instances on one PostgreSQL. Clients (the SDK) send and receive over REST
 * and the WebSocket stream through it, and keep doing so when one instance is SIGKILLed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GChatClient } from '../../src/client/client.js';
import type { FetchLike } from '../../src/client/transport/api.js';
import type { WebSocketFactory, WebSocketLike } from '../../src/client/transport/stream.js';
import { registered, waitFor } from '../helpers/clients.js';
import { ServerProcess, freePort } from '../helpers/server-process.js';
import { type FreshDatabase, freshDatabase, postgresReachable } from './delivery-fixture.js';

const root = join(import.meta.dirname, '../..');
const NGINX = '/usr/sbin/nginx';
const haveNginx = existsSync(NGINX);
if (!haveNginx) {
  if (process.env.CI === 'true') throw new Error(`${NGINX} is missing: .ci/run installs Debian's nginx`);
  console.warn(`\n*** ${NGINX} is missing (apt-get install -y nginx): the nginx deploy test skips ***\n`);
}
const METRICS_TOKEN = 'metrics-token-for-the-nginx-test';

/** Open streams an instance holds, from its own /metrics (asked directly, not through nginx). */
async function streamsOn(s: ServerProcess): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  return Number(/^gchat_streams (\d+)$/m.exec(text)?.[1] ?? NaN);
}

const reachable = haveNginx && (await postgresReachable());

/** fetch for the SDK over node:https, trusting only the test's own certificate. */
function fetchTrusting(ca: string): FetchLike {
  return (url, init) =>
    new Promise((resolve, reject) => {
      const req = request(url, { method: init.method, headers: init.headers, ca, signal: init.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text: async () => text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(init.body);
    });
}

const wsTrusting =
  (ca: string): WebSocketFactory =>
  (url, protocols) =>
    new WebSocket(url, protocols, { ca }) as unknown as WebSocketLike;

/** The repo's site config, pointed at this test's ports, certificate and directory. */
function siteConfig(dir: string, ports: { http: number; https: number; a: number; b: number }): string {
  const site = readFileSync(join(root, 'deploy/nginx/gchat.conf'), 'utf8');
  writeFileSync(join(dir, 'gchat-locations.conf'), readFileSync(join(root, 'deploy/nginx/gchat-locations.conf'), 'utf8'));
  const out = site
    .replace('server 127.0.0.1:8081', `server 127.0.0.1:${ports.a}`)
    .replace('server 127.0.0.1:8082', `server 127.0.0.1:${ports.b}`)
    .replace(/^\s*listen \[::\]:\d+( ssl http2)?;\n/gm, '')
    .replace('listen 80;', `listen 127.0.0.1:${ports.http};`)
    .replace('listen 443 ssl http2;', `listen 127.0.0.1:${ports.https} ssl http2;`)
    .replace(/ssl_certificate\s+\S+;/, `ssl_certificate ${join(dir, 'cert.pem')};`)
    .replace(/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${join(dir, 'key.pem')};`)
    .replace('/etc/nginx/sites-enabled/gchat-locations.conf', join(dir, 'gchat-locations.conf'));
  // Every substitution must have applied, or the test would run some other configuration.
  for (const must of [`127.0.0.1:${ports.a}`, `127.0.0.1:${ports.b}`, `:${ports.https} ssl http2`, 'cert.pem', 'key.pem', join(dir, 'gchat-locations.conf')]) {
    if (!out.includes(must)) throw new Error(`deploy/nginx/gchat.conf changed shape: could not set ${must}`);
  }
  return out;
}

describe.skipIf(!reachable)('deploy: nginx with TLS in front of two instances', () => {
  let dir: string;
  let db: FreshDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let nginx: ChildProcess;
  let url: string;
  let httpPort: number;
  let ca: string;
  const clients: GChatClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gchat-nginx-'));
    chmodSync(dir, 0o755); // nginx's workers drop to an unprivileged user and keep request bodies here
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    db = await freshDatabase('gchat_nginx');
    // The instances see nginx's X-Forwarded-For, as docs/deploy.md configures them.
    const env = { GCHAT_TRUST_PROXY: 'loopback', GCHAT_METRICS_TOKEN: METRICS_TOKEN };
    a = await ServerProcess.onDatabase(db.url, env);
    b = await ServerProcess.onDatabase(db.url, env);
    await a.start();
    await b.start();
    const ports = { http: await freePort(), https: await freePort(), a: a.port, b: b.port };
    httpPort = ports.http;
    writeFileSync(join(dir, 'gchat.conf'), siteConfig(dir, ports));
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  include ${join(dir, 'gchat.conf')};
}
`,
    );
    execFileSync(NGINX, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'pipe' });
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' });
    url = `https://127.0.0.1:${ports.https}`;
    const get = fetchTrusting(ca);
    await waitFor('nginx to answer', async () => (await get(`${url}/ready`, { method: 'GET', headers: {} }).catch(() => ({ status: 0 }))).status === 200, 60_000);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    nginx?.kill('SIGQUIT');
    await a?.close();
    await b?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('redirects plain HTTP to HTTPS and keeps /metrics from the world', async () => {
    const plain = await fetch(`http://127.0.0.1:${httpPort}/ready`, { redirect: 'manual' });
    expect(plain.status).toBe(301);
    const m = await fetchTrusting(ca)(`${url}/metrics`, { method: 'GET', headers: {} });
    expect(m.status).toBe(404);
  });

  it('carries sends and WebSocket delivery, and keeps carrying them when one instance is killed', async () => {
    const opts = { fetch: fetchTrusting(ca), webSocket: wsTrusting(ca) };
    const alice = await registered(url, 'alice', opts);
    const bob = await registered(url, 'bob', opts);
    clients.push(alice.client, bob.client);
    await alice.client.start();
    await bob.client.start();
    const bobSeen = bob.seen;
    const texts = (from: number, n: number) => Array.from({ length: n }, (_, i) => `through nginx ${from + i}`);

    for (const t of texts(0, 20)) await alice.client.sendText('bob', t);
    await waitFor('bob to receive the first 20', () => bobSeen.messages.length >= 20);

    // The instance holding a stream dies; its client reconnects through nginx to the other one,
    // and sends keep working.
    const [onA, onB] = [await streamsOn(a), await streamsOn(b)];
    expect(onA + onB).toBe(2);
    const victim = onA > 0 ? a : b;
    const survivor = victim === a ? b : a;
    await victim.kill();
    await waitFor('both streams on the surviving instance', async () => (await streamsOn(survivor)) === 2);
    for (const t of texts(20, 20)) await alice.client.sendText('bob', t);
    await bob.client.sendText('alice', 'still here');
    await waitFor('bob to receive all 40', () => bobSeen.messages.length >= 40);
    await waitFor('alice to receive the reply', async () => (await alice.client.messages('bob')).some((m) => !m.outgoing));

    // Every one, once; in the sender's order by its timestamps (the outbox sends in parallel).
    const got = [...bobSeen.messages].sort((x, y) => x.ts - y.ts).map((m) => m.body);
    expect(got).toEqual(texts(0, 40));
    await waitFor('alice\'s outbox to empty', async () => (await alice.client.pendingCount()) === 0);
  });
});
