/**
 * The server half of `npm run bench:scale`: how the server's cost grows with its data (issue 13).
 * The server (src/server/main.ts) runs in its own process; this process fills the database with
 * set-based SQL (generate_series, not the API) and is the load generator.
 *
 *   1. device list (GET /v1/accounts/{u}) and bundle claim (POST .../bundles) latency with 1k, 10k
 *      and 100k registered devices;
 *   2. send and ack throughput and p99 (closed loop on the stream) with 0, 100k and 1M envelopes
 *      waiting in other devices' queues;
 *   3. the three paths of the issue, main's SQL beside this branch's on the same data: a send's
 *      batch read for a queue of 19k envelopes from 5k senders, the GC orphan step with 10k
 *      removed devices, GC of 1M expired envelopes and 1M dedup entries with the p99 of sends
 *      offered meanwhile (beside the p99 without GC);
 *   4. the same on embedded PGlite at the sizes it holds in a reasonable time here (1k/10k devices,
 *      0/100k waiting envelopes, 100k expired).
 * Each figure is printed beside the one at the smallest size, with the ratio.
 *
 * GC runs from this process (the server's timer is off, GCHAT_DELIVERY_GC_INTERVAL_SECONDS=0), with
 * the server's own code (runGc) or main's statements, so both are timed the same way.
 *
 * Env: BENCH_PG_URL (admin URL, default the local test server), BENCH_SECONDS (each load phase,
 * default 6), BENCH_SKIP_PGLITE=1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { newMessageId } from '../../src/protocol/content.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { openDatabase } from '../../src/server/db.js';
import { runGc } from '../../src/server/delivery/gc.js';
import { ALL_SENDERS, QueueRepository, deviceRef } from '../../src/server/delivery/queue-repository.js';
import { AppSqlDatabase, PgSqlDatabase } from '../../src/server/delivery/sql.js';
import { freePort } from '../../test/helpers/server-process.js';
import { loadNow, printMachine } from './machine.js';
import { connect, send } from './relay-client.js';
import type { Dev as RelayDev } from './relay-setup.js';

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const PAIRS = 20;
const WINDOW = 8;
const OFFERED = 500; // sends/s offered while GC runs
const BODY = Buffer.concat([Buffer.of(0x01, 0x02), randomBytes(214)]).toString('base64url');
const DAY = 86_400_000;

type Exec = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;
interface Dev extends RelayDev {
  readonly accountId: string;
}

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (xs: number[]): number => pct(xs, 50);
/** "value (ratio x the first)" for a row of figures at growing sizes. */
function row(label: string, unit: string, xs: number[], fmt = ms): string {
  return `  ${label.padEnd(34)} ${xs.map((x, i) => `${fmt(x)} ${unit}${i === 0 ? '' : ` (${(x / xs[0]!).toFixed(2)}x)`}`).join('   ')}`;
}

// ---- filling, set-based -------------------------------------------------------------------

/** Accounts 'f-<from>'..'f-<to-1>', one device each, with an SPK, a last-resort PQPK and 3 OPKs. */
async function fillDevices(exec: Exec, from: number, to: number): Promise<void> {
  if (to <= from) return;
  await exec(
    `INSERT INTO accounts (username, password_hash, ak_pub, next_device_id)
     SELECT 'f-' || g, 'x', decode(md5(g::text) || md5(g::text), 'hex'), 2 FROM generate_series($1::int, $2::int - 1) g`,
    [from, to],
  );
  const mine = `SELECT id FROM accounts WHERE username LIKE 'f-%' AND substr(username, 3)::int >= $1 AND substr(username, 3)::int < $2`;
  await exec(
    `INSERT INTO devices (account_id, device_id, ik_pub, device_cert, token_hash)
     SELECT id, 1, decode(md5(id::text) || md5(id::text), 'hex'), decode(repeat('00', 64), 'hex'), sha256(convert_to(id::text, 'UTF8'))
       FROM (${mine}) a`,
    [from, to],
  );
  await exec(`INSERT INTO signed_prekeys (account_id, device_id, spk_id, pub, sig)
              SELECT id, 1, 1, decode(repeat('11', 32), 'hex'), decode(repeat('22', 64), 'hex') FROM (${mine}) a`, [from, to]);
  await exec(`INSERT INTO pq_prekeys (account_id, device_id, pqpk_id, pub, sig, last_resort)
              SELECT id, 1, 1, decode(repeat('33', 1184), 'hex'), decode(repeat('22', 64), 'hex'), true FROM (${mine}) a`, [from, to]);
  await exec(`INSERT INTO one_time_prekeys (account_id, device_id, opk_id, pub)
              SELECT id, 1, k, decode(repeat('44', 32), 'hex') FROM (${mine}) a, generate_series(1, 3) k`, [from, to]);
  await exec(`UPDATE devices SET max_spk_id = 1, max_opk_id = 3, max_pqpk_id = 1 WHERE max_opk_id = -1`);
}

/**
 * `n` envelopes (216-byte bodies) in the queues of the first `queues` filler devices, from
 * filler senders, at `ts`; then the usage counters are rebuilt from what is queued.
 */
async function fillEnvelopes(exec: Exec, n: number, queues: number, ts: number): Promise<void> {
  for (let off = 0; off < n; off += 250_000) {
    await exec(
      `WITH q AS (SELECT array_agg(id ORDER BY username) AS ids FROM (SELECT id, username FROM accounts WHERE username LIKE 'f-%' ORDER BY username LIMIT $2) x)
       INSERT INTO delivery_envelopes (account_id, device_id, message_id, sender, sender_device, type, body, server_ts, sender_account)
       SELECT q.ids[1 + g % $2], 1, gen_random_uuid(), 'f-0', 1, 2, $3, $4, q.ids[1 + (g + 1) % $2]
         FROM q, generate_series(1, $1::int) g`,
      [Math.min(250_000, n - off), queues, BODY, ts],
    );
  }
  await rebuildUsage(exec);
}

async function rebuildUsage(exec: Exec): Promise<void> {
  await exec(`DELETE FROM delivery_queue_usage`);
  await exec(
    `INSERT INTO delivery_queue_usage (account_id, device_id, sender_account, envelopes, bytes)
     SELECT account_id, device_id, coalesce(sender_account, '${ALL_SENDERS}'::uuid), count(*), sum(octet_length(body) * 3 / 4)
       FROM delivery_envelopes GROUP BY GROUPING SETS ((account_id, device_id, sender_account), (account_id, device_id))`,
  );
}

/** Senders or receivers with known tokens. */
async function seedPeople(exec: Exec, prefix: string, n: number): Promise<Dev[]> {
  const devs: Dev[] = [];
  for (let i = 0; i < n; i++) {
    const token = randomBytes(32).toString('base64url');
    const ik = randomBytes(32);
    const username = `${prefix}-${i}`;
    const r = await exec(
      `WITH a AS (INSERT INTO accounts (username, password_hash, ak_pub, next_device_id) VALUES ($1, 'x', decode($2, 'hex'), 2) RETURNING id)
       INSERT INTO devices (account_id, device_id, ik_pub, device_cert, token_hash)
       SELECT id, 1, decode($2, 'hex'), decode(repeat('00', 64), 'hex'), decode($3, 'hex') FROM a RETURNING account_id::text AS id`,
      [username, ik.toString('hex'), createHash('sha256').update(token).digest('hex')],
    );
    devs.push({ username, device: 1, accountId: String(r[0]!.id), token, key: ik.toString('base64url') });
  }
  return devs;
}

// ---- the server process -------------------------------------------------------------------

const SERVER_ENV = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  NODE_ENV: 'production',
  GCHAT_DELIVERY_GC_INTERVAL_SECONDS: '0',
  GCHAT_RATE_LOOKUPS_IP: '1000000/60',
  GCHAT_RATE_BUNDLES_IP: '1000000/60',
  GCHAT_RATE_BUNDLES_ACCOUNT: '1000000/60',
};

async function startServer(port: number, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn('node', ['--import', 'tsx', 'src/server/main.ts'], {
    env: { ...process.env, ...SERVER_ENV, PORT: String(port), ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${port}/live`).then((r) => r.ok, () => false);
    if (ok) return child;
    if (Date.now() > deadline) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (!child.pid || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(-child.pid, 'SIGTERM');
  const t = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

// ---- load ---------------------------------------------------------------------------------

interface Load {
  /** Closed loop: sends accepted/s, acks/s, p99 of send -> answer. */
  closed(seconds: number): Promise<{ sends: number; acks: number; p99: number }>;
  /** Open loop at `rate`/s while `during` runs (or for `seconds`): p99 of send -> answer. */
  open(rate: number, seconds: number, during?: () => Promise<unknown>): Promise<{ p99: number; n: number; ms: number }>;
  close(): void;
}

async function load(port: number, senders: Dev[], receivers: Dev[]): Promise<Load> {
  let acks = 0;
  const tx = await Promise.all(senders.map((s) => connect(port, s)));
  const rx = await Promise.all(receivers.map((r) => connect(port, r, (mids) => (acks += mids.length))));
  return {
    async closed(seconds) {
      const lat: number[] = [];
      let sent = 0;
      const a0 = acks;
      const end = performance.now() + seconds * 1000;
      await Promise.all(
        tx.flatMap((c, i) =>
          Array.from({ length: WINDOW }, async () => {
            while (performance.now() < end) {
              const t0 = performance.now();
              await send(c, receivers[i]!, newMessageId(Date.now(), systemRandom), BODY);
              lat.push(performance.now() - t0);
              sent++;
            }
          }),
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      return { sends: sent / seconds, acks: (acks - a0) / seconds, p99: pct(lat, 99) };
    },
    async open(rate, seconds, during) {
      const lat: number[] = [];
      const inflight: Promise<void>[] = [];
      let stop = false;
      const t0 = performance.now();
      const done = during ? during().finally(() => (stop = true)) : new Promise((r) => setTimeout(r, seconds * 1000)).then(() => (stop = true));
      let k = 0;
      while (!stop) {
        const due = t0 + (k * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const i = k % tx.length;
        const s = performance.now();
        inflight.push(send(tx[i]!, receivers[i]!, newMessageId(Date.now(), systemRandom), BODY).then(() => void lat.push(performance.now() - s)));
        k++;
      }
      await done;
      await Promise.all(inflight);
      return { p99: pct(lat, 99), n: lat.length, ms: performance.now() - t0 };
    },
    close() {
      for (const c of [...tx, ...rx]) c.ws.close();
    },
  };
}

async function timeRequests(n: number, req: (i: number) => Promise<Response>): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await req(i);
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`request failed: ${r.status}`);
    lat.push(performance.now() - t0);
  }
  return { p50: median(lat), p99: pct(lat, 99) };
}

function directoryProbe(port: number, caller: Dev, devices: number) {
  const base = `http://127.0.0.1:${port}/v1/accounts/`;
  const u = (i: number): string => `f-${(i * 7919) % devices}`;
  return {
    list: () => timeRequests(300, (i) => fetch(base + u(i))),
    claim: () =>
      timeRequests(300, (i) =>
        fetch(`${base}${u(i + 1)}/bundles`, { method: 'POST', headers: { authorization: `Bearer ${caller.token}`, 'content-type': 'application/json' }, body: '{}' }),
      ),
  };
}

// ---- main's statements, for the before/after of the three paths --------------------------

const MAIN_USAGE = (rows: string): string => `usage AS (
  INSERT INTO delivery_queue_usage AS q (account_id, device_id, sender_account, envelopes, bytes)
  SELECT account_id, device_id, sender_account, -count(*), -sum(bytes) FROM ${rows}
   GROUP BY account_id, device_id, sender_account ORDER BY account_id, device_id, sender_account
  ON CONFLICT (account_id, device_id, sender_account) DO UPDATE SET envelopes = q.envelopes + EXCLUDED.envelopes, bytes = q.bytes + EXCLUDED.bytes
  RETURNING 1)`;

const MAIN = {
  readBatch: `SELECT
     (SELECT coalesce(json_agg(json_build_array(s.sender_account::text || '/' || s.sender_device, s.message_id::text,
                                                encode(s.content_hash, 'hex'), s.answer)), '[]'::json)
        FROM delivery_sends s JOIN unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS k(acc, dev, mid)
          ON s.sender_account = k.acc AND s.sender_device = k.dev AND s.message_id = k.mid
       WHERE s.expires_at > $4) AS sends,
     (SELECT coalesce(json_agg(json_build_array(a.username, a.id::text, d.device_id::text, encode(d.ik_pub, 'hex'),
             (SELECT json_build_array(coalesce(sum(u.envelopes), 0), coalesce(sum(u.bytes), 0)) FROM delivery_queue_usage u
               WHERE u.account_id = d.account_id AND u.device_id = d.device_id))), '[]'::json)
        FROM accounts a LEFT JOIN devices d ON d.account_id = a.id AND d.removed_at IS NULL WHERE a.username = ANY($5::text[])) AS devices,
     (SELECT coalesce(json_agg(json_build_array(u.account_id::text || '/' || u.device_id, u.sender_account::text, u.envelopes, u.bytes)), '[]'::json)
        FROM accounts a JOIN delivery_queue_usage u ON u.account_id = a.id
       WHERE a.username = ANY($5::text[]) AND u.sender_account = ANY($7::uuid[])) AS shares,
     (SELECT coalesce(json_agg(nextval('delivery_envelope_id_seq')::text), '[]'::json) FROM generate_series(1, $6::int)) AS ids`,
  orphans: `WITH doomed AS (
     SELECT e.id FROM delivery_envelopes e JOIN devices d ON d.account_id = e.account_id AND d.device_id = e.device_id
      WHERE d.removed_at IS NOT NULL LIMIT $1 FOR UPDATE OF e SKIP LOCKED
   ), gone AS (DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id
     RETURNING e.account_id, e.device_id, e.sender_account, octet_length(body) * 3 / 4 AS bytes), ${MAIN_USAGE('gone')}
   SELECT count(*) AS n FROM gone`,
  expiredEnvelopes: `WITH doomed AS (
     SELECT e.id FROM delivery_envelopes e WHERE e.id IN (SELECT id FROM delivery_envelopes ORDER BY id LIMIT $2) AND e.server_ts < $1 FOR UPDATE SKIP LOCKED
   ), gone AS (DELETE FROM delivery_envelopes e USING doomed WHERE e.id = doomed.id
     RETURNING e.account_id, e.device_id, e.sender_account, octet_length(body) * 3 / 4 AS bytes), ${MAIN_USAGE('gone')}
   SELECT count(*) AS n FROM gone`,
  expiredSends: `WITH doomed AS (
     SELECT sender_account, sender_device, message_id FROM delivery_sends WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
   ), gone AS (DELETE FROM delivery_sends s USING doomed WHERE s.sender_account = doomed.sender_account
     AND s.sender_device = doomed.sender_device AND s.message_id = doomed.message_id RETURNING 1) SELECT count(*) AS n FROM gone`,
};

/** main's GC loop: 2,000-row steps back to back until a step deletes less. */
async function mainGc(exec: Exec, now: number): Promise<void> {
  for (const [sql, arg] of [
    [MAIN.expiredEnvelopes, now - 30 * DAY],
    [MAIN.expiredSends, now],
  ] as const) {
    for (;;) if (Number((await exec(sql, [arg, 2000]))[0]!.n) < 2000) break;
  }
}

async function newGc(repo: QueueRepository, now: number): Promise<void> {
  while ((await runGc(repo, { retentionMs: 30 * DAY, now: () => now })).more);
}

/** Shared buffers (hit + read) one execution of `sql` touches: a figure the machine's load does not move. */
async function blocks(exec: Exec, sql: string, params: readonly unknown[]): Promise<number> {
  const r = await exec(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, [...params]);
  const plan = (r[0]!['QUERY PLAN'] as { Plan: Record<string, number> }[])[0]!.Plan;
  return (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0);
}

/** Medians of `a` and `b` run alternately, so that both see the same load. */
async function timeAlternating(runs: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  const xa: number[] = [];
  const xb: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [f, xs] of [[a, xa], [b, xb]] as const) {
      const t0 = performance.now();
      await f();
      xs.push(performance.now() - t0);
    }
  }
  return [median(xa), median(xb)];
}

async function timeQuery(runs: number, f: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

/** 1M (or n) expired envelopes and as many expired dedup entries. */
async function fillExpired(exec: Exec, n: number): Promise<void> {
  const old = Date.now() - 31 * DAY;
  await fillEnvelopes(exec, n, 1000, old);
  await exec(
    `INSERT INTO delivery_sends (sender_account, sender_device, message_id, content_hash, answer, expires_at)
     SELECT (SELECT id FROM accounts WHERE username = 'f-0'), 1, gen_random_uuid(), decode(repeat('55', 32), 'hex'), '{}', $2::bigint + g % 1000
       FROM generate_series(1, $1::int) g`,
    [n, old + 30 * DAY],
  );
}

// ---- the runs -----------------------------------------------------------------------------

async function postgres(): Promise<void> {
  const name = `gchat_scale_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined); // the drop at the end terminates whatever is still connected
  const exec: Exec = async (sql, params) => (await pool.query(sql, params)).rows as Record<string, unknown>[];
  const sqlDb = new PgSqlDatabase(url, 2);
  const repo = new QueueRepository(sqlDb);
  /** The statement the branch's repository sends, to EXPLAIN it. */
  const recorded = { text: '', params: [] as readonly unknown[] };
  const recorder = new QueueRepository({
    kind: 'postgres',
    query: async <R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> => {
      recorded.text = text;
      recorded.params = params ?? [];
      return sqlDb.query<R>(text, params);
    },
  });
  const port = await freePort();
  let server: ChildProcess | null = null;
  try {
    server = await startServer(port, { DATABASE_URL: url });
    const senders = await seedPeople(exec, 's', PAIRS);
    const receivers = await seedPeople(exec, 'r', PAIRS);
    log(`\nPostgreSQL (${(await exec('SHOW server_version'))[0]!.server_version}), database ${name}; server pid ${server.pid}`);

    // 1. Directory.
    const sizes = [1_000, 10_000, 100_000];
    const list: number[][] = [[], []];
    const claim: number[][] = [[], []];
    let have = 0;
    for (const n of sizes) {
      await fillDevices(exec, have, n);
      have = n;
      await exec('ANALYZE');
      const probe = directoryProbe(port, senders[0]!, n);
      if (n === sizes[0]) await Promise.all([probe.list(), probe.claim()]); // warm-up (JIT, pools)
      const l = await probe.list();
      const c = await probe.claim();
      list[0]!.push(l.p50), list[1]!.push(l.p99), claim[0]!.push(c.p50), claim[1]!.push(c.p99);
    }
    log(`registered devices: ${sizes.map((s) => s / 1000 + 'k').join(' / ')}   (${loadNow()})`);
    log(row('device list p50', 'ms', list[0]!));
    log(row('device list p99', 'ms', list[1]!));
    log(row('bundle claim p50', 'ms', claim[0]!));
    log(row('bundle claim p99', 'ms', claim[1]!));

    // 2. Send and ack with envelopes waiting elsewhere.
    const waiting = [0, 100_000, 1_000_000];
    const sends: number[] = [];
    const acks: number[] = [];
    const p99: number[] = [];
    let queued = 0;
    for (const n of waiting) {
      await fillEnvelopes(exec, n - queued, 1000, Date.now());
      queued = n;
      await exec('VACUUM ANALYZE');
      const l = await load(port, senders, receivers);
      await l.closed(1); // warm-up
      const r = await l.closed(SECONDS);
      l.close();
      sends.push(r.sends), acks.push(r.acks), p99.push(r.p99);
    }
    log(`envelopes waiting in other devices' queues: 0 / 100k / 1M (100k devices registered)   (${loadNow()})`);
    log(row('sends/s (closed loop)', '/s', sends, (x) => x.toFixed(0)));
    log(row('acks/s', '/s', acks, (x) => x.toFixed(0)));
    log(row('send p99', 'ms', p99));

    // 3a. A send's batch read, for a device holding 19k envelopes from 5k senders.
    const victim = receivers[0]!;
    await exec(
      `WITH s AS (SELECT array_agg(id) AS ids FROM (SELECT id FROM accounts WHERE username LIKE 'f-%' LIMIT 5000) x)
       INSERT INTO delivery_envelopes (account_id, device_id, message_id, sender, sender_device, type, body, server_ts, sender_account)
       SELECT $1, 1, gen_random_uuid(), 'f-0', 1, 2, $2, $3, s.ids[1 + g % 5000] FROM s, generate_series(1, 19000) g`,
      [victim.accountId, BODY, Date.now()],
    );
    await rebuildUsage(exec);
    await exec('VACUUM ANALYZE');
    const sender = senders[1]!;
    const readers = (to: Dev) => {
      const q = { keys: [{ senderDevice: deviceRef(sender.accountId, 1), messageId: randomUUID(), recipient: to.username }], usernames: [to.username, sender.username], idCount: 1, now: Date.now() };
      const mainParams = [[sender.accountId], [1], [q.keys[0]!.messageId], q.now, q.usernames, 1, [sender.accountId]];
      return {
        main: { run: () => exec(MAIN.readBatch, mainParams), explain: () => blocks(exec, MAIN.readBatch, mainParams) },
        branch: {
          run: () => repo.readBatch(q),
          explain: async () => {
            await recorder.readBatch(q);
            return blocks(exec, recorded.text, recorded.params);
          },
        },
      };
    };
    const figures = async (): Promise<{ main: number[]; branch: number[] }> => {
      const out = { main: [] as number[], branch: [] as number[] };
      for (const to of [receivers[1]!, victim]) {
        const r = readers(to);
        const [m, b] = await timeAlternating(300, r.main.run, r.branch.run);
        out.main.push(m, await r.main.explain());
        out.branch.push(b, await r.branch.explain());
      }
      return out;
    };
    log(`\nthe three paths, main's SQL beside this branch's, same database   (${loadNow()})`);
    log(`  a send's batch read, to an empty queue / to a queue of 19k envelopes from 5k senders (median ms, then shared blocks touched):`);
    const fmtRead = (xs: number[]): string => `${ms(xs[0]!)} ms ${xs[1]} blocks   ${ms(xs[2]!)} ms (${(xs[2]! / xs[0]!).toFixed(2)}x) ${xs[3]} blocks`;
    const fresh = await figures();
    log(`    main     ${fmtRead(fresh.main)}`);
    log(`    branch   ${fmtRead(fresh.branch)}`);
    // Churn without VACUUM: every counter of both queues updated 20 more times (as sends and acks do).
    for (let i = 0; i < 20; i++) await exec(`UPDATE delivery_queue_usage SET envelopes = envelopes WHERE account_id = ANY($1::uuid[])`, [[victim.accountId, receivers[1]!.accountId]]);
    const churned = await figures();
    log(`  the same after 20 updates of each counter, before VACUUM:`);
    log(`    main     ${fmtRead(churned.main)}`);
    log(`    branch   ${fmtRead(churned.branch)}`);

    // 3b. The orphan step with 10k removed devices (empty queues), 1M envelopes waiting.
    await exec(`UPDATE devices SET removed_at = now(), token_hash = NULL WHERE account_id IN
                (SELECT id FROM accounts WHERE username LIKE 'f-%' ORDER BY username DESC LIMIT 10000)`);
    await exec('VACUUM ANALYZE');
    const orphanMain = await timeQuery(5, () => exec(MAIN.orphans, [2000]));
    const orphanNew = await timeQuery(5, async () => {
      await repo.deleteOrphans(2000);
      await repo.forgetCollectedQueues(Date.now());
    });
    log(row('  GC orphan step, nothing to collect: main / branch', 'ms', [orphanMain, orphanNew]));

    // 3c. GC of 1M expired envelopes and 1M expired dedup entries, with sends offered meanwhile.
    const before = await exec(`SELECT pg_size_pretty(pg_total_relation_size('delivery_envelopes')) AS s`);
    const l = await load(port, senders, receivers);
    const gcRuns: { label: string; ms: number; p99: number; idle: number }[] = [];
    for (const [label, gc] of [
      ['main (2,000-row steps back to back)', () => mainGc(exec, Date.now())],
      ['branch (runGc: resumed steps, paced)', () => newGc(repo, Date.now())],
    ] as const) {
      await fillExpired(exec, 1_000_000);
      await exec('VACUUM ANALYZE');
      const idle = await l.open(OFFERED, SECONDS);
      const t0 = performance.now();
      const during = await l.open(OFFERED, 0, gc);
      gcRuns.push({ label, ms: performance.now() - t0, p99: during.p99, idle: idle.p99 });
      await exec('VACUUM');
    }
    l.close();
    log(`  GC of 1M expired envelopes + 1M dedup entries, ${OFFERED} sends/s offered   (${loadNow()})`);
    for (const g of gcRuns) {
      log(`    ${g.label.padEnd(40)} GC ${(g.ms / 1000).toFixed(1)} s; send p99 ${ms(g.idle)} ms without GC, ${ms(g.p99)} ms during GC (${(g.p99 / g.idle).toFixed(2)}x)`);
    }
    const size = await exec(`SELECT pg_size_pretty(pg_total_relation_size('delivery_envelopes')) AS s`);
    log(`    delivery_envelopes with 1M waiting before the first fill: ${String(before[0]!.s)}; after two fills of 1M expired, both collections and a VACUUM: ${String(size[0]!.s)}`);
  } finally {
    if (server) await stopServer(server);
    await sqlDb.close();
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** PGlite is the server's own process: each size is filled with the server stopped, then served. */
async function pglite(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gchat-scale-'));
  const dataDir = path.join(dir, 'pglite');
  let people: { senders: Dev[]; receivers: Dev[] } | null = null;
  const withDb = async <T>(f: (exec: Exec) => Promise<T>): Promise<T> => {
    const db = await openDatabase({ kind: 'pglite', dataDir });
    try {
      await db.migrate();
      return await f(async (sql, params) => (await db.query<Record<string, unknown>>(sql, params)).rows);
    } finally {
      await db.close();
    }
  };
  const serve = async <T>(f: (port: number) => Promise<T>): Promise<T> => {
    const port = await freePort();
    const server = await startServer(port, { GCHAT_DATA_DIR: dir });
    try {
      return await f(port);
    } finally {
      await stopServer(server);
    }
  };
  try {
    log(`\nembedded PGlite (data dir ${dir}): 1k/10k devices, 0/100k waiting, 100k expired (1M takes minutes to fill in WebAssembly here)`);
    const list: number[] = [];
    const claim: number[] = [];
    let have = 0;
    for (const n of [1_000, 10_000]) {
      people = await withDb(async (exec) => {
        await fillDevices(exec, have, n);
        return people ?? { senders: await seedPeople(exec, 's', PAIRS), receivers: await seedPeople(exec, 'r', PAIRS) };
      });
      have = n;
      await serve(async (port) => {
        const probe = directoryProbe(port, people!.senders[0]!, n);
        await Promise.all([probe.list(), probe.claim()]); // warm-up (a fresh server each size)
        list.push((await probe.list()).p99);
        claim.push((await probe.claim()).p99);
      });
    }
    log(`registered devices: 1k / 10k   (${loadNow()})`);
    log(row('device list p99', 'ms', list));
    log(row('bundle claim p99', 'ms', claim));
    const sends: number[] = [];
    const p99: number[] = [];
    let queued = 0;
    for (const n of [0, 100_000]) {
      await withDb((exec) => fillEnvelopes(exec, n - queued, 1000, Date.now()));
      queued = n;
      await serve(async (port) => {
        const l = await load(port, people!.senders, people!.receivers);
        await l.closed(1);
        const r = await l.closed(SECONDS);
        l.close();
        sends.push(r.sends), p99.push(r.p99);
      });
    }
    log(`envelopes waiting in other devices' queues: 0 / 100k   (${loadNow()})`);
    log(row('sends/s (closed loop)', '/s', sends, (x) => x.toFixed(0)));
    log(row('send p99', 'ms', p99));
    await withDb((exec) => fillExpired(exec, 100_000));
    // GC on PGlite runs in the process that holds the database: here, with no server.
    const db = await openDatabase({ kind: 'pglite', dataDir });
    let t: number;
    try {
      const r = new QueueRepository(new AppSqlDatabase(db));
      const t0 = performance.now();
      await newGc(r, Date.now());
      t = performance.now() - t0;
    } finally {
      await db.close();
    }
    log(`  GC of 100k expired envelopes + 100k dedup entries (no concurrent load: one process holds the database): ${(t / 1000).toFixed(1)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  printMachine(log);
  log(`bench:scale (server): each figure beside the one at the smallest size; ${SECONDS} s per load phase, ${PAIRS} senders x ${WINDOW} in flight`);
  await postgres();
  if (process.env.BENCH_SKIP_PGLITE !== '1') await pglite();
  log(`\ndone; ${loadNow()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
