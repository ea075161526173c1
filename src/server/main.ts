/** `npm start`: configuration, database and migrations, HTTP; SIGTERM/SIGINT stop it gracefully. */
import { ConfigError, loadConfig, type Config } from './config.js';
import { loggableError } from './errors.js';
import { createAppDeps, createLogger, openConfiguredDatabase, startServer } from './server.js';
import { createMetrics } from './metrics.js';
import { mountDelivery } from './delivery/mount.js';
import { mergeExtensions, mountPush } from './push/mount.js';

let config: Config;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  throw e;
}

const log = createLogger(config.logLevel);
const db = await openConfiguredDatabase(config, log);
const deps = createAppDeps(config, db, log, { metrics: createMetrics({ processMetrics: true }) });
const delivery = mountDelivery(config, deps);
const push = mountPush(config, deps, delivery.delivery);
const server = await startServer({ config, deps, extensions: mergeExtensions(delivery.extensions, push.extensions) });
await push.start();
await delivery.start(server);
log.info({ url: server.url, database: db.kind, dataDir: db.kind === 'pglite' ? config.dataDir : undefined }, 'GChat server listening');

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping');
  try {
    await delivery.close();
    await push.close();
    await server.close();
    await db.close();
    process.exit(0);
  } catch (err) {
    log.error({ error: loggableError(err) }, 'unclean stop');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
