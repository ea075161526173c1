/**
 * bench:relay's fixtures: a throwaway PostgreSQL database, accounts seeded straight into the
 * tables, and the server as its own process (so the load generator never shares its event loop).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { buildServer as buildStartBundle } from '../build-server.js';
import pg from 'pg';

export interface Dev {
  readonly username: string;
  readonly device: number;
  readonly token: string;
  readonly key: string;
}

export async function createDatabase(adminUrl: string): Promise<{ url: string; name: string }> {
  const name = `gchat_bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), name };
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
}

/** Accounts with one device each, straight into the tables (the server's own migrations ran). */
export async function seed(url: string, prefix: string, n: number): Promise<Dev[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  c.on('error', () => undefined);
  const devs: Dev[] = [];
  for (let off = 0; off < n; off += 2000) {
    const names: string[] = [];
    const iks: string[] = [];
    const hashes: string[] = [];
    for (let i = off; i < Math.min(n, off + 2000); i++) {
      const token = randomBytes(32).toString('base64url');
      const ik = randomBytes(32);
      const username = `bench-${prefix}-${i}`;
      names.push(username);
      iks.push(ik.toString('hex'));
      hashes.push(createHash('sha256').update(token).digest('hex'));
      devs.push({ username, device: 1, token, key: ik.toString('base64url') });
    }
    await c.query(
      `WITH a AS (
         INSERT INTO accounts (username, password_hash, ak_pub, next_device_id)
         SELECT u, 'bench', decode(md5(u) || md5(u), 'hex'), 2 FROM unnest($1::text[]) AS u
         RETURNING id, username)
       INSERT INTO devices (account_id, device_id, ik_pub, device_cert, token_hash)
       SELECT a.id, 1, decode(x.ik, 'hex'), decode(repeat('00', 64), 'hex'), decode(x.h, 'hex')
         FROM unnest($1::text[], $2::text[], $3::text[]) AS x(u, ik, h) JOIN a ON a.username = x.u`,
      [names, iks, hashes],
    );
  }
  await c.end();
  return devs;
}

export function rssMb(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** User + system CPU seconds of a process. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

/**
 * The server as `npm start` runs it (its node flags from package.json's start script, see
 * README), plus `extraFlags`; a .ts entry through tsx (as the tests run it), the built bundle under plain node (as npm start runs it); under `ulimit -n 65536` where the hard limit allows.
 */
export async function startServer(entry: string, url: string, port: number, extraFlags = ''): Promise<ChildProcess> {
  const hard = Number(spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()) || 65536;
  const nofile = Math.min(65536, hard);
  // TypeScript through tsx, as the tests run it; the built bundle under plain node, as npm start runs it.
  const loader = entry.endsWith('.ts') ? '--import tsx' : '';
  const child = spawn('bash', ['-c', `ulimit -n ${nofile}; exec node ${extraFlags} ${loader} ${entry}`], {
    env: { ...process.env, DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true, // its own process group: stopped as a whole, whatever it spawns below it
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return child;
    if (Date.now() > deadline) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function stopServer(server: ChildProcess | null): Promise<void> {
  if (!server?.pid || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise<void>((r) => server.once('exit', () => r()));
  const group = -server.pid;
  try {
    process.kill(group, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(group, 'SIGKILL');
    } catch {
      // gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

/** User + system CPU seconds of each PostgreSQL process on this machine now (backends, WAL writer, checkpointer), by pid. */
export function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(postgres)')) continue;
      out.set(Number(pid), cpuSeconds(Number(pid)));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** PostgreSQL CPU seconds since `before` (a process that started since counts from zero; one that exited is lost). */
export function postgresCpuSince(before: ReadonlyMap<number, number>): number {
  let total = 0;
  for (const [pid, s] of postgresCpu()) total += s - (before.get(pid) ?? 0);
  return total;
}

/** The node flags `npm start` gives the server (package.json's start script: `node <flags> dist/server/main.mjs`). */
export function startFlags(packageJson: string): string {
  const start = (JSON.parse(readFileSync(packageJson, 'utf8')) as { scripts: Record<string, string> }).scripts.start ?? '';
  return /node ((?:--[\w-]+(?:=\S+)? )*)dist\/server\/main\.mjs/.exec(start)?.[1]?.trim() ?? '';
}

/** The server as `npm start` runs it: bundled by scripts/build-server.ts, run under plain node. */
export function buildServer(): Promise<string> {
  return buildStartBundle();
}
