/**
 * Putting the parts together: dependencies from the configuration, the app, the HTTP listener
 * and the prekey GC job. main.ts runs it for `npm start`; tests run it on port 0.
 */
import type { AddressInfo, Socket } from 'node:net';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { pino, type Logger } from 'pino';
import { defaultCrypto, systemRandom } from '../protocol/primitives.js';
import { buildApp, type App, type AppDeps, type AppExtensions } from './app.js';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db.js';
import { createMetrics } from './metrics.js';
import { createRateLimiters, scheduleRateCounterGc } from './rate-limit.js';
import { DeviceRemovalHooks } from './services/hooks.js';
import { argon2idHasher } from './services/passwords.js';
import { schedulePrekeyGc } from './services/prekey-gc.js';

/** How often ended rate-limit windows are deleted. */
const RATE_COUNTER_GC_MS = 60_000;

export function createLogger(level: Config['logLevel']): Logger {
  // Never a body, a token or a key: only the fields the code logs explicitly.
  return pino({ level, redact: ['req.headers.authorization', 'token', 'password'] });
}

/** The dependencies of the app from the configuration; `overrides` fix the clock and the like in tests. */
export function createAppDeps(config: Config, db: Database, log: Logger, overrides: Partial<AppDeps> = {}): AppDeps {
  const clock = overrides.clock ?? (() => new Date());
  return {
    db,
    log,
    clock,
    crypto: defaultCrypto(),
    random: systemRandom,
    passwords: argon2idHasher(config.argon2),
    limits: config.limits,
    deviceRemoval: new DeviceRemovalHooks(),
    rate: createRateLimiters(config.rateLimits, db, () => clock().getTime()),
    metrics: createMetrics({ processMetrics: false }),
    http: { maxBodyBytes: config.limits.maxBodyBytes, trustProxy: config.trustProxy, metricsToken: config.metrics.token },
    ...overrides,
  };
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly app: App;
  readonly deps: AppDeps;
  /** The Node HTTP server (for WebSocket upgrades). */
  readonly httpServer: Server;
  /** Stops listening, lets open requests finish (up to `graceMs`), stops the GC job. Leaves the database open. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(opts: { config: Config; deps: AppDeps; extensions?: AppExtensions; gc?: boolean }): Promise<RunningServer> {
  const { config, deps } = opts;
  const app = buildApp(deps, opts.extensions);
  const server: Server = createServer(
    {
      headersTimeout: config.headersTimeoutSeconds * 1000,
      // Node checks the timeout only this often (30 s by default).
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutSeconds * 500),
    },
    app.express,
  );
  // Node answers 408 to a connection without a whole request head in time, but not always (idle
  // sockets opened while the server is busy were seen open minutes later on Node 20): until its
  // first request or upgrade, a connection is also destroyed a little after that bound.
  // One sweep for all of them, not a timer per socket: Node keeps a socket's cleared timer and its
  // listener for the socket's life, which an idle WebSocket would carry for hours.
  const headersMs = config.headersTimeoutSeconds * 1000 + 2000;
  const unstarted = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => void unstarted.set(socket, Date.now()));
  const started = (req: IncomingMessage): void => void unstarted.delete(req.socket);
  server.on('request', started);
  server.on('upgrade', started);
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [socket, opened] of unstarted) {
      if (socket.destroyed) unstarted.delete(socket);
      else if (now - opened > headersMs) {
        unstarted.delete(socket);
        socket.destroy();
      }
    }
  }, Math.min(1000, headersMs / 4));
  sweep.unref();
  server.once('close', () => clearInterval(sweep));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const stopPrekeyGc = opts.gc === false ? () => undefined : schedulePrekeyGc(deps, config.prekeyGcIntervalSeconds * 1000);
  const stopRateGc = opts.gc === false ? () => undefined : scheduleRateCounterGc(deps, RATE_COUNTER_GC_MS);
  const stopGc = () => {
    stopPrekeyGc();
    stopRateGc();
  };
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    app,
    deps,
    httpServer: server,
    async close(graceMs = 10_000) {
      stopGc();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

/** Opens the configured database and applies migrations. */
export async function openConfiguredDatabase(config: Config, log: Logger): Promise<Database> {
  const db = await openDatabase(config.database);
  const applied = await db.migrate();
  log.info({ database: db.kind, applied }, 'database ready');
  return db;
}
