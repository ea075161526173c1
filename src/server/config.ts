/**
 * Server configuration, read once from the environment and validated. Every bound the server keeps
 * is here with its default; `loadConfig` reports every bad value at once, each with its variable.
 */
import path from 'node:path';
import { z } from 'zod';

/** At most `count` requests per `windowSeconds`, per key (an IP or an account). */
export interface RateLimit {
  readonly count: number;
  readonly windowSeconds: number;
}

export interface Limits {
  /** Largest accepted request body, in bytes; larger is 413. */
  readonly maxBodyBytes: number;
  /** Largest key backup blob, in bytes; larger is 413. */
  readonly maxBackupBytes: number;
  /** OPKs (and, separately, one-time PQPKs) a device may hold on the server at once. */
  readonly maxStoredPrekeys: number;
  /** Devices an account may have at once (removed devices do not count). */
  readonly maxDevicesPerAccount: number;
  /** GCHAT_MESSAGE_RETENTION_SECONDS, told to devices in their key status: they size their own dedup records and prekey lifetimes by it. */
  readonly messageRetentionSeconds: number;
}

export interface RateLimits {
  readonly registerPerIp: RateLimit;
  /** Password checks (adding a device, recovering the backup blob), per client address. */
  readonly loginPerIp: RateLimit;
  /** Wrong passwords per account from all addresses, past which an address that failed waits (password-guard.ts). */
  readonly loginPerAccount: RateLimit;
  /** Wrong passwords per (account, client address). */
  readonly loginPerAccountIp: RateLimit;
  readonly bundlesPerIp: RateLimit;
  /** Per requesting account. */
  readonly bundlesPerAccount: RateLimit;
  /** Reads of public account data (AK and device list). */
  readonly lookupsPerIp: RateLimit;
  /** Bundles with one-time keys one requesting account may take from one device (more come without). */
  readonly oneTimePrekeyClaims: RateLimit;
}

export interface Argon2Params {
  readonly memoryKib: number;
  readonly iterations: number;
  readonly parallelism: number;
}

export type DatabaseConfig = { readonly kind: 'postgres'; readonly url: string } | { readonly kind: 'pglite'; readonly dataDir: string };

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseConfig;
  readonly dataDir: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Express "trust proxy": false, a hop count, or a list of addresses/subnets. */
  readonly trustProxy: boolean | number | string;
  readonly limits: Limits;
  readonly rateLimits: RateLimits;
  readonly argon2: Argon2Params;
  /** How often the job that deletes replaced SPKs (SPEC §7) runs. */
  readonly prekeyGcIntervalSeconds: number;
  /**
   * A connection must have sent a whole request head (headers) within this long, or it is
   * answered 408 and closed: idle and slow sockets cannot hold file descriptors.
   */
  readonly headersTimeoutSeconds: number;
  /** The delivery model (Server II, src/server/delivery/limits.ts). */
  readonly delivery: DeliveryConfig;
  readonly metrics: MetricsConfig;
  /** Content-free wake-ups (Web Push, APNs, FCM). */
  readonly push: PushConfig;
  /** TURN relay credentials for calls (coturn's shared-secret REST scheme); null: not offered. */
  readonly turn: TurnConfig | null;
}

export interface PushConfig {
  /** false: no wake-ups at all (registrations are still accepted and kept). */
  readonly enabled: boolean;
  /** VAPID `sub` claim: a mailto: or https: URL where the push service can reach the operator. */
  readonly vapidSubject: string;
  /** Web Push endpoints over plain http are accepted (tests and development only). */
  readonly allowHttpEndpoints: boolean;
  /** A queued envelope not acked within this long counts as undelivered: its device gets a wake-up. */
  readonly graceMs: number;
  /** At most one (non-urgent) wake-up per device per this long. */
  readonly coalesceMs: number;
  /** TTL of a wake-up at the push service, in seconds. */
  readonly ttlSeconds: number;
  /** Timeout of one request to a push service. */
  readonly timeoutMs: number;
  /** Requests to push services in flight at once, per instance. */
  readonly concurrency: number;
  /** null: no APNs pushes (registrations are kept). */
  readonly apns: ApnsConfig | null;
  /** null: no FCM pushes. */
  readonly fcm: FcmConfig | null;
}

export interface ApnsConfig {
  /** The .p8 signing key file (token-based auth, ES256). */
  readonly keyFile: string;
  readonly keyId: string;
  readonly teamId: string;
  readonly host: string;
  readonly port: number;
  /** Extra CA (PEM file) to trust for the APNs host: a test server or a proxy. */
  readonly caFile: string | null;
}

export interface FcmConfig {
  /** The service-account JSON (client_email, private_key, token_uri, project_id). */
  readonly serviceAccountFile: string;
  /** Base URL of the FCM HTTP v1 API. */
  readonly endpoint: string;
}

export interface TurnConfig {
  readonly secret: string;
  readonly urls: readonly string[];
  readonly ttlSeconds: number;
}

/** Who may read /metrics: never the world. */
export interface MetricsConfig {
  /** `Authorization: Bearer <token>` opens /metrics on the API port; null: not served there. */
  readonly token: string | null;
  /** A separate listener serving only /metrics (e.g. 127.0.0.1:9464), without a token. */
  readonly listen: { readonly host: string; readonly port: number } | null;
}

export interface DeliveryConfig {
  readonly retentionMs: number;
  readonly maxBodyBytes: number;
  readonly maxCopies: number;
  readonly maxQueuePerDevice: number;
  readonly maxQueueBytesPerDevice: number;
  readonly maxQueuePerSender: number;
  readonly maxQueueBytesPerSender: number;
  readonly maxPendingSends: number;
  readonly gcIntervalMs: number;
  /** Connections of the delivery module's own PostgreSQL pool. */
  readonly dbPool: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number in ${min}..${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const bool = z
  .string()
  .trim()
  .regex(/^(true|false)$/, 'must be true or false')
  .transform((s) => s === 'true');

const optionalText = z.string().trim().min(1, 'must not be empty').optional();

const rate = z
  .string()
  .trim()
  .regex(/^\d+\/\d+$/, 'must be "<count>/<window seconds>", e.g. "10/3600"')
  .transform((s): RateLimit => {
    const [count, windowSeconds] = s.split('/').map(Number) as [number, number];
    return { count, windowSeconds };
  })
  .refine((r) => r.count >= 1 && r.count <= 1_000_000 && r.windowSeconds >= 1 && r.windowSeconds <= 86_400, 'count must be 1..1000000 and window 1..86400 seconds');

/** One entry per variable: its schema and default (a string, parsed like a value from the environment). */
const VARS = {
  PORT: { schema: int(0, 65535), default: '8080' },
  HOST: { schema: z.string().trim().min(1, 'must not be empty'), default: '0.0.0.0' },
  DATABASE_URL: {
    schema: z
      .string()
      .trim()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    default: undefined,
  },
  GCHAT_DATA_DIR: { schema: z.string().trim().min(1, 'must not be empty'), default: './data' },
  LOG_LEVEL: { schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info' },
  GCHAT_TRUST_PROXY: {
    schema: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .transform((s): boolean | number | string => (s === 'true' ? true : s === 'false' ? false : /^\d+$/.test(s) ? Number(s) : s)),
    default: 'false',
  },
  GCHAT_MAX_BODY_BYTES: { schema: int(1024, 16 * 1024 * 1024), default: String(512 * 1024) },
  GCHAT_MAX_BACKUP_BYTES: { schema: int(64, 1024 * 1024), default: String(16 * 1024) },
  GCHAT_MAX_STORED_PREKEYS: { schema: int(1, 100_000), default: '500' },
  GCHAT_MAX_DEVICES_PER_ACCOUNT: { schema: int(1, 1000), default: '20' },
  GCHAT_RATE_REGISTER_IP: { schema: rate, default: '10/3600' },
  GCHAT_RATE_LOGIN_IP: { schema: rate, default: '30/300' },
  GCHAT_RATE_LOGIN_ACCOUNT: { schema: rate, default: '10/300' },
  GCHAT_RATE_LOGIN_ACCOUNT_IP: { schema: rate, default: '5/300' },
  GCHAT_RATE_BUNDLES_IP: { schema: rate, default: '600/60' },
  GCHAT_RATE_BUNDLES_ACCOUNT: { schema: rate, default: '300/60' },
  GCHAT_RATE_LOOKUPS_IP: { schema: rate, default: '1200/60' },
  GCHAT_RATE_OPK_CLAIMS: { schema: rate, default: '10/86400' },
  GCHAT_ARGON2_MEMORY_KIB: { schema: int(8, 4 * 1024 * 1024), default: '19456' },
  GCHAT_ARGON2_ITERATIONS: { schema: int(1, 100), default: '2' },
  GCHAT_ARGON2_PARALLELISM: { schema: int(1, 64), default: '1' },
  GCHAT_PREKEY_GC_INTERVAL_SECONDS: { schema: int(1, 7 * 86_400), default: '3600' },
  GCHAT_HEADERS_TIMEOUT_SECONDS: { schema: int(1, 120), default: '20' },
  GCHAT_MESSAGE_RETENTION_SECONDS: { schema: int(60, 3650 * 86_400), default: String(30 * 86_400) },
  GCHAT_MAX_MESSAGE_BYTES: { schema: int(1024, 64 * 1024 * 1024), default: String(256 * 1024) },
  GCHAT_MAX_COPIES: { schema: int(1, 10_000), default: '64' },
  GCHAT_MAX_QUEUE_PER_DEVICE: { schema: int(1, 100_000_000), default: '20000' },
  GCHAT_MAX_QUEUE_BYTES_PER_DEVICE: { schema: int(1024, 2 ** 50), default: String(256 * 1024 * 1024) },
  GCHAT_MAX_QUEUE_PER_SENDER: { schema: int(1, 100_000_000), default: '5000' },
  GCHAT_MAX_QUEUE_BYTES_PER_SENDER: { schema: int(1024, 2 ** 50), default: String(64 * 1024 * 1024) },
  GCHAT_MAX_PENDING_SENDS: { schema: int(1, 10_000_000), default: '20000' },
  GCHAT_DELIVERY_GC_INTERVAL_SECONDS: { schema: int(0, 86_400), default: '60' },
  GCHAT_DELIVERY_DB_POOL: { schema: int(1, 100), default: '4' },
  GCHAT_METRICS_TOKEN: {
    schema: z.string().trim().regex(/^[\x21-\x7e]{16,256}$/, 'must be 16..256 visible ASCII characters').optional(),
    default: undefined,
  },
  GCHAT_METRICS_LISTEN: {
    schema: z
      .string()
      .trim()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d{1,5}$/, 'must be "host:port", e.g. "127.0.0.1:9464"')
      .transform((s) => {
        const i = s.lastIndexOf(':');
        return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
      })
      .refine((l) => l.port <= 65535, 'port must be at most 65535')
      .optional(),
    default: undefined,
  },
  GCHAT_PUSH: { schema: bool, default: 'true' },
  GCHAT_VAPID_SUBJECT: {
    schema: z.string().trim().regex(/^(mailto:\S+@\S+|https:\/\/\S+)$/, 'must be a mailto: or https: URL'),
    default: 'mailto:admin@localhost',
  },
  GCHAT_WEBPUSH_ALLOW_HTTP: { schema: bool, default: 'false' },
  GCHAT_PUSH_GRACE_MS: { schema: int(0, 60_000), default: '1000' },
  GCHAT_PUSH_COALESCE_SECONDS: { schema: int(0, 3600), default: '5' },
  GCHAT_PUSH_TTL_SECONDS: { schema: int(0, 28 * 86_400), default: '86400' },
  GCHAT_PUSH_TIMEOUT_MS: { schema: int(100, 120_000), default: '10000' },
  GCHAT_PUSH_CONCURRENCY: { schema: int(1, 1000), default: '32' },
  GCHAT_APNS_KEY_FILE: { schema: optionalText, default: undefined },
  GCHAT_APNS_KEY_ID: { schema: z.string().trim().regex(/^[A-Z0-9]{10}$/, 'must be the 10-character key id').optional(), default: undefined },
  GCHAT_APNS_TEAM_ID: { schema: z.string().trim().regex(/^[A-Z0-9]{10}$/, 'must be the 10-character team id').optional(), default: undefined },
  GCHAT_APNS_HOST: { schema: z.string().trim().min(1, 'must not be empty'), default: 'api.push.apple.com' },
  GCHAT_APNS_PORT: { schema: int(1, 65535), default: '443' },
  GCHAT_APNS_CA_FILE: { schema: optionalText, default: undefined },
  GCHAT_FCM_SERVICE_ACCOUNT_FILE: { schema: optionalText, default: undefined },
  GCHAT_FCM_ENDPOINT: { schema: z.string().trim().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'), default: 'https://fcm.googleapis.com' },
  GCHAT_TURN_SECRET: { schema: z.string().min(16, 'must be at least 16 characters').optional(), default: undefined },
  GCHAT_TURN_URLS: {
    schema: z
      .string()
      .trim()
      .transform((s) => s.split(',').map((u) => u.trim()).filter((u) => u.length > 0))
      .pipe(z.array(z.string().regex(/^turns?:[^\s,]+$/, 'each must be a turn: or turns: URI'))),
    default: '',
  },
  GCHAT_TURN_TTL_SECONDS: { schema: int(60, 7 * 86_400), default: '86400' },
} as const;

type Vars = typeof VARS;
type Parsed = { [K in keyof Vars]: z.output<Vars[K]['schema']> };

/** Variables whose value may hold a secret and is never echoed in an error. */
const SECRET = new Set<string>(['DATABASE_URL', 'GCHAT_METRICS_TOKEN', 'GCHAT_TURN_SECRET']);

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(VARS) as [keyof Vars, Vars[keyof Vars]][]) {
    const raw = env[name] === undefined || env[name] === '' ? v.default : env[name];
    const r = (v.schema as z.ZodType).safeParse(raw);
    if (r.success) {
      out[name] = r.data;
    } else {
      const why = r.error.issues.map((i) => i.message).join('; ');
      const shown = SECRET.has(name) ? '' : ` (got ${JSON.stringify(raw)})`;
      problems.push(`${name}: ${why}${shown}`);
    }
  }
  const p = out as Parsed;
  if (problems.length === 0 && p.GCHAT_ARGON2_MEMORY_KIB < 8 * p.GCHAT_ARGON2_PARALLELISM) {
    problems.push('GCHAT_ARGON2_MEMORY_KIB: must be at least 8 x GCHAT_ARGON2_PARALLELISM');
  }
  if (problems.length === 0) {
    const apns = [p.GCHAT_APNS_KEY_FILE, p.GCHAT_APNS_KEY_ID, p.GCHAT_APNS_TEAM_ID];
    if (apns.some((v) => v !== undefined) && apns.some((v) => v === undefined))
      problems.push('GCHAT_APNS_KEY_FILE, GCHAT_APNS_KEY_ID, GCHAT_APNS_TEAM_ID: set all three or none');
    if ((p.GCHAT_TURN_SECRET === undefined) !== (p.GCHAT_TURN_URLS.length === 0))
      problems.push('GCHAT_TURN_SECRET, GCHAT_TURN_URLS: set both or neither');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const dataDir = path.resolve(p.GCHAT_DATA_DIR);
  return {
    port: p.PORT,
    host: p.HOST,
    dataDir,
    database: p.DATABASE_URL ? { kind: 'postgres', url: p.DATABASE_URL } : { kind: 'pglite', dataDir: path.join(dataDir, 'pglite') },
    logLevel: p.LOG_LEVEL,
    trustProxy: p.GCHAT_TRUST_PROXY,
    limits: {
      maxBodyBytes: p.GCHAT_MAX_BODY_BYTES,
      maxBackupBytes: p.GCHAT_MAX_BACKUP_BYTES,
      maxStoredPrekeys: p.GCHAT_MAX_STORED_PREKEYS,
      maxDevicesPerAccount: p.GCHAT_MAX_DEVICES_PER_ACCOUNT,
      messageRetentionSeconds: p.GCHAT_MESSAGE_RETENTION_SECONDS,
    },
    rateLimits: {
      registerPerIp: p.GCHAT_RATE_REGISTER_IP,
      loginPerIp: p.GCHAT_RATE_LOGIN_IP,
      loginPerAccount: p.GCHAT_RATE_LOGIN_ACCOUNT,
      loginPerAccountIp: p.GCHAT_RATE_LOGIN_ACCOUNT_IP,
      bundlesPerIp: p.GCHAT_RATE_BUNDLES_IP,
      bundlesPerAccount: p.GCHAT_RATE_BUNDLES_ACCOUNT,
      lookupsPerIp: p.GCHAT_RATE_LOOKUPS_IP,
      oneTimePrekeyClaims: p.GCHAT_RATE_OPK_CLAIMS,
    },
    argon2: {
      memoryKib: p.GCHAT_ARGON2_MEMORY_KIB,
      iterations: p.GCHAT_ARGON2_ITERATIONS,
      parallelism: p.GCHAT_ARGON2_PARALLELISM,
    },
    prekeyGcIntervalSeconds: p.GCHAT_PREKEY_GC_INTERVAL_SECONDS,
    headersTimeoutSeconds: p.GCHAT_HEADERS_TIMEOUT_SECONDS,
    delivery: {
      retentionMs: p.GCHAT_MESSAGE_RETENTION_SECONDS * 1000,
      maxBodyBytes: p.GCHAT_MAX_MESSAGE_BYTES,
      maxCopies: p.GCHAT_MAX_COPIES,
      maxQueuePerDevice: p.GCHAT_MAX_QUEUE_PER_DEVICE,
      maxQueueBytesPerDevice: p.GCHAT_MAX_QUEUE_BYTES_PER_DEVICE,
      maxQueuePerSender: p.GCHAT_MAX_QUEUE_PER_SENDER,
      maxQueueBytesPerSender: p.GCHAT_MAX_QUEUE_BYTES_PER_SENDER,
      maxPendingSends: p.GCHAT_MAX_PENDING_SENDS,
      gcIntervalMs: p.GCHAT_DELIVERY_GC_INTERVAL_SECONDS * 1000,
      dbPool: p.GCHAT_DELIVERY_DB_POOL,
    },
    metrics: { token: p.GCHAT_METRICS_TOKEN ?? null, listen: p.GCHAT_METRICS_LISTEN ?? null },
    push: {
      enabled: p.GCHAT_PUSH,
      vapidSubject: p.GCHAT_VAPID_SUBJECT,
      allowHttpEndpoints: p.GCHAT_WEBPUSH_ALLOW_HTTP,
      graceMs: p.GCHAT_PUSH_GRACE_MS,
      coalesceMs: p.GCHAT_PUSH_COALESCE_SECONDS * 1000,
      ttlSeconds: p.GCHAT_PUSH_TTL_SECONDS,
      timeoutMs: p.GCHAT_PUSH_TIMEOUT_MS,
      concurrency: p.GCHAT_PUSH_CONCURRENCY,
      apns:
        p.GCHAT_APNS_KEY_FILE && p.GCHAT_APNS_KEY_ID && p.GCHAT_APNS_TEAM_ID
          ? {
              keyFile: path.resolve(p.GCHAT_APNS_KEY_FILE),
              keyId: p.GCHAT_APNS_KEY_ID,
              teamId: p.GCHAT_APNS_TEAM_ID,
              host: p.GCHAT_APNS_HOST,
              port: p.GCHAT_APNS_PORT,
              caFile: p.GCHAT_APNS_CA_FILE ? path.resolve(p.GCHAT_APNS_CA_FILE) : null,
            }
          : null,
      fcm: p.GCHAT_FCM_SERVICE_ACCOUNT_FILE
        ? { serviceAccountFile: path.resolve(p.GCHAT_FCM_SERVICE_ACCOUNT_FILE), endpoint: p.GCHAT_FCM_ENDPOINT.replace(/\/+$/, '') }
        : null,
    },
    turn: p.GCHAT_TURN_SECRET ? { secret: p.GCHAT_TURN_SECRET, urls: p.GCHAT_TURN_URLS, ttlSeconds: p.GCHAT_TURN_TTL_SECONDS } : null,
  };
}

/** The variables and their defaults, for documentation and a sample environment file. */
export function configDefaults(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(VARS).map(([k, v]) => [k, v.default]));
}
