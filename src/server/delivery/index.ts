/**
 * The delivery model, wired: queue repository, group-committed sends and acks, the stream hub
 * with its wake-ups, the WebSocket endpoint and the GC timer. app.ts mounts the REST routes
 * (routes/messages.ts) and main.ts attaches the stream to the http server.
 */
import type { Server } from 'node:http';
import { GroupCommit } from './group-commit.js';
import { DEFAULT_LIMITS, type DeliveryLimits, GC_INTERVAL_MS, MAX_ACKS_PER_BATCH, maxFrameBytes } from './limits.js';
import { type DeviceRef, QueueRepository } from './queue-repository.js';
import { type QueuedNotice, type Sender, SendService } from './send-service.js';
import { type SqlDatabase, PgSqlDatabase } from './sql.js';
import { StreamHub, type AckCommitter } from './stream-hub.js';
import { StreamServer } from './stream-socket.js';
import { LocalWakeBus, PgWakeBus, type WakeBus } from './wake-bus.js';
import { runGc, type GcReport } from './gc.js';

export interface AckService extends AckCommitter {
  /** Like ack, answering how many of the ids were still queued. */
  count(device: DeviceRef, ids: readonly string[]): Promise<number>;
}

export interface DeliveryDeps {
  readonly db: SqlDatabase;
  readonly authenticate: (token: string) => Promise<Sender | null>;
  /** For LISTEN/NOTIFY between instances; absent on embedded PGlite (one instance). */
  readonly databaseUrl?: string;
  readonly limits?: Partial<DeliveryLimits>;
  readonly now?: () => number;
  /** GC every this many ms; 0 turns the timer off (tests call gc()). */
  readonly gcIntervalMs?: number;
  readonly log?: (msg: string, err?: unknown) => void;
}

export interface Delivery {
  readonly repo: QueueRepository;
  readonly sends: SendService;
  readonly acks: AckService;
  readonly hub: StreamHub;
  readonly stream: StreamServer;
  readonly limits: DeliveryLimits;
  /** Connects LISTEN (PostgreSQL) and starts the GC timer. */
  start(): Promise<void>;
  /** Routes `/v1/stream` upgrades of this http server to the stream. */
  attach(server: Server): void;
  gc(): Promise<GcReport>;
  /** Adds a listener for what each commit queued (wake-ups); listeners must not block. */
  onQueued(listener: (queued: readonly QueuedNotice[]) => void): void;
  /** A device was removed (after its removal committed): close its streams on every instance. */
  deviceRemoved(device: DeviceRef): Promise<void>;
  /** Graceful: refuse new streams, let waiting sends and acks commit, close the streams. */
  close(): Promise<void>;
}

export function createDelivery(deps: DeliveryDeps): Delivery {
  const limits: DeliveryLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const now = deps.now ?? Date.now;
  const log = deps.log ?? (() => undefined);
  const repo = new QueueRepository(deps.db);
  const wakeBus: WakeBus =
    deps.db.kind === 'postgres' && deps.databaseUrl ? new PgWakeBus(deps.databaseUrl) : new LocalWakeBus();
  const hub = new StreamHub(repo, (err) => log('stream read failed', err));
  wakeBus.subscribe((w) => hub.wake(w));

  const queuedListeners: ((queued: readonly QueuedNotice[]) => void)[] = [];
  const sends = new SendService({
    repo,
    wakeBus,
    limits,
    now,
    onCommitted: (byDevice) => hub.offer(byDevice),
    onQueued: (queued) => {
      for (const l of queuedListeners) {
        try {
          l(queued);
        } catch (err) {
          log('queued listener failed', err);
        }
      }
    },
  });

  const ackBatcher = new GroupCommit<{ device: DeviceRef; ids: readonly string[] }, number>(
    async (items) => {
      const pairs = items.flatMap((it) => it.ids.map((id) => ({ device: it.device, id })));
      const gone = await repo.deleteAcked(pairs);
      return items.map((it) => it.ids.filter((id) => gone.has(id)).length);
    },
    { maxBatch: MAX_ACKS_PER_BATCH, maxPending: 100_000 },
  );
  const acks: AckService = {
    async ack(device, ids) {
      await ackBatcher.submit({ device, ids });
      return new Set(ids);
    },
    count: (device, ids) => ackBatcher.submit({ device, ids }),
  };

  const stream = new StreamServer({
    authenticate: deps.authenticate,
    hub,
    sends,
    acks,
    maxFrameBytes: maxFrameBytes(limits),
    log,
  });

  let gcTimer: NodeJS.Timeout | null = null;
  let gcRunning: Promise<GcReport> | null = null;
  const gc = (): Promise<GcReport> => {
    gcRunning ??= runGc(repo, { retentionMs: limits.retentionMs, now }).finally(() => {
      gcRunning = null;
    });
    return gcRunning;
  };

  return {
    repo,
    sends,
    acks,
    hub,
    stream,
    limits,
    async start() {
      if (wakeBus instanceof PgWakeBus) await wakeBus.start();
      const every = deps.gcIntervalMs ?? GC_INTERVAL_MS;
      if (every > 0) {
        gcTimer = setInterval(() => {
          gc().catch((err: unknown) => log('delivery gc failed', err));
        }, every);
        gcTimer.unref();
      }
    },
    attach(server) {
      stream.attach(server);
    },
    gc,
    onQueued(listener) {
      queuedListeners.push(listener);
    },
    async deviceRemoved(device) {
      hub.kick(device);
      await wakeBus.removed([device]);
    },
    async close() {
      if (gcTimer) clearInterval(gcTimer);
      // New streams and sends are refused; what is in flight is committed and answered; then
      // the streams close (1012) and their clients reconnect to another instance.
      hub.stopAccepting();
      stream.draining = true;
      await sends.idle();
      await ackBatcher.idle();
      hub.closeAll();
      stream.close();
      await gcRunning?.catch(() => undefined);
      await wakeBus.close();
      if (deps.db instanceof PgSqlDatabase) await deps.db.close();
    },
  };
}

export type { Sender, DeviceInfo, QueuedNotice } from './send-service.js';
export type { DeliveryLimits } from './limits.js';
export { PgSqlDatabase, AppSqlDatabase } from './sql.js';
export { asDeviceRef, type DeviceRef } from './queue-repository.js';
