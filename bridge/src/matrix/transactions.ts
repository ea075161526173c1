/**
 * The appservice HTTP API the homeserver calls: transactions (processed completely, crypto
 * included, before the 200; idempotent by transaction id, persisted), user queries, /health and
 * /metrics. matrix-appservice's own listener answers 200 before its handlers run and keeps the last
 * transaction id only in memory, so the bridge serves these routes itself.
 */
import express, { type Request, type Response } from 'express';
import type { BridgeDb } from '../db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { trace, tracing } from '../trace.js';

export interface Transaction {
  events?: unknown[];
  ephemeral?: unknown[];
  'de.sorunome.msc2409.ephemeral'?: unknown[];
  'de.sorunome.msc2409.to_device'?: unknown[];
  'org.matrix.msc3202.device_lists'?: { changed?: string[]; left?: string[] };
  'org.matrix.msc3202.device_one_time_keys_count'?: Record<string, Record<string, Record<string, number>>>;
  'org.matrix.msc3202.device_unused_fallback_key_types'?: Record<string, Record<string, string[]>>;
}

export interface TransactionHandler {
  transaction(txn: Transaction): Promise<void>;
  isOurUser(userId: string): boolean;
  health(): Promise<Record<string, unknown>>;
  /** A transaction failed: the homeserver now holds us for down and will recover us later. */
  failed?(): void;
}

export function appserviceApp(opts: { hsToken: string; db: BridgeDb; handler: TransactionHandler; log: Logger; metrics: Metrics }): {
  app: express.Express;
  /** Runs `task` between transactions (never during one). */
  exclusive(task: () => Promise<void>): Promise<void>;
} {
  const { hsToken, db, handler, log, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '20mb' }));

  const authorised = (req: Request, res: Response): boolean => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7) : typeof req.query.access_token === 'string' ? req.query.access_token : null;
    if (token === hsToken) return true;
    res.status(token ? 403 : 401).json({ errcode: token ? 'M_FORBIDDEN' : 'M_UNAUTHORIZED', error: 'bad homeserver token' });
    return false;
  };

  let chain: Promise<unknown> = Promise.resolve();
  app.put('/_matrix/app/v1/transactions/:txnId', async (req, res) => {
    if (!authorised(req, res)) return;
    const txnId = String(req.params.txnId);
    log.debug({ txnId }, 'transaction received');
    const body = req.body as unknown;
    if (!body || typeof body !== 'object' || Array.isArray(body)) return void res.status(400).json({ errcode: 'M_BAD_JSON', error: 'transaction body must be an object' });
    const events = tracing ? ((body as { events?: { event_id?: string; origin_server_ts?: number }[] }).events ?? []) : [];
    for (const e of events) if (e.event_id) trace(e.event_id, 'txn_in', { origin: e.origin_server_ts ?? 0 });
    // One transaction at a time, in order (the homeserver sends them so; a retry may overlap).
    const run = chain.then(async () => {
      const [seen] = await db.query('SELECT 1 FROM as_txns WHERE txn_id = $1', [txnId]);
      if (seen) return;
      for (const e of events) if (e.event_id) trace(e.event_id, 'txn_start');
      const end = metrics.txnSeconds.startTimer();
      await handler.transaction(body as Transaction);
      await db.query('INSERT INTO as_txns (txn_id, done_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [txnId, Date.now()]);
      end();
    });
    chain = run.catch(() => undefined);
    try {
      await run;
      res.json({});
      for (const e of events) if (e.event_id) trace(e.event_id, 'txn_done');
    } catch (e) {
      log.error({ txnId, err: (e as Error).message }, 'transaction failed; the homeserver will retry it');
      handler.failed?.();
      res.status(500).json({ errcode: 'M_UNKNOWN', error: 'transaction failed, retry later' });
    }
  });

  app.get('/_matrix/app/v1/users/:userId', (req, res) => {
    if (!authorised(req, res)) return;
    if (handler.isOurUser(String(req.params.userId))) res.json({});
    else res.status(404).json({ errcode: 'M_NOT_FOUND', error: 'no such user' });
  });
  app.get('/_matrix/app/v1/rooms/:alias', (req, res) => {
    if (!authorised(req, res)) return;
    res.status(404).json({ errcode: 'M_NOT_FOUND', error: 'no such room' });
  });
  app.post('/_matrix/app/v1/ping', (req, res) => {
    if (!authorised(req, res)) return;
    res.json({});
  });

  app.get('/health', async (_req, res) => {
    try {
      res.json({ status: 'ok', ...(await handler.health()) });
    } catch (e) {
      res.status(503).json({ status: 'unavailable', error: (e as Error).message });
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const exclusive = (task: () => Promise<void>) => {
    const run = chain.then(task);
    chain = run.catch(() => undefined);
    return run;
  };
  app.use((_req: Request, res: Response) => res.status(404).json({ errcode: 'M_UNRECOGNIZED', error: 'unknown endpoint' }));
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: express.NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 400;
    res.status(status).json({ errcode: 'M_BAD_JSON', error: err.type ?? 'bad request' });
  });
  return { app, exclusive };
}
