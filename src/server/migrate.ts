/** `npm run migrate`: applies pending migrations to the configured database, then exits. */
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db.js';

try {
  const config = loadConfig();
  const db = await openDatabase(config.database);
  try {
    const applied = await db.migrate();
    process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'nothing to apply\n');
  } finally {
    await db.close();
  }
} catch (e) {
  process.stderr.write(`${e instanceof ConfigError ? e.message : `migration failed: ${e instanceof Error ? e.message : String(e)}`}\n`);
  process.exit(e instanceof ConfigError ? 2 : 1);
}
