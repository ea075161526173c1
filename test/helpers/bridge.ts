/**
 * The bridge as a child process (node + tsx loader, so SIGKILL really kills it), with its config
 * and registration in a temp dir; plus a bare Matrix user over the client-server API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../bridge/src/config.js';
import { makeRegistration } from '../../bridge/src/registration.js';
import { freePort, untilHealthy } from './server-process.js';
import { SERVER_NAME } from './synapse.js';

const root = join(import.meta.dirname, '../..');

export class BridgeProcess {
  private child: ChildProcess | null = null;
  private output = '';
  readonly dir: string;
  readonly registrationFile: string;
  private configFile: string;
  private constructor(
    readonly port: number,
    private config: Record<string, unknown>,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'gchat-bridge-'));
    this.registrationFile = join(this.dir, 'registration.yaml');
    this.configFile = join(this.dir, 'config.yaml');
  }

  /** Writes the registration (for the homeserver to load); `start` later, once the homeserver runs. */
  /** `homeserverSees`: the URL the registration gives the homeserver (a TransactionTap in front of the bridge). */
  static async prepare(opts: { gchatUrl: string; allowed: string[]; encryption?: boolean; databaseUrl?: string; messageStatusEvents?: boolean; homeserverSees?: string }): Promise<BridgeProcess> {
    const port = await freePort();
    const config = {
      homeserver: { url: 'http://127.0.0.1:1', domain: SERVER_NAME },
      appservice: { bind: '127.0.0.1', port, registration: 'registration.yaml', ...(opts.homeserverSees ? { url: opts.homeserverSees } : {}) },
      gchat: { server_url: opts.gchatUrl },
      data_dir: 'data',
      ...(opts.databaseUrl ? { database: { url: opts.databaseUrl } } : {}),
      encryption: { enabled: opts.encryption ?? true },
      ...(opts.messageStatusEvents !== undefined ? { message_status_events: opts.messageStatusEvents } : {}),
      secrets_key: randomBytes(32).toString('base64'),
      allowed: { users: opts.allowed, domains: [] },
      log_level: process.env.BRIDGE_LOG_LEVEL ?? 'warn',
    };
    const b = new BridgeProcess(port, config);
    writeFileSync(b.registrationFile, stringify(makeRegistration(parseConfig(config, b.dir))));
    return b;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(homeserverUrl?: string): Promise<void> {
    if (homeserverUrl) this.config = { ...this.config, homeserver: { url: homeserverUrl, domain: SERVER_NAME } };
    writeFileSync(this.configFile, stringify(this.config));
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bridge/src/main.ts'), '-c', this.configFile], { cwd: root, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-30_000);
      if (process.env.BRIDGE_LOG_FILE) appendFileSync(process.env.BRIDGE_LOG_FILE, d);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await untilHealthy(child, `${this.url}/health`, 'bridge', () => this.output);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
    this.child = null;
  }

  get log(): string {
    return this.output;
  }

  async close(): Promise<void> {
    await this.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type Ev = { type: string; sender: string; event_id: string; content: Record<string, unknown>; room_id: string };

/** A Matrix user over plain HTTP (unencrypted rooms): invites, sends, and a /sync loop that collects events. */
export class PlainMatrixUser {
  readonly timeline: Ev[] = [];
  readonly invites: string[] = [];
  private since: string | null = null;
  private running = true;
  private loop: Promise<void>;
  constructor(
    readonly hs: string,
    readonly userId: string,
    private readonly token: string,
  ) {
    this.loop = this.syncLoop();
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.hs}${path}`, { method, headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  private async syncLoop(): Promise<void> {
    while (this.running) {
      try {
        const q = new URLSearchParams({ timeout: '2000', ...(this.since ? { since: this.since } : {}) });
        const r = await this.call<{ next_batch: string; rooms?: { join?: Record<string, { timeline: { events: Ev[] } }>; invite?: Record<string, unknown> } }>('GET', `/_matrix/client/v3/sync?${q}`);
        this.since = r.next_batch;
        for (const [roomId, room] of Object.entries(r.rooms?.join ?? {})) for (const e of room.timeline.events) this.timeline.push({ ...e, room_id: roomId });
        for (const roomId of Object.keys(r.rooms?.invite ?? {})) if (!this.invites.includes(roomId)) this.invites.push(roomId);
      } catch {
        if (this.running) await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  messages(roomId: string, from?: string): Ev[] {
    return this.timeline.filter((e) => e.room_id === roomId && e.type === 'm.room.message' && (!from || e.sender === from));
  }

  async send(roomId: string, content: Record<string, unknown>, type = 'm.room.message'): Promise<string> {
    const r = await this.call<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/${type}/${randomBytes(8).toString('hex')}`, content);
    return r.event_id;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/**
 * Between the homeserver and the bridge: forwards every request, except that it can answer one
 * chosen transaction 200 itself without passing it on, as a homeserver would that stored a
 * transaction and never sent it.
 */
export class TransactionTap {
  private drop: ((events: { content?: { body?: unknown } }[]) => boolean) | null = null;
  dropped = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
    public target: string,
  ) {}

  static async start(): Promise<TransactionTap> {
    const port = await freePort();
    let tap!: TransactionTap;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'PUT' && req.url?.startsWith('/_matrix/app/v1/transactions/') && tap.drop) {
          const events = ((JSON.parse(body.toString() || '{}') as { events?: { content?: { body?: unknown } }[] }).events ?? []);
          if (tap.drop(events)) {
            tap.drop = null;
            tap.dropped++;
            return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          }
        }
        // A fresh connection per request (agent: false): one kept alive to a bridge that was killed
        // would fail the first request after its restart, and Synapse would hold the bridge for down.
        const headers = { ...req.headers, host: new URL(tap.target).host, 'content-length': String(body.length) };
        const out = httpRequest(`${tap.target}${req.url}`, { method: req.method, headers, agent: false }, (r) => {
          const parts: Buffer[] = [];
          r.on('data', (c: Buffer) => parts.push(c));
          r.on('end', () => res.writeHead(r.statusCode ?? 502, { 'content-type': r.headers['content-type'] ?? 'application/json' }).end(Buffer.concat(parts)));
        });
        out.on('error', () => res.writeHead(502).end());
        out.end(body);
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    tap = new TransactionTap(server, `http://127.0.0.1:${port}`, '');
    return tap;
  }

  /** The next transaction with an event whose body is `body` is answered here and never reaches the bridge. */
  dropNextWith(body: string): void {
    this.drop = (events) => events.some((e) => e.content?.body === body);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
