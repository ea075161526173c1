/**
 * The delivery model inside the server process: built from the app's config and dependencies,
 * mounted through buildApp's extensions, attached to the HTTP server for `/v1/stream`.
 * main.ts: `const delivery = mountDelivery(config, deps)`, pass `delivery.extensions` to
 * startServer, then `await delivery.start(server)`; on stop, `await delivery.close()` first.
 */
import type { AppDeps, AppExtensions } from '../app.js';
import type { Config } from '../config.js';
import { loggableError } from '../errors.js';
import { authenticateToken } from '../services/accounts.js';
import { messageRoutes } from '../routes/messages.js';
import type { AuthContext } from '../services/deps.js';
import type { RunningServer } from '../server.js';
import { createDelivery, type Delivery } from './index.js';
import { deviceRef, queueRemovedDevice } from './queue-repository.js';
import type { Sender } from './send-service.js';
import { AppSqlDatabase, PgSqlDatabase } from './sql.js';

export interface MountedDelivery {
  readonly delivery: Delivery;
  readonly extensions: AppExtensions;
  /** After the server listens: the stream on its HTTP server, LISTEN and GC. */
  start(server: RunningServer): Promise<void>;
  /** Graceful: closes the streams once waiting sends and acks are committed. */
  close(): Promise<void>;
}

export function mountDelivery(config: Config, deps: AppDeps, opts: { now?: () => number } = {}): MountedDelivery {
  const db = deps.db;
  const sql = db.kind === 'postgres' && db.url ? new PgSqlDatabase(db.url, config.delivery.dbPool) : new AppSqlDatabase(db);
  const sender = (a: AuthContext): Sender => ({ username: a.username, deviceRef: deviceRef(a.accountId, a.deviceId), device: a.deviceId });
  const authenticate = async (token: string): Promise<Sender | null> => {
    const a = await authenticateToken(deps, token);
    return a ? sender(a) : null;
  };
  const now = opts.now ?? ((): number => deps.clock().getTime());
  const log = (msg: string, err?: unknown): void => deps.log.error(err === undefined ? {} : { error: loggableError(err) }, msg);
  const delivery = createDelivery({
    db: sql,
    authenticate,
    databaseUrl: db.url,
    limits: config.delivery,
    gcIntervalMs: config.delivery.gcIntervalMs,
    now,
    log,
    observer: deps.metrics.delivery,
  });
  deps.metrics.bindDelivery({
    streams: () => delivery.hub.size,
    // Per-device totals, not count(*) over every envelope on each scrape (issue 13).
    queued: () => delivery.repo.waitingTotal(),
  });
  // In the removal's transaction: GC collects the device's queue once (migration 0006).
  deps.deviceRemoval.inTransaction((tx, e) => queueRemovedDevice(tx, e.accountId, e.deviceId, now()));
  deps.deviceRemoval.afterCommit((e) => delivery.deviceRemoved(deviceRef(e.accountId, e.deviceId)));
  return {
    delivery,
    // Declared routes: mounted and documented in /v1/openapi.json with the v1 routes.
    extensions: { routes: () => messageRoutes({ delivery, sender, log }) },
    async start(server) {
      delivery.attach(server.httpServer);
      await delivery.start();
    },
    close: () => delivery.close(),
  };
}
