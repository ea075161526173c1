/**
 * npm run bench:relay — the relay's throughput, latency and memory against a real PostgreSQL.
 *
 * A server process (src/server/main.ts, PORT and DATABASE_URL set) on a fresh database; this
 * process is the load generator: senders and receivers on the stream (`/v1/stream`), each send
 * persisted (committed) before the server answers it, receivers acking what they get.
 *
 *   1. sustained: closed loop, many senders with a window of sends each, for BENCH_SECONDS;
 *      messages/s = envelopes delivered to receivers per second.
 *   2. latency at a fixed offered load of 1,000 messages/s (open loop): send -> receipt, p50/95/99,
 *      with the server's RSS.
 *   3. 10,000 idle authenticated streams: the server's RSS.
 *   4. pgbench: single-row INSERT + COMMIT TPS on the same database, and the ratio.
 *
 * Env: BENCH_PG_URL (an admin URL of the PostgreSQL to use; default the local test server),
 * BENCH_SECONDS (default 10), BENCH_IDLE (default 10000), BENCH_SERVER (entry, default
 * src/server/main.ts). Loopback only. Needs `ulimit -n` above BENCH_IDLE + 1000 in both processes:
 * the server is started under `ulimit -n 65536` where the hard limit allows (else the hard limit).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { WebSocket } from 'ws';
import { newMessageId } from '../src/protocol/content.js';
import { systemRandom } from '../src/protocol/primitives.js';
import { freePort } from '../test/helpers/server-process.js';

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const IDLE = Number(process.env.BENCH_IDLE ?? 10_000);
const SERVER_ENTRY = process.env.BENCH_SERVER ?? 'src/server/main.ts';
/** Extra node flags for the server process, e.g. "--max-semi-space-size=2". */
const SERVER_NODE_FLAGS = process.env.BENCH_SERVER_NODE_FLAGS ?? '';
const PAIRS = 100; // senders and as many receivers, one device each
const WINDOW = 24; // sends in flight per sender in the sustained phase
const OFFERED = 1000; // messages/s in the latency phase
const BODY = Buffer.concat([Buffer.of(0x01, 0x02), randomBytes(214)]).toString('base64url'); // a type-2 message (SPEC §5) with a 160-byte padded plaintext

interface Dev {
  username: string;
  device: number;
  token: string;
  key: string;
}

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}


async function createDatabase(): Promise<{ url: string; name: string }> {
  const name = `gchat_bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return { url: u.toString(), name };
}

async function dropDatabase(name: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
}

/** Accounts with one device each, straight into the tables (the server's own migrations ran). */
async function seed(url: string, prefix: string, n: number): Promise<Dev[]> {
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

function rssMb(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : NaN;
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

async function startServer(url: string, port: number): Promise<ChildProcess> {
  const hard = Number(spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()) || 65536;
  const nofile = Math.min(65536, hard);
  const child = spawn('bash', ['-c', `ulimit -n ${nofile}; exec node ${SERVER_NODE_FLAGS} --import tsx ${SERVER_ENTRY}`], {
    env: { ...process.env, DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true, // its own process group: stopped as a whole, whatever npx/tsx spawn below it
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

async function stopServer(server: ChildProcess | null): Promise<void> {
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

interface Conn {
  ws: WebSocket;
  pending: Map<string, () => void>;
  rid: number;
}

function connect(port: number, dev: Dev, onEnvelopes?: (ids: string[], mids: string[]) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['gchat.v1'], {
      headers: { authorization: `Bearer ${dev.token}` },
      perMessageDeflate: false,
    });
    const conn: Conn = { ws, pending: new Map(), rid: 0 };
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { op: string; rid?: string; status?: number; envelopes?: { id: string; message_id: string }[] };
      if (f.op === 'envelopes' && f.envelopes) {
        const ids = f.envelopes.map((e) => e.id);
        ws.send(JSON.stringify({ op: 'ack', ids }));
        onEnvelopes?.(ids, f.envelopes.map((e) => e.message_id));
      } else if (f.op === 'sent' && f.rid) {
        if (f.status !== 200) throw new Error(`send refused: ${f.status}`);
        conn.pending.get(f.rid)?.();
        conn.pending.delete(f.rid);
      }
    });
    ws.once('open', () => resolve(conn));
    ws.once('error', reject);
  });
}

function send(conn: Conn, from: Dev, to: Dev, mid: string): Promise<void> {
  const rid = String(++conn.rid);
  return new Promise((resolve) => {
    conn.pending.set(rid, resolve);
    conn.ws.send(
      JSON.stringify({
        op: 'send',
        rid,
        message_id: mid,
        recipient: to.username,
        copies: [{ user: to.username, device: to.device, key: to.key, type: 2, body: BODY }],
      }),
    );
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function pgbench(url: string): Promise<{ c1: number; c16: number }> {
  const candidates = ['pgbench', ...['17', '16', '15', '14', '13'].map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`)];
  const bin = candidates.find((b) => spawnSync(b, ['--version']).status === 0);
  if (!bin) throw new Error('pgbench not found (apt-get install -y postgresql-contrib, or postgresql-client)');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE TABLE bench_single_insert (id bigserial PRIMARY KEY, v int NOT NULL)');
  await c.end();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gchat-pgbench-'));
  const script = path.join(dir, 'insert.sql');
  writeFileSync(script, 'INSERT INTO bench_single_insert (v) VALUES (1);\n');
  const run = (clients: number): number => {
    const r = spawnSync(bin, ['-n', '-c', String(clients), '-j', '2', '-T', String(Math.max(5, Math.floor(SECONDS / 2))), '-f', script, url], {
      encoding: 'utf8',
    });
    const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout) ?? /tps = ([\d.]+)/.exec(r.stdout);
    if (!m) throw new Error(`pgbench failed: ${r.stderr}`);
    return Number(m[1]);
  };
  try {
    return { c1: run(1), c16: run(16) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`no server entry at ${SERVER_ENTRY}`);
  const { url, name } = await createDatabase();
  let server: ChildProcess | null = null;
  const conns: Conn[] = [];
  try {
    const port = await freePort();
    log(`bench:relay  ${os.cpus().length} cores, PostgreSQL ${ADMIN_URL.replace(/\/\/[^@]*@/, '//')} db ${name}`);
    server = await startServer(url, port); // migrates the fresh database
    const pid = server.pid!; // bash exec'd node: the server process itself
    const senders = await seed(url, 's', PAIRS);
    const receivers = await seed(url, 'r', PAIRS);
    log(`server pid ${pid}, RSS at start ${rssMb(pid).toFixed(0)} MB`);

    // Receivers record latency by message_id (sender and receiver share this process's clock).
    const sentAt = new Map<string, number>();
    const lat: number[] = [];
    let delivered = 0;
    const onEnv = (_ids: string[], mids: string[]): void => {
      const now = performance.now();
      delivered += mids.length;
      for (const m of mids) {
        const t = sentAt.get(m);
        if (t !== undefined) {
          lat.push(now - t);
          sentAt.delete(m);
        }
      }
    };
    const rconns = await Promise.all(receivers.map((d) => connect(port, d, onEnv)));
    const sconns = await Promise.all(senders.map((d) => connect(port, d)));
    conns.push(...rconns, ...sconns);

    // 1. Sustained throughput, closed loop.
    let running = true;
    let accepted = 0;
    const loops = sconns.flatMap((c, i) =>
      Array.from({ length: WINDOW }, async () => {
        while (running) {
          await send(c, senders[i]!, receivers[i]!, newMessageId(Date.now(), systemRandom));
          accepted++;
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 2000)); // warm-up
    const d0 = delivered;
    const a0 = accepted;
    const t0 = performance.now();
    const cpu0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const secs = (performance.now() - t0) / 1000;
    const rate = (delivered - d0) / secs;
    const arate = (accepted - a0) / secs;
    const cpu = (cpuSeconds(pid) - cpu0) / secs;
    running = false;
    await Promise.all(loops);
    log(`sustained: ${rate.toFixed(0)} messages/s delivered, ${arate.toFixed(0)} sends/s committed (${PAIRS} senders x ${WINDOW} in flight, ${PAIRS} receivers, ${SECONDS} s); server CPU ${(cpu * 100).toFixed(0)}%, RSS ${rssMb(pid).toFixed(0)} MB`);
    await new Promise((r) => setTimeout(r, 3000)); // receivers drain, the database settles (autovacuum)

    // 2. Latency at a fixed offered load, open loop; the first second is warm-up, not counted.
    lat.length = 0;
    sentAt.clear();
    const answerLat: number[] = [];
    const warmup = OFFERED;
    const total = OFFERED * SECONDS + warmup;
    const eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    const tStart = performance.now();
    let lastRss = 0;
    let rssPeak = 0;
    let sentCount = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - tStart) / 1000) * OFFERED));
        while (sentCount < due) {
          const i = sentCount % PAIRS;
          const mid = newMessageId(Date.now(), systemRandom);
          const t = performance.now();
          const counted = sentCount >= warmup;
          if (counted) sentAt.set(mid, t);
          void send(sconns[i]!, senders[i]!, receivers[i]!, mid).then(() => {
            if (counted) answerLat.push(performance.now() - t);
          });
          sentCount++;
        }
        if (performance.now() - lastRss > 100) {
          lastRss = performance.now();
          rssPeak = Math.max(rssPeak, rssMb(pid));
        }
        if (sentCount >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 2);
    });
    const until = performance.now() + 5000;
    while (sentAt.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
    eld.disable();
    const sorted = [...lat].sort((a, b) => a - b);
    const asorted = [...answerLat].sort((a, b) => a - b);
    log(
      `latency at ${OFFERED} messages/s offered (${total - warmup} messages after a 1 s warm-up, ${sentAt.size} not received): ` +
        `send to receipt p50 ${pct(sorted, 50).toFixed(1)} ms, p95 ${pct(sorted, 95).toFixed(1)} ms, p99 ${pct(sorted, 99).toFixed(1)} ms, max ${(sorted[sorted.length - 1] ?? NaN).toFixed(1)} ms ` +
        `(send to stored answer p50 ${pct(asorted, 50).toFixed(1)} ms, p99 ${pct(asorted, 99).toFixed(1)} ms); server RSS peak ${rssPeak.toFixed(0)} MB; ` +
        `load generator event-loop delay p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms, max ${(eld.max / 1e6).toFixed(1)} ms`,
    );
    for (const c of conns) c.ws.terminate();
    conns.length = 0;

    // 3. Idle streams, on a fresh server process (the load phases' heap would hide the cost).
    if (IDLE > 0) {
      await stopServer(server);
      server = await startServer(url, port);
      const ipid = server.pid!;
      const idleDevs = await seed(url, 'i', IDLE);
      await new Promise((r) => setTimeout(r, 1000));
      const before = rssMb(ipid);
      const tc = performance.now();
      for (let off = 0; off < idleDevs.length; off += 250) {
        conns.push(...(await Promise.all(idleDevs.slice(off, off + 250).map((d) => connect(port, d)))));
      }
      const connectS = (performance.now() - tc) / 1000;
      await new Promise((r) => setTimeout(r, 5000));
      const after = rssMb(ipid);
      log(
        `${IDLE} idle authenticated streams: server RSS ${after.toFixed(0)} MB ` +
          `(${before.toFixed(0)} MB before they connected: ${(((after - before) * 1024) / IDLE).toFixed(1)} KB per stream); connected in ${connectS.toFixed(1)} s`,
      );
      for (const c of conns) c.ws.terminate();
      conns.length = 0;
    }

    // 4. pgbench on the same database.
    const pb = await pgbench(url);
    log(`pgbench single-row INSERT+COMMIT on the same database: ${pb.c1.toFixed(0)} TPS with 1 client, ${pb.c16.toFixed(0)} TPS with 16 clients`);
    log(`ratio: sustained messages/s / pgbench TPS = ${(rate / pb.c1).toFixed(1)}x (1 client), ${(rate / pb.c16).toFixed(1)}x (16 clients)`);
  } finally {
    for (const c of conns) c.ws.terminate();
    await stopServer(server);
    await dropDatabase(name).catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
