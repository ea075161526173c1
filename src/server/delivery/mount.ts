/**
 * The delivery model inside the server process: built from the app's config and dependencies,
 * mounted through buildApp's extensions, attached to the HTTP server for `/v1/stream`.
 * main.ts: `const delivery = mountDelivery(config, deps)`, pass `delivery.extensions` to
 * startServer, then `await delivery.start(server)`; on stop, `await delivery.close()` first.
 */
import { Router } from 'express';
import type { AppDeps, AppExtensions } from '../app.js';
import type { Config } from '../config.js';
import { loggableError } from '../errors.js';
import { authenticateToken } from '../services/accounts.js';
import { messagesRouter, SEND_PATHS } from '../routes/messages.js';
import type { RunningServer } from '../server.js';
import { createDelivery, type Delivery } from './index.js';
import { mergeDeliveryOpenApi } from './openapi.js';
import { deviceRef } from './queue-repository.js';
import type { Sender } from './send-service.js';
import { AppSqlDatabase, PgSqlDatabase } from './sql.js';

export interface MountedDelivery {
  readonly delivery: Delivery;
  readonly extensions: AppExtensions;
  /** After the server listens: the stream on its HTTP server, the OpenAPI paths, LISTEN and GC. */
  start(server: RunningServer): Promise<void>;
  /** Graceful: closes the streams once waiting sends and acks are committed. */
  close(): Promise<void>;
}

export function mountDelivery(config: Config, deps: AppDeps, opts: { now?: () => number } = {}): MountedDelivery {
  const db = deps.db;
  const sql = db.kind === 'postgres' && db.url ? new PgSqlDatabase(db.url, config.delivery.dbPool) : new AppSqlDatabase(db);
  const authenticate = async (token: string): Promise<Sender | null> => {
    const a = await authenticateToken(deps, token);
    return a ? { username: a.username, deviceRef: deviceRef(a.accountId, a.deviceId), device: a.deviceId } : null;
  };
  const log = (msg: string, err?: unknown): void => deps.log.error(err === undefined ? {} : { error: loggableError(err) }, msg);
  const delivery = createDelivery({
    db: sql,
    authenticate,
    databaseUrl: db.url,
    limits: config.delivery,
    gcIntervalMs: config.delivery.gcIntervalMs,
    now: opts.now ?? (() => deps.clock().getTime()),
    log,
  });
  deps.deviceRemoval.afterCommit((e) => delivery.deviceRemoved(deviceRef(e.accountId, e.deviceId)));
  const router = Router();
  router.use(messagesRouter({ delivery, authenticate, log }));
  return {
    delivery,
    extensions: { routers: [{ path: '/', router }], ownBodyPaths: SEND_PATHS },
    async start(server) {
      mergeDeliveryOpenApi(server.app.openapi);
      delivery.attach(server.httpServer);
      await delivery.start();
    },
    close: () => delivery.close(),
  };
}
