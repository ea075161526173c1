/** Starts the whole bridge from a configuration: database, Matrix API, crypto, GChat clients, HTTP. */
import type { Server } from 'node:http';
import { type BridgeDb, openBridgeDb } from './db.js';
import { Bridge, type MatrixEvent } from './bridge.js';
import type { BridgeConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { MatrixApi } from './matrix/api.js';
import { type Pinger, pingUntilReachable } from './matrix/ping.js';
import { appserviceApp, type Transaction } from './matrix/transactions.js';
import { createMetrics } from './metrics.js';
import { loadRegistration } from './registration.js';
import { startEncryption, type Encryption } from './crypto/encryption.js';
import { trace, tracing } from './trace.js';

export interface RunningBridge {
  bridge: Bridge;
  url: string;
  stop(): Promise<void>;
}

export async function startBridge(config: BridgeConfig, log: Logger = createLogger(config.log_level)): Promise<RunningBridge> {
  const registration = loadRegistration(config);
  const metrics = createMetrics();
  const db: BridgeDb = await openBridgeDb({ dataDir: config.data_dir, ...(config.database.url ? { url: config.database.url } : {}) });
  const api = new MatrixApi(config.homeserver.url, registration.as_token);
  const bridge = new Bridge(config, db, api, log, metrics);
  let encryption: Encryption | null = null;
  if (config.encryption.enabled) {
    encryption = await startEncryption({ dataDir: config.data_dir, secretsKey: Buffer.from(config.secrets_key, 'base64'), db, api, log });
    bridge.encryption = encryption;
  }

  let pinger: Pinger | null = null;
  const handler = {
    async transaction(txn: Transaction) {
      const ephemeral = [...(txn.ephemeral ?? []), ...(txn['de.sorunome.msc2409.ephemeral'] ?? [])] as { type: string; room_id?: string; content: Record<string, unknown> }[];
      log.debug({ fields: Object.keys(txn), events: txn.events?.length ?? 0, toDevice: txn['de.sorunome.msc2409.to_device']?.length ?? 0, ephemeral: ephemeral.map((e) => e?.type) }, 'transaction');
      // Keys first: a room key that arrives with the event that needs it must be in place.
      if (encryption) await encryption.onTransaction(txn);
      if (tracing) for (const ev of (txn.events ?? []) as { event_id?: string }[]) if (ev.event_id) trace(ev.event_id, 'keys_fed');
      for (const ev of txn.events ?? []) await bridge.onMatrixEvent(ev as MatrixEvent);
      for (const ev of ephemeral) await bridge.onEphemeral(ev);
      // Keys this transaction brought may unlock events that came before them.
      await bridge.retryPending();
      // Whatever crypto state the transaction changed is on disk before the homeserver hears 200.
      await encryption?.flush();
    },
    isOurUser: (userId: string) => bridge.gchatUserOf(userId) !== null,
    failed: () => bridge.gaps.open(),
    async health() {
      await db.query('SELECT 1');
      return { encryption: !!encryption, homeserver_reaches_bridge: pinger?.reached ?? false, checking_for_missed_events: bridge.gaps.active };
    },
  };
  const inbound = appserviceApp({ hsToken: registration.hs_token, db, handler, log, metrics });
  const app = inbound.app;
  // Events still waiting for a key are looked at between transactions too (and given up on in time).
  // So are the portals whose window for events the homeserver never sent has ended (matrix/gaps.ts).
  const retry = setInterval(
    () =>
      void inbound
        .exclusive(async () => {
          await bridge.retryPending();
          await bridge.sweepGaps();
        })
        .catch((e: unknown) => log.warn({ err: (e as Error).message }, 'retry of pending events failed')),
    5_000,
  );
  // A start is a recovery: the homeserver may hold transactions it made while we were down.
  bridge.gaps.open();
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.appservice.port, config.appservice.bind, () => resolve(s));
    s.once('error', reject);
  });
  // Listening: the homeserver can call us back, so it can leave its recovery mode now rather than at its next backoff.
  pinger = pingUntilReachable(api, registration.id, log, () => bridge.gaps.open());
  await bridge.accounts.startAll();
  log.info({ port: config.appservice.port }, 'bridge listening');
  return {
    bridge,
    url: `http://${config.appservice.bind}:${config.appservice.port}`,
    async stop() {
      clearInterval(retry);
      pinger?.stop();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await bridge.stop();
      await encryption?.close();
      await db.close();
    },
  };
}
