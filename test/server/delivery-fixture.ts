/**
 * Shared by the delivery tests and the relay bench: fresh databases, seeded accounts and
 * devices, an in-process delivery server, and a stream client.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { newMessageId } from '../../src/protocol/content.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { WebSocket } from 'ws';
import { openDatabase, type Database } from '../../src/server/db.js';
import type { Delivery } from '../../src/server/delivery/index.js';
import { mountDelivery } from '../../src/server/delivery/mount.js';
import type { Envelope, SendRequest, ServerFrame } from '../../src/server/delivery/schemas.js';
import type { AppDeps } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { createAppDeps, createLogger, startServer as startHttp } from '../../src/server/server.js';

export const ADMIN_URL = process.env.GCHAT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when the test PostgreSQL answers. Under CI=true an unreachable server is a failure. */
export async function postgresReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    console.warn(`\n*** PostgreSQL at ${ADMIN_URL} is unreachable: the delivery tests skip, the client tests run on embedded PGlite ***\n`);
    return false;
  }
}

export interface FreshDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A new empty database on the test server, migrated. */
export async function freshDatabase(prefix = 'gchat_delivery'): Promise<FreshDatabase> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = await openDatabase({ kind: 'postgres', url, poolSize: 2 });
  await db.migrate();
  await db.close();
  return {
    url,
    async drop() {
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      // Let pools that are still closing finish first: FORCE would terminate their connections
      // mid-close, and the client would surface that as an uncaught error. Bounded; then FORCE.
      for (let i = 0; i < 50; i++) {
        const r = await a.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
        if (r.rows[0].n === 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export interface SeededDevice {
  readonly device: number;
  readonly token: string;
  /** IK, base64url, as the copies must carry it. */
  readonly key: string;
}
export interface SeededAccount {
  readonly username: string;
  readonly accountId: string;
  readonly devices: SeededDevice[];
}

type Exec = (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/** Accounts with devices, written straight into Server I's tables (random keys, no signatures). */
export async function seedAccounts(exec: Exec, spec: readonly { username: string; devices: number }[]): Promise<SeededAccount[]> {
  const out: SeededAccount[] = [];
  for (const s of spec) {
    const a = await exec(
      `INSERT INTO accounts (username, password_hash, ak_pub, next_device_id) VALUES ($1, 'x', decode($2, 'hex'), $3) RETURNING id::text AS id`,
      [s.username, randomBytes(32).toString('hex'), s.devices + 1],
    );
    const accountId = String(a.rows[0]!.id);
    const devices: SeededDevice[] = [];
    for (let d = 1; d <= s.devices; d++) devices.push(await addDevice(exec, accountId, d));
    out.push({ username: s.username, accountId, devices });
  }
  return out;
}

export async function addDevice(exec: Exec, accountId: string, device: number): Promise<SeededDevice> {
  const token = randomBytes(32).toString('base64url');
  const ik = randomBytes(32);
  await exec(
    `INSERT INTO devices (account_id, device_id, ik_pub, device_cert, token_hash)
     VALUES ($1, $2, decode($3, 'hex'), decode($4, 'hex'), decode($5, 'hex'))`,
    [accountId, device, ik.toString('hex'), randomBytes(64).toString('hex'), createHash('sha256').update(token).digest('hex')],
  );
  return { device, token, key: ik.toString('base64url') };
}

export function pgExec(url: string): { exec: Exec; close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return {
    exec: async (sql, params) => ({ rows: (await pool.query(sql, params)).rows as Record<string, unknown>[] }),
    close: () => pool.end(),
  };
}

export interface TestServer {
  readonly port: number;
  readonly url: string;
  readonly delivery: Delivery;
  readonly db: Database;
  readonly deps: AppDeps;
  close(): Promise<void>;
}

/**
 * One instance in this process, wired as main.ts wires it (Server I's app and server, the
 * delivery mounted through its extensions), on an ephemeral port.
 */
export async function startServer(opts: {
  readonly databaseUrl?: string;
  readonly db?: Database;
  /** The clock of the delivery model (ms); defaults to Date.now. */
  readonly now?: () => number;
  /** Extra environment, e.g. GCHAT_MAX_COPIES. */
  readonly env?: Record<string, string>;
  readonly port?: number;
}): Promise<TestServer> {
  const config = loadConfig({
    DATABASE_URL: opts.databaseUrl,
    PORT: String(opts.port ?? 0),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    GCHAT_DELIVERY_GC_INTERVAL_SECONDS: '0',
    ...opts.env,
  });
  const db = opts.db ?? (await openDatabase({ kind: 'postgres', url: opts.databaseUrl!, poolSize: 2 }));
  const now = opts.now ?? Date.now;
  const deps = createAppDeps(config, db, createLogger('silent'), { clock: () => new Date(now()) });
  const mounted = mountDelivery(config, deps, { now });
  const server = await startHttp({ config, deps, extensions: mounted.extensions, gc: false });
  await mounted.start(server);
  return {
    port: server.port,
    url: server.url,
    delivery: mounted.delivery,
    db,
    deps,
    async close() {
      await mounted.close();
      server.httpServer.closeAllConnections();
      await server.close(100);
      if (!opts.db) await db.close();
    },
  };
}

/** A message_id (UUIDv7): the protocol's own generator. */
export function uuidv7(ms = Date.now()): string {
  return newMessageId(ms, systemRandom);
}

/**
 * A body the relay accepts for a type 2 copy (SPEC §5: version 0x01, type 0x02, a 40-byte header
 * and a 16-byte tag), ending with `label` (base64url) so tests can tell messages apart.
 */
export function sealed(label: string, type: 1 | 2 = 2): string {
  const head = type === 2 ? Buffer.alloc(2 + 40 + 16) : Buffer.alloc(2 + 1322);
  head[0] = 0x01;
  head[1] = type;
  return Buffer.concat([head, Buffer.from(label, 'base64url')]).toString('base64url');
}

/**
 * A send from `from` (one of its devices) to every device of `to` and every other device of
 * `from`; every copy's body is `sealed(label)`.
 */
export function makeSend(
  from: SeededAccount,
  fromDevice: number,
  to: SeededAccount,
  label: string,
  messageId = uuidv7(),
): SendRequest {
  const body = sealed(label);
  const self = to.username === from.username;
  const copies: SendRequest['copies'] = [];
  for (const d of to.devices) {
    if (!(self && d.device === fromDevice)) copies.push({ user: to.username, device: d.device, key: d.key, type: 2, body });
  }
  if (!self) {
    for (const d of from.devices) {
      if (d.device !== fromDevice) copies.push({ user: from.username, device: d.device, key: d.key, type: 2, body });
    }
  }
  return { message_id: messageId, recipient: to.username, copies };
}

export async function rest(
  base: string,
  token: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A device's stream, for tests and the bench. */
export class StreamClient {
  readonly received: Envelope[] = [];
  /** Ids whose ack the server confirmed. */
  readonly confirmed = new Set<string>();
  drained = false;
  private readonly sent = new Map<string, (f: { status: number; body: unknown }) => void>();
  private rid = 0;
  private waiters: (() => void)[] = [];
  closed = false;
  closeCode = 0;
  onEnvelopes: ((envs: Envelope[]) => void) | null = null;

  private constructor(readonly ws: WebSocket, readonly autoAck: boolean) {
    ws.on('message', (data) => this.onFrame(JSON.parse(data.toString()) as ServerFrame));
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      for (const [, r] of this.sent) r({ status: 0, body: null });
      this.sent.clear();
      this.notify();
    });
    ws.on('error', () => undefined);
  }

  static connect(port: number, token: string, autoAck = true): Promise<StreamClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['gchat.v1'], {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      const c = new StreamClient(ws, autoAck);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`stream refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  private onFrame(f: ServerFrame): void {
    if (f.op === 'envelopes') {
      this.received.push(...f.envelopes);
      this.onEnvelopes?.(f.envelopes);
      if (this.autoAck) this.ack(f.envelopes.map((e) => e.id));
    } else if (f.op === 'acked') {
      for (const id of f.ids) this.confirmed.add(id);
    } else if (f.op === 'drained') {
      this.drained = true;
    } else if (f.op === 'sent') {
      const r = this.sent.get(f.rid);
      this.sent.delete(f.rid);
      r?.({ status: f.status, body: f.body });
    }
    this.notify();
  }

  ack(ids: string[]): void {
    if (ids.length > 0 && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op: 'ack', ids }));
  }

  send(req: SendRequest): Promise<{ status: number; body: any }> {
    const rid = String(++this.rid);
    return new Promise((resolve) => {
      if (this.ws.readyState !== WebSocket.OPEN) return resolve({ status: 0, body: null });
      this.sent.set(rid, resolve);
      this.ws.send(JSON.stringify({ op: 'send', rid, ...req }));
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when cond() holds (checked after every frame), or rejects after timeoutMs. */
  async until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting on a stream');
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}
