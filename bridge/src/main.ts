/**
 * `npm run bridge [-- -c config.yaml]` runs the bridge; `npm run bridge -- --generate-registration
 * [-c config.yaml] [-o registration.yaml]` writes a registration with fresh random tokens.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { writeRegistration } from './registration.js';
import { startBridge } from './runtime.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', short: 'c', default: process.env.GCHAT_BRIDGE_CONFIG ?? 'bridge/config.yaml' },
    'generate-registration': { type: 'boolean', default: false },
    output: { type: 'string', short: 'o' },
  },
});

try {
  const config = loadConfig(values.config!);
  if (values['generate-registration']) {
    const out = values.output ?? config.appservice.registration;
    writeRegistration(config, out);
    console.log(`wrote ${out}: add it to your homeserver's app_service_config_files`);
  } else {
    const log = createLogger(config.log_level);
    const running = await startBridge(config, log);
    const stop = async () => {
      await running.stop();
      process.exit(0);
    };
    process.once('SIGTERM', () => void stop());
    process.once('SIGINT', () => void stop());
  }
} catch (e) {
  if (e instanceof ConfigError) {
    for (const p of e.problems) console.error(p);
    process.exit(2);
  }
  throw e;
}
