/** Prometheus metrics of the bridge (served on /metrics). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    bridged: new Counter({ name: 'gchat_bridge_events_bridged_total', help: 'Messages bridged, by direction', labelNames: ['direction'] as const, registers: [registry] }),
    failures: new Counter({ name: 'gchat_bridge_failures_total', help: 'Bridging failures, by direction', labelNames: ['direction'] as const, registers: [registry] }),
    decryptErrors: new Counter({ name: 'gchat_bridge_decrypt_errors_total', help: 'Matrix events the bridge could not decrypt', registers: [registry] }),
    txnSeconds: new Histogram({ name: 'gchat_bridge_transaction_seconds', help: 'Time to process a homeserver transaction', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
