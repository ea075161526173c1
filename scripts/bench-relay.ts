/**
 * npm run bench:relay — the relay's throughput, latency and memory against a real PostgreSQL.
 *
 * The server is its own process (src/server/main.ts with the node flags of `npm start`, PORT and
 * DATABASE_URL set) on a fresh database; this process is the load generator (scripts/bench/
 * relay-client.ts), so the two never share an event loop. Senders and receivers talk over the
 * stream (`/v1/stream`); each send is committed before the server answers it, receivers ack.
 *
 *   1. sustained: closed loop, many senders with a window of sends each, for BENCH_SECONDS;
 *      messages/s = envelopes delivered to receivers per second; CPU of server, PostgreSQL and
 *      this load generator over the same interval.
 *   2. latency at fixed offered loads of 1,000 and 5,000 messages/s (open loop): send -> receipt,
 *      p50/95/99.
 *   3. 10,000 idle authenticated streams on a fresh server process: its RSS 5 s after they
 *      connected and once idle (after V8 has given back the connection burst's garbage), and the
 *      wake-up latency of a message sent to one idle device at a time; then the same with the
 *      server as npm start runs it: bundled by scripts/build-server.ts, plain node (idle-built: no tsx loader thread).
 *   4. pgbench: single-row INSERT + COMMIT TPS on the same database with 1 and 16 clients, and the ratios.
 *
 * Env: BENCH_PG_URL (an admin URL of the PostgreSQL to use; default the local test server),
 * BENCH_SECONDS (default 10), BENCH_IDLE (default 10000), BENCH_SERVER (entry, default
 * src/server/main.ts), BENCH_SERVER_NODE_FLAGS (node flags instead of npm start's),
 * BENCH_PHASES (default "sustained,latency,idle,idle-built,pgbench"). Loopback only. Needs `ulimit -n` above
 * BENCH_IDLE + 1000 in both processes: the server is started under `ulimit -n 65536` where the
 * hard limit allows (else the hard limit).
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { newMessageId } from '../src/protocol/content.js';
import { systemRandom } from '../src/protocol/primitives.js';
import { freePort } from '../test/helpers/server-process.js';
import { loadNow, printMachine } from './bench/machine.js';
import { type Conn, connect, pct, send } from './bench/relay-client.js';
import { buildServer, cpuSeconds, createDatabase, type Dev, dropDatabase, postgresCpu, postgresCpuSince, rssMb, seed, startFlags, startServer, stopServer } from './bench/relay-setup.js';

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const IDLE = Number(process.env.BENCH_IDLE ?? 10_000);
const SERVER_ENTRY = process.env.BENCH_SERVER ?? 'src/server/main.ts';
const SERVER_NODE_FLAGS = process.env.BENCH_SERVER_NODE_FLAGS ?? startFlags('package.json');
const PHASES = new Set((process.env.BENCH_PHASES ?? 'sustained,latency,idle,idle-built,pgbench').split(','));
const PAIRS = 100; // senders and as many receivers, one device each
const WINDOW = 24; // sends in flight per sender in the sustained phase
const OFFERED = [1000, 5000]; // messages/s in the latency phases
const WAKE_SAMPLES = 200; // messages to idle devices, one at a time
const BODY = Buffer.concat([Buffer.of(0x01, 0x02), randomBytes(214)]).toString('base64url'); // a type-2 message (SPEC §5) with a 160-byte padded plaintext

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const load = (): string => os.loadavg()[0]!.toFixed(2);

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

async function pgbench(url: string): Promise<{ c1: number; c16: number }> {
  const candidates = ['pgbench', ...['17', '16', '15', '14', '13'].map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`)];
  const bin = candidates.find((b) => spawnSync(b, ['--version']).status === 0);
  if (!bin) throw new Error('pgbench not found (apt-get install -y postgresql-contrib, or postgresql-client)');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS bench_single_insert (id bigserial PRIMARY KEY, v int NOT NULL)');
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

/** Receipt times by message_id, filled by receivers' onEnvelopes. */
class Receipts {
  readonly sentAt = new Map<string, number>();
  readonly lat: number[] = [];
  delivered = 0;
  readonly onEnvelopes = (mids: string[]): void => {
    const now = performance.now();
    this.delivered += mids.length;
    for (const m of mids) {
      const t = this.sentAt.get(m);
      if (t !== undefined) {
        this.lat.push(now - t);
        this.sentAt.delete(m);
      }
    }
  };
  reset(): void {
    this.sentAt.clear();
    this.lat.length = 0;
  }
  async settle(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (this.sentAt.size > 0 && performance.now() < until) await sleep(20);
  }
}

const ms = (x: number): string => `${x.toFixed(1)} ms`;

/** Closed loop for SECONDS after a 2 s warm-up; answers messages/s delivered. */
async function sustained(pid: number, senders: Conn[], receivers: Dev[], rec: Receipts): Promise<number> {
  let running = true;
  let accepted = 0;
  const loops = senders.flatMap((c, i) =>
    Array.from({ length: WINDOW }, async () => {
      while (running) {
        await send(c, receivers[i]!, newMessageId(Date.now(), systemRandom), BODY);
        accepted++;
      }
    }),
  );
  await sleep(2000);
  const d0 = rec.delivered;
  const a0 = accepted;
  const t0 = performance.now();
  const cpu0 = cpuSeconds(pid);
  const pg0 = postgresCpu();
  const me0 = process.cpuUsage();
  const l0 = load();
  await sleep(SECONDS * 1000);
  const secs = (performance.now() - t0) / 1000;
  const rate = (rec.delivered - d0) / secs;
  const arate = (accepted - a0) / secs;
  const share = (s: number): string => `${((s / secs) * 100).toFixed(0)}%`;
  const me = process.cpuUsage(me0);
  const cpuLine = `CPU over those ${SECONDS} s (100% = one core): server ${share(cpuSeconds(pid) - cpu0)}, PostgreSQL ${share(postgresCpuSince(pg0))}, load generator ${share((me.user + me.system) / 1e6)}`;
  running = false;
  await Promise.all(loops);
  log(`sustained: ${rate.toFixed(0)} messages/s delivered, ${arate.toFixed(0)} sends/s committed (${PAIRS} senders x ${WINDOW} in flight, ${PAIRS} receivers, ${SECONDS} s; load average ${l0} at its start); ${cpuLine}; server RSS ${rssMb(pid).toFixed(0)} MB`);
  return rate;
}

/** Open loop at `rate` messages/s for SECONDS after a 1 s warm-up (not counted). */
async function offered(pid: number, rate: number, senders: Conn[], receivers: Dev[], rec: Receipts): Promise<void> {
  rec.reset();
  const answerLat: number[] = [];
  const warmup = rate;
  const total = rate * SECONDS + warmup;
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const l0 = load();
  const tStart = performance.now();
  let sentCount = 0;
  let rssPeak = 0;
  let lastRss = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - tStart) / 1000) * rate));
      while (sentCount < due) {
        const i = sentCount % PAIRS;
        const mid = newMessageId(Date.now(), systemRandom);
        const t = performance.now();
        const counted = sentCount >= warmup;
        if (counted) rec.sentAt.set(mid, t);
        void send(senders[i]!, receivers[i]!, mid, BODY).then(() => {
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
    }, 1);
  });
  await rec.settle(5000);
  eld.disable();
  const sorted = [...rec.lat].sort((a, b) => a - b);
  const asorted = answerLat.sort((a, b) => a - b);
  log(
    `latency at ${rate} messages/s offered (${total - warmup} messages after a 1 s warm-up, ${rec.sentAt.size} not received; load average ${l0} at its start): ` +
      `send to receipt p50 ${ms(pct(sorted, 50))}, p95 ${ms(pct(sorted, 95))}, p99 ${ms(pct(sorted, 99))}, max ${ms(sorted[sorted.length - 1] ?? NaN)} ` +
      `(send to stored answer p50 ${ms(pct(asorted, 50))}, p99 ${ms(pct(asorted, 99))}); server RSS peak ${rssPeak.toFixed(0)} MB; ` +
      `load generator event-loop delay p99 ${ms(eld.percentile(99) / 1e6)}, max ${ms(eld.max / 1e6)}`,
  );
}

/** IDLE streams on a fresh server: RSS, then wake-up latency one message at a time. */
async function idle(entry: string, url: string, port: number, conns: Conn[]): Promise<ChildProcess> {
  const server = await startServer(entry, url, port, SERVER_NODE_FLAGS);
  const pid = server.pid!;
  const prefix = `i${Math.random().toString(36).slice(2, 6)}`;
  const idleDevs = await seed(url, prefix, IDLE);
  const [sender] = await seed(url, `${prefix}w`, 1);
  await sleep(1000);
  const before = rssMb(pid);
  const l0 = load();
  const rec = new Receipts();
  const tc = performance.now();
  for (let off = 0; off < idleDevs.length; off += 250) {
    conns.push(...(await Promise.all(idleDevs.slice(off, off + 250).map((d) => connect(port, d, rec.onEnvelopes)))));
  }
  const connectS = (performance.now() - tc) / 1000;
  await sleep(5000);
  const at5 = rssMb(pid);
  // V8's memory reducer gives back the connection burst's garbage once the process is idle.
  let settled = at5;
  for (let s = 5; s < 40; s++) {
    await sleep(1000);
    settled = rssMb(pid);
  }
  const perStream = (x: number): string => `${(((x - before) * 1024) / IDLE).toFixed(1)} KB per stream`;
  log(
    `${IDLE} idle authenticated streams, server ${entry.endsWith('.ts') ? `${entry} through tsx (as the tests run it)` : `built into ${entry}, plain node (as npm start)`} (node flags "${SERVER_NODE_FLAGS}"; load average ${l0} at its start): server RSS ${settled.toFixed(0)} MB after 40 s idle ` +
      `(${perStream(settled)}), ${at5.toFixed(0)} MB 5 s after the last connected (${perStream(at5)}); ${before.toFixed(0)} MB before they connected; connected in ${connectS.toFixed(1)} s`,
  );

  // Wake-up: one message at a time to a random idle device, send -> receipt on its stream.
  const s = await connect(port, sender!);
  conns.push(s);
  const l1 = load();
  for (let i = 0; i < WAKE_SAMPLES; i++) {
    const to = idleDevs[Math.floor(Math.random() * idleDevs.length)]!;
    const mid = newMessageId(Date.now(), systemRandom);
    rec.sentAt.set(mid, performance.now());
    await send(s, to, mid, BODY);
    await rec.settle(2000);
  }
  const sorted = [...rec.lat].sort((a, b) => a - b);
  log(
    `wake-up of an idle stream among ${IDLE} (${WAKE_SAMPLES} messages, one at a time, ${WAKE_SAMPLES - rec.lat.length} not received; load average ${l1} at its start): ` +
      `send to receipt p50 ${ms(pct(sorted, 50))}, p99 ${ms(pct(sorted, 99))}, max ${ms(sorted[sorted.length - 1] ?? NaN)}`,
  );
  return server;
}

async function main(): Promise<void> {
  printMachine(log);
  if (!existsSync(SERVER_ENTRY)) throw new Error(`no server entry at ${SERVER_ENTRY}`);
  const { url, name } = await createDatabase(ADMIN_URL);
  let server: ChildProcess | null = null;
  const conns: Conn[] = [];
  let rate = NaN;
  try {
    const port = await freePort();
    log(`bench:relay  PostgreSQL ${ADMIN_URL.replace(/\/\/[^@]*@/, '//')} db ${name}; server node flags "${SERVER_NODE_FLAGS}"`);
    server = await startServer(SERVER_ENTRY, url, port, SERVER_NODE_FLAGS); // migrates the fresh database
    const pid = server.pid!; // bash exec'd node: the server process itself
    if (PHASES.has('sustained') || PHASES.has('latency')) {
      const senders = await seed(url, 's', PAIRS);
      const receivers = await seed(url, 'r', PAIRS);
      log(`server pid ${pid}, RSS at start ${rssMb(pid).toFixed(0)} MB`);
      const rec = new Receipts();
      const rconns = await Promise.all(receivers.map((d) => connect(port, d, rec.onEnvelopes)));
      const sconns = await Promise.all(senders.map((d) => connect(port, d)));
      conns.push(...rconns, ...sconns);
      if (PHASES.has('sustained')) {
        rate = await sustained(pid, sconns, receivers, rec);
        await sleep(3000); // receivers drain, the database settles (autovacuum)
      }
      if (PHASES.has('latency')) {
        for (const r of OFFERED) {
          await offered(pid, r, sconns, receivers, rec);
          await sleep(2000);
        }
      }
      for (const c of conns) c.ws.terminate();
      conns.length = 0;
    }

    // A fresh server process: the load phases' heap would hide the cost.
    if (PHASES.has('idle') && IDLE > 0) {
      await stopServer(server);
      server = await idle(SERVER_ENTRY, url, port, conns);
      for (const c of conns) c.ws.terminate();
      conns.length = 0;
    }
    // The same server without tsx's loader thread (its own V8 isolate), for comparison.
    if (PHASES.has('idle-built') && IDLE > 0) {
      await stopServer(server);
      server = await idle(await buildServer(), url, port, conns);
      for (const c of conns) c.ws.terminate();
      conns.length = 0;
    }

    if (PHASES.has('pgbench')) {
      await stopServer(server);
      server = null;
      const l0 = load();
      const pb = await pgbench(url);
      log(`pgbench single-row INSERT+COMMIT on the same database (load average ${l0} at its start): ${pb.c1.toFixed(0)} TPS with 1 client, ${pb.c16.toFixed(0)} TPS with 16 clients`);
      if (Number.isFinite(rate)) log(`ratio: sustained messages/s / pgbench TPS = ${(rate / pb.c1).toFixed(2)}x (1 client), ${(rate / pb.c16).toFixed(2)}x (16 clients)`);
    }
    log(loadNow());
  } finally {
    for (const c of conns) c.ws.terminate();
    await stopServer(server);
    await dropDatabase(ADMIN_URL, name).catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
