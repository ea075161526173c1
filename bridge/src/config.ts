/**
 * The bridge's configuration: YAML checked by zod. Every problem is reported on its own line and
 * the bridge does not start.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

const url = z.string().url();
const matrixUserId = z.string().regex(/^@[^:\s]+:[^\s]+$/, 'must look like @user:domain');

const Schema = z
  .object({
    homeserver: z.object({ url, domain: z.string().min(1) }).strict(),
    appservice: z
      .object({
        /** Where the bridge listens for the homeserver's transactions (and /health, /metrics). */
        bind: z.string().default('127.0.0.1'),
        port: z.number().int().min(1).max(65535),
        /** The URL the homeserver uses to reach the bridge (goes into the registration). */
        url: url.optional(),
        registration: z.string().default('registration.yaml'),
        bot_localpart: z.string().regex(/^[a-z0-9._=-]+$/).default('gchatbot'),
        ghost_prefix: z.string().regex(/^[a-z0-9._=-]+$/).default('gchat_'),
      })
      .strict(),
    gchat: z.object({ server_url: url }).strict(),
    data_dir: z.string().default('data/bridge'),
    database: z.object({ url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional() }).strict().default({}),
    encryption: z.object({ enabled: z.boolean().default(true) }).strict().default({ enabled: true }),
    /**
     * A com.beeper.message_send_status event for every message delivered to GChat. Off by default (as
     * in the mautrix bridges): one more encrypted room event per message, which Element does not show.
     * Failures are always reported (a FAIL status event and a notice).
     */
    message_status_events: z.boolean().default(false),
    /** 32 random bytes, base64: encrypts the GChat keys the bridge holds for its Matrix users. */
    secrets_key: z.string().refine((s) => Buffer.from(s, 'base64').length === 32, 'must be 32 bytes in base64 (openssl rand -base64 32)'),
    allowed: z
      .object({ users: z.array(matrixUserId).default([]), domains: z.array(z.string().min(1)).default([]) })
      .strict()
      .refine((a) => a.users.length + a.domains.length > 0, 'list at least one Matrix user or domain that may use the bridge'),
    development: z.boolean().default(false),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type BridgeConfig = z.infer<typeof Schema> & { configDir: string };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

export function parseConfig(raw: unknown, configDir: string): BridgeConfig {
  const r = Schema.safeParse(raw);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `config ${i.path.join('.') || '(root)'}: ${i.message}`));
  const c = { ...r.data, configDir };
  c.data_dir = resolve(configDir, c.data_dir);
  c.appservice.registration = resolve(configDir, c.appservice.registration);
  return c;
}

export function loadConfig(file: string): BridgeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`config: cannot read ${file}: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ConfigError([`config: ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  return parseConfig(raw, dirname(resolve(file)));
}

export function appserviceUrl(c: BridgeConfig): string {
  return c.appservice.url ?? `http://${c.appservice.bind}:${c.appservice.port}`;
}

/** May this Matrix user use the bridge? */
export function isAllowed(c: BridgeConfig, userId: string): boolean {
  if (c.allowed.users.includes(userId)) return true;
  const domain = userId.slice(userId.indexOf(':') + 1);
  return c.allowed.domains.includes(domain);
}
