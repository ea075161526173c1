/** Prometheus metrics, on a registry of their own (several apps can live in one test process). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** Wake-ups: accepted by the push service, refused or unreachable, registrations removed, dropped at a bound. */
  readonly pushSent: Counter<'provider'>;
  readonly pushFailed: Counter<'provider'>;
  readonly pushRemoved: Counter<'provider'>;
  readonly pushDropped: Counter<'stage'>;
}

export function createMetrics(opts: { processMetrics: boolean }): Metrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'gchat_http_requests_total',
      help: 'HTTP requests by route template and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'gchat_http_request_duration_seconds',
      help: 'HTTP request duration by route template',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
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
