/**
 * A real Synapse for the bridge tests: 127.0.0.1 on a free port, sqlite in a temp dir, the
 * bridge's registration loaded, the experimental appservice features on, rate limits relaxed.
 * Users are made with the admin shared-secret API. The venv comes from SYNAPSE_PYTHON or the
 * repo's `.venv-synapse` (made by .ci/run), else /work/.venv-synapse.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './server-process.js';

const root = join(import.meta.dirname, '../..');

export function synapsePython(): string | null {
  const candidates = [process.env.SYNAPSE_PYTHON, join(root, '.venv-synapse/bin/python')].filter((x): x is string => !!x);
  for (const p of candidates) {
    if (existsSync(p) && spawnSync(p, ['-c', 'import synapse'], { stdio: 'ignore' }).status === 0) return p;
  }
  return null;
}

/** Why the bridge suites cannot run here, or null. Under CI=true a missing Synapse is a failure, not a skip. */
export function synapseMissing(): string | null {
  if (synapsePython()) return null;
  const why = 'Synapse is not installed (set SYNAPSE_PYTHON or run .ci/run to make .venv-synapse)';
  if (process.env.CI === 'true') throw new Error(why);
  console.warn(`SKIPPING the Matrix bridge tests: ${why}`);
  return why;
}

export const SERVER_NAME = 'localhost';
const SHARED_SECRET = 'test-shared-secret';

export class Synapse {
  private child: ChildProcess | null = null;
  private output = '';
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly python: string,
  ) {}

  /** `accessLog`: a file for Synapse's per-request log (time, CPU, database time of each request). */
  static async start(registrationFiles: string[], opts: { accessLog?: string } = {}): Promise<Synapse> {
    const python = synapsePython();
    if (!python) throw new Error('Synapse is not installed');
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'synapse-'));
    const relaxed = { per_second: 10000, burst_count: 10000 };
    const config = {
      server_name: SERVER_NAME,
      pid_file: join(dir, 'homeserver.pid'),
      listeners: [{ port, bind_addresses: ['127.0.0.1'], type: 'http', tls: false, x_forwarded: false, resources: [{ names: ['client'], compress: false }] }],
      database: { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } },
      media_store_path: join(dir, 'media'),
      signing_key_path: join(dir, 'signing.key'),
      log_config: join(dir, 'log.yaml'),
      registration_shared_secret: SHARED_SECRET,
      enable_registration: false,
      report_stats: false,
      trusted_key_servers: [],
      suppress_key_server_warning: true,
      app_service_config_files: registrationFiles,
      experimental_features: { msc2409_to_device_messages_enabled: true, msc3202_transaction_extensions: true },
      rc_message: relaxed,
      rc_registration: relaxed,
      rc_login: { address: relaxed, account: relaxed, failed_attempts: relaxed },
      rc_joins: { local: relaxed, remote: relaxed },
      rc_invites: { per_room: relaxed, per_user: relaxed, per_issuer: relaxed },
      rc_key_requests: relaxed,
      rc_presence: { per_user: relaxed },
      rc_delayed_event_mgmt: relaxed,
      rc_room_creation: relaxed,
    };
    writeFileSync(join(dir, 'homeserver.yaml'), stringify(config));
    // The appservice scheduler at INFO: when a bridge test fails, whether Synapse held the bridge for down (its recoverer) is in the log.
    const access = opts.accessLog ? { handlers: { a: { class: 'logging.FileHandler', filename: opts.accessLog, formatter: 'f' } }, loggers: { 'synapse.access.http': { level: 'INFO', handlers: ['a'], propagate: false } } } : { handlers: {}, loggers: {} };
    const logConfig = { version: 1, formatters: { f: { format: '%(asctime)s %(levelname)s %(name)s %(message)s' } }, handlers: { h: { class: 'logging.StreamHandler', formatter: 'f' }, ...access.handlers }, loggers: { ...access.loggers, 'synapse.appservice.scheduler': { level: 'INFO' } }, root: { level: 'WARNING', handlers: ['h'] }, disable_existing_loggers: false };
    writeFileSync(join(dir, 'log.yaml'), stringify(logConfig));
    const keys = spawnSync(python, ['-m', 'synapse.app.homeserver', '-c', join(dir, 'homeserver.yaml'), '--generate-keys'], { encoding: 'utf8' });
    if (keys.status !== 0) throw new Error(`synapse --generate-keys failed: ${keys.stderr}`);
    const s = new Synapse(`http://127.0.0.1:${port}`, dir, python);
    await s.run();
    return s;
  }

  private async run(): Promise<void> {
    const child = spawn(this.python, ['-m', 'synapse.app.homeserver', '-c', join(this.dir, 'homeserver.yaml')], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`synapse exited (${child.exitCode}):\n${this.output}`);
      const ok = await fetch(`${this.url}/_matrix/client/versions`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`synapse did not start:\n${this.output}`);
  }

  /** A user made with the shared-secret admin API; returns its access token and device. */
  async register(localpart: string, password = 'matrix password 1'): Promise<{ userId: string; accessToken: string; deviceId: string }> {
    const { nonce } = (await (await fetch(`${this.url}/_synapse/admin/v1/register`)).json()) as { nonce: string };
    const mac = createHmac('sha1', SHARED_SECRET).update(`${nonce}\0${localpart}\0${password}\0notadmin`).digest('hex');
    const res = await fetch(`${this.url}/_synapse/admin/v1/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nonce, username: localpart, password, admin: false, mac }) });
    const json = (await res.json()) as { user_id: string; access_token: string; device_id: string };
    if (!res.ok) throw new Error(`register ${localpart}: ${res.status} ${JSON.stringify(json)}`);
    return { userId: json.user_id, accessToken: json.access_token, deviceId: json.device_id };
  }

  get log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
