/** A real server on an ephemeral port, over a test database, with cheap password hashing. */
import type { AppDeps, AppExtensions } from '../../src/server/app.js';
import { loadConfig, type Config } from '../../src/server/config.js';
import type { Database } from '../../src/server/db.js';
import { mountDelivery } from '../../src/server/delivery/mount.js';
import { mergeExtensions, mountPush, type MountedPush } from '../../src/server/push/mount.js';
import { createAppDeps, createLogger, startServer, type RunningServer } from '../../src/server/server.js';

/** Configuration for tests: port 0, loopback, Argon2id at its cheapest, generous rate limits. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    GCHAT_ARGON2_MEMORY_KIB: '64',
    GCHAT_ARGON2_ITERATIONS: '1',
    GCHAT_RATE_REGISTER_IP: '100000/3600',
    GCHAT_RATE_LOGIN_IP: '100000/300',
    GCHAT_RATE_LOGIN_ACCOUNT: '100000/300',
    GCHAT_RATE_BUNDLES_IP: '100000/60',
    GCHAT_RATE_BUNDLES_ACCOUNT: '100000/60',
    GCHAT_RATE_LOOKUPS_IP: '100000/60',
    ...env,
  });
}

export interface TestServer extends RunningServer {
  /** With `delivery`: the push side (wake-ups, registrations, TURN). */
  readonly push: MountedPush | null;
  /** fetch against the server: `call('POST', '/v1/accounts', { body })`. */
  call(method: string, path: string, opts?: CallOptions): Promise<CallResult>;
}

export interface CallOptions {
  readonly token?: string;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as is (with Content-Type application/json unless `headers` says otherwise). */
  readonly rawBody?: string;
  readonly headers?: Record<string, string>;
}

export interface CallResult {
  readonly status: number;
  /** Parsed JSON, or null for an empty body. */
  readonly json: unknown;
  readonly headers: Headers;
}

export async function startTestServer(
  db: Database,
  opts: { env?: Record<string, string>; overrides?: Partial<AppDeps>; extensions?: AppExtensions; delivery?: boolean } = {},
): Promise<TestServer> {
  const config = testConfig(opts.env);
  const deps = createAppDeps(config, db, createLogger(config.logLevel), opts.overrides);
  // With `delivery`, the whole server as main.ts builds it: messages routes, the stream, push and TURN.
  const delivery = opts.delivery ? mountDelivery(config, deps) : null;
  const push = delivery ? mountPush(config, deps, delivery.delivery) : null;
  const extensions = delivery && push ? mergeExtensions(delivery.extensions, push.extensions) : opts.extensions;
  const server = await startServer({ config, deps, gc: false, ...(extensions ? { extensions } : {}) });
  await push?.start();
  await delivery?.start(server);
  return {
    ...server,
    push,
    async close(graceMs?: number) {
      await delivery?.close();
      await push?.close();
      await server.close(graceMs ?? 1000);
    },
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (o.body !== undefined || o.rawBody !== undefined) {
        body = o.rawBody ?? JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let json: unknown = null;
      if (text.length > 0) {
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
      }
      return { status: res.status, json, headers: res.headers };
    },
  };
}
