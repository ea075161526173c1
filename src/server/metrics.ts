/** Prometheus metrics, on a registry of their own (several apps can live in one test process). */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeliveryObserver } from './delivery/index.js';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly delivery: DeliveryObserver;
  /** Where the gauges read their values at scrape time (set once delivery is built). */
  bindDelivery(source: DeliverySource): void;
  /** Wake-ups: accepted by the push service, refused or unreachable, registrations removed, dropped at a bound. */
  readonly pushSent: Counter<'provider'>;
  readonly pushFailed: Counter<'provider'>;
  readonly pushRemoved: Counter<'provider'>;
  readonly pushDropped: Counter<'stage'>;
}

export interface DeliverySource {
  /** Open streams (WebSockets) on this instance. */
  streams(): number;
  /** Envelopes waiting in every device's queue (all instances: it is the database's count). */
  queued(): Promise<number>;
}

export function createMetrics(opts: { processMetrics: boolean }): Metrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let source: DeliverySource | null = null;

  const queued = new Counter({ name: 'gchat_envelopes_queued_total', help: 'Envelopes committed to device queues', registers });
  const delivered = new Counter({ name: 'gchat_envelopes_delivered_total', help: 'Envelopes written to streams or read over REST', registers });
  const acked = new Counter({ name: 'gchat_envelopes_acked_total', help: 'Envelopes acknowledged and removed from queues', registers });
  const gcDeleted = new Counter({ name: 'gchat_gc_deleted_total', help: 'Rows deleted by delivery GC, by kind', labelNames: ['kind'], registers });
  const gcSeconds = new Histogram({ name: 'gchat_gc_duration_seconds', help: 'Duration of a delivery GC run', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers });
  new Gauge({
    name: 'gchat_streams',
    help: 'Open /v1/stream WebSockets on this instance',
    registers,
    collect() {
      this.set(source?.streams() ?? 0);
    },
  });
  new Gauge({
    name: 'gchat_queue_envelopes',
    help: 'Envelopes waiting in device queues (database-wide)',
    registers,
    async collect() {
      if (source) this.set(await source.queued());
    },
  });

  return {
    registry,
    httpRequests: new Counter({
      name: 'gchat_http_requests_total',
      help: 'HTTP requests by route template and status (sends, acks and fetches are routes here)',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'gchat_http_request_duration_seconds',
      help: 'HTTP request duration by route template (send latency is POST /v1/messages)',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    delivery: {
      queued: (n) => queued.inc(n),
      delivered: (n) => delivered.inc(n),
      acked: (n) => acked.inc(n),
      gc(report, seconds) {
        gcDeleted.inc({ kind: 'expired_envelopes' }, report.expiredEnvelopes);
        gcDeleted.inc({ kind: 'expired_sends' }, report.expiredSends);
        gcDeleted.inc({ kind: 'orphaned_envelopes' }, report.orphanedEnvelopes);
        gcSeconds.observe(seconds);
      },
    },
    bindDelivery(s) {
      source = s;
    },
    pushSent: new Counter({ name: 'gchat_push_sent_total', help: 'wake-ups the push service accepted', labelNames: ['provider'], registers: [registry] }),
    pushFailed: new Counter({
      name: 'gchat_push_failed_total',
      help: 'wake-ups the push service refused or that did not reach it',
      labelNames: ['provider'],
      registers: [registry],
    }),
    pushRemoved: new Counter({
      name: 'gchat_push_registrations_removed_total',
      help: 'registrations removed because the push service called them dead',
      labelNames: ['provider'],
      registers: [registry],
    }),
    pushDropped: new Counter({ name: 'gchat_push_dropped_total', help: 'wake-ups dropped at a bound', labelNames: ['stage'], registers: [registry] }),
  };
}

/**
 * A listener that serves only GET /metrics, for an address the world cannot reach (e.g.
 * 127.0.0.1:9464 or a private interface), so Prometheus needs no token.
 */
export async function serveMetrics(registry: Registry, listen: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'only /metrics here' } }));
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return server;
}
