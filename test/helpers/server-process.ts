/**
 * A real GChat server as a child process (`tsx src/server/main.ts`) on a fixed free port, so it can
 * be killed and restarted under clients that keep its URL. Database: a fresh PostgreSQL database
 * when one is reachable, else an embedded PGlite directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FreshDatabase, freshDatabase, postgresReachable } from '../server/delivery-fixture.js';

const root = join(import.meta.dirname, '../..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Waits until `url` answers 200 from the child process just started, or fails with its output when
 * it exits first or takes over two minutes (a slow, shared machine).
 */
export async function untilHealthy(child: ChildProcess, url: string, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}):\n${output()}`);
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false, // not listening yet
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what} did not become ready:\n${output()}`);
}

/** A new migrated PostgreSQL database, or null when none is reachable outside CI (loudly). */
async function freshPgDatabase(prefix: string): Promise<FreshDatabase | null> {
  return (await postgresReachable()) ? freshDatabase(prefix) : null;
}

/** Generous limits: the tests drive many registrations and sends from one loopback address. */
const TEST_ENV = {
  GCHAT_RATE_REGISTER_IP: '10000/60',
  GCHAT_RATE_LOGIN_IP: '10000/60',
  GCHAT_RATE_LOGIN_ACCOUNT: '10000/60',
  GCHAT_RATE_LOGIN_ACCOUNT_IP: '10000/60',
  GCHAT_RATE_BUNDLES_IP: '100000/60',
  GCHAT_RATE_BUNDLES_ACCOUNT: '100000/60',
  GCHAT_RATE_LOOKUPS_IP: '100000/60',
  GCHAT_RATE_OPK_CLAIMS: '100000/60',
  GCHAT_ARGON2_MEMORY_KIB: '19456',
  GCHAT_ARGON2_ITERATIONS: '2',
  LOG_LEVEL: 'warn',
};

export class ServerProcess {
  private child: ChildProcess | null = null;
  private output = '';
  /** How much of the output `log` keeps (the tail); `create({ wholeLog: true })` keeps all of it. */
  private logLimit = 20_000;
  readonly url: string;

  private constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly cleanup: () => Promise<void>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** A server on an existing PostgreSQL database (several processes may share one); not started. */
  static async onDatabase(databaseUrl: string, env: Record<string, string> = {}): Promise<ServerProcess> {
    const port = await freePort();
    return new ServerProcess(port, { ...TEST_ENV, ...env, PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: databaseUrl }, async () => undefined);
  }

  static async create(opts: { prefix: string; env?: Record<string, string>; wholeLog?: boolean }): Promise<ServerProcess> {
    const port = await freePort();
    const db = await freshPgDatabase(opts.prefix);
    const dataDir = db ? null : mkdtempSync(join(tmpdir(), 'gchat-srv-'));
    const env: Record<string, string> = { ...TEST_ENV, ...(opts.env ?? {}), PORT: String(port), HOST: '127.0.0.1' };
    if (db) env.DATABASE_URL = db.url;
    else env.GCHAT_DATA_DIR = dataDir!;
    const s = new ServerProcess(port, env, async () => {
      await db?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });
    if (opts.wholeLog) s.logLimit = Infinity;
    await s.start();
    return s;
  }

  /** The PostgreSQL database the server runs on (null on embedded PGlite), for tests that edit its rows. */
  get databaseUrl(): string | null {
    return this.env.DATABASE_URL ?? null;
  }

  get database(): 'postgres' | 'pglite' {
    return this.env.DATABASE_URL ? 'postgres' : 'pglite';
  }

  async start(): Promise<void> {
    // node itself runs the server (tsx as a loader, not a wrapper process), so a signal reaches it.
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/server/main.ts')], {
      cwd: root,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (d: Buffer): void => {
      this.output += d.toString();
      if (this.output.length > this.logLimit) this.output = this.output.slice(-this.logLimit);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await untilHealthy(child, `${this.url}/ready`, 'server', () => this.output);
  }

  /** SIGKILL: no graceful shutdown, as in a crash. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
    this.child = null;
    // Nothing may still answer on the port (a restart that hit a leftover server would prove nothing).
    const answered = await fetch(`${this.url}/live`).then(
      () => true,
      () => false,
    );
    if (answered) throw new Error(`a server still answers on port ${this.port} after the kill`);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  get log(): string {
    return this.output;
  }

  async close(): Promise<void> {
    await this.kill('SIGTERM');
    await this.cleanup();
  }
}
