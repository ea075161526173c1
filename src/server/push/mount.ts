/**
 * Push and TURN inside the server process: the routes (through buildApp's extensions, so they
 * are documented in /v1/openapi.json), the wake-ups fed by the delivery model's commits, and the
 * removal of a removed device's registrations (in the removal's transaction).
 */
import type { AppDeps, AppExtensions } from '../app.js';
import type { Config } from '../config.js';
import type { Delivery } from '../delivery/index.js';
import { AppSqlDatabase } from '../delivery/sql.js';
import { turnRoutes } from '../routes/turn.js';
import type { DispatcherDeps } from './dispatcher.js';
import { PushRepository } from './repository.js';
import { pushRoutes } from './routes.js';
import { PushService } from './service.js';

export interface MountedPush {
  readonly push: PushService;
  readonly extensions: AppExtensions;
  /** Loads the VAPID keys, starts the providers; wake-ups flow from then on. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function mountPush(config: Config, deps: AppDeps, delivery: Delivery, opts: { onOutcome?: DispatcherDeps['onOutcome'] } = {}): MountedPush {
  const repo = new PushRepository(new AppSqlDatabase(deps.db));
  const push = new PushService({
    config: config.push,
    repo,
    metrics: { sent: deps.metrics.pushSent, failed: deps.metrics.pushFailed, removed: deps.metrics.pushRemoved, dropped: deps.metrics.pushDropped },
    now: () => deps.clock().getTime(),
    log: (msg, fields) => deps.log.warn(fields, msg),
    ...(opts.onOutcome ? { onOutcome: opts.onOutcome } : {}),
  });
  deps.deviceRemoval.inTransaction(async (tx, e) => {
    await tx.query('DELETE FROM push_registrations WHERE account_id = $1 AND device_id = $2', [e.accountId, e.deviceId]);
  });
  delivery.onQueued((notices) => push.queued(notices));
  return {
    push,
    extensions: { routes: () => [...pushRoutes(push), ...turnRoutes(config.turn, () => deps.clock().getTime())] },
    start: () => push.start(),
    close: () => push.close(),
  };
}

/** Two sets of extensions as one. */
export function mergeExtensions(...all: AppExtensions[]): AppExtensions {
  return {
    routes: (deps) => all.flatMap((e) => e.routes?.(deps) ?? []),
    routers: all.flatMap((e) => e.routers ?? []),
  };
}
