/**
 * npm run bench:push — wake-up latency and rate, and what push costs the send path.
 *
 * A server process (src/server/main.ts) on a fresh PostgreSQL database; this process is the load
 * generator; a third process is the loopback Web Push service (RFC 8030, each push's VAPID JWT
 * checked and its payload decrypted, as in the tests; scripts/bench/push-service-process.ts). 500 devices, each registered for Web Push and offline (no
 * stream); one message to each, sent over REST with a fixed number in flight.
 *
 *   latency: from the send's 200 (accepted, committed) to the push service's receipt of the
 *            wake-up, p50/p99. It includes the grace (GCHAT_PUSH_GRACE_MS, the time a live
 *            stream has to take the envelope before a wake-up is sent), printed beside it.
 *   pushes/s: wake-ups received per second, first receipt to last.
 *   send cost: sends/s and send latency p50/p99, push on and push off (GCHAT_PUSH=false), each
 *            on its own fresh database. Pushes run after the commit, so the goal is no cost.
 *
 * Env: BENCH_DEVICES (default 500), BENCH_CONCURRENCY (sends in flight, default 32),
 * BENCH_GRACE_MS (default 1000). Needs the local PostgreSQL (127.0.0.1:5432, database test).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { newMessageId } from '../src/protocol/content.js';
import { systemRandom } from '../src/protocol/primitives.js';
import type { Subscription } from '../test/helpers/push-service.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { freshDatabase, pgExec, seedAccounts, type SeededAccount } from '../test/server/delivery-fixture.js';
import { printMachine } from './bench/machine.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const GRACE_MS = Number(process.env.BENCH_GRACE_MS ?? 1000);
/** A well-formed SPEC §5 normal message head (version 1, type 2) around random bytes: the server checks the head. */
const BODY = Buffer.concat([Buffer.from([0x01, 0x02]), randomBytes(40 + 16 + 96)]).toString('base64url');

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function json(url: string, token: string, method: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The push service process, as the load generator sees it. */
class PushServiceProcess {
  readonly received: { subscription: string; at: number }[] = [];
  violations = 0;
  private rid = 0;
  private readonly pending = new Map<number, (s: Subscription) => void>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: { op: string; rid?: number; sub?: Subscription; subscription?: string; at?: number; count?: number }) => {
      if (m.op === 'received') this.received.push({ subscription: m.subscription!, at: m.at! });
      else if (m.op === 'violations') this.violations = m.count!;
      else if (m.op === 'subscription') {
        this.pending.get(m.rid!)?.(m.sub!);
        this.pending.delete(m.rid!);
      }
    });
  }

  static start(): Promise<PushServiceProcess> {
    const child = fork(path.join(import.meta.dirname, 'bench/push-service-process.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('message', () => resolve(new PushServiceProcess(child)));
    });
  }

  subscribe(): Promise<Subscription> {
    const rid = ++this.rid;
    return new Promise((r) => {
      this.pending.set(rid, r);
      this.child.send({ op: 'subscribe', rid });
    });
  }

  close(): void {
    this.child.disconnect();
  }
}

/** Wall-clock ms with sub-ms resolution, comparable across processes. */
const wallNow = (): number => performance.timeOrigin + performance.now();

interface Run {
  readonly sendLatencies: number[];
  readonly sendsPerSecond: number;
  /** Per device: accepted-at and received-at (performance.now()). */
  readonly wakeLatencies: number[];
  readonly pushesPerSecond: number;
  readonly received: number;
  readonly violations: number;
  /** Lines of the server's log about pushes that failed (timeouts under load, refusals). */
  readonly pushFailures: number;
}

async function run(push: boolean, service: PushServiceProcess): Promise<Run> {
  const db = await freshDatabase('gchat_bench_push');
  const sql = pgExec(db.url);
  const server = await ServerProcess.onDatabase(db.url, {
    GCHAT_PUSH: String(push),
    GCHAT_WEBPUSH_ALLOW_HTTP: 'true',
    GCHAT_PUSH_GRACE_MS: String(GRACE_MS),
    GCHAT_PUSH_COALESCE_SECONDS: '5',
    LOG_LEVEL: 'warn',
  });
  try {
    await server.start();
    const spec = [{ username: 'alice', devices: 1 }, ...Array.from({ length: DEVICES }, (_, i) => ({ username: `bob${i}`, devices: 1 }))];
    const [alice, ...bobs] = (await seedAccounts(sql.exec, spec)) as [SeededAccount, ...SeededAccount[]];
    const subs = new Map<string, Subscription>();
    for (const bob of bobs) {
      const sub = await service.subscribe();
      subs.set(sub.id, sub);
      const r = await json(`${server.url}/v1/push/registrations`, bob.devices[0]!.token, 'PUT', { kind: 'webpush', endpoint: sub.endpoint, keys: sub.keys });
      if (r.status !== 204) throw new Error(`registration failed: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const before = service.received.length;
    const acceptedAt = new Map<string, number>();
    const subOf = [...subs.values()];
    const sendLatencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < bobs.length) {
        const i = next++;
        const bob = bobs[i]!;
        const req = {
          message_id: newMessageId(Date.now(), systemRandom),
          recipient: bob.username,
          copies: [{ user: bob.username, device: 1, key: bob.devices[0]!.key, type: 2, body: BODY }],
        };
        const s = performance.now();
        const r = await json(`${server.url}/v1/messages`, alice.devices[0]!.token, 'POST', req);
        const done = performance.now();
        const accepted = wallNow();
        if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
        sendLatencies.push(done - s);
        acceptedAt.set(subOf[i]!.id, accepted);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const sendSeconds = (performance.now() - t0) / 1000;
    let wakeLatencies: number[] = [];
    let pushesPerSecond = NaN;
    if (push) {
      const deadline = Date.now() + 120_000;
      while (service.received.length - before < DEVICES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const mine = service.received.slice(before).filter((p) => acceptedAt.has(p.subscription));
      wakeLatencies = mine.map((p) => p.at - acceptedAt.get(p.subscription)!).sort((a, b) => a - b);
      const times = mine.map((p) => p.at).sort((a, b) => a - b);
      pushesPerSecond = times.length > 1 ? (times.length - 1) / ((times[times.length - 1]! - times[0]!) / 1000) : NaN;
    } else {
      // Push off: nothing may arrive, even after the grace.
      await new Promise((r) => setTimeout(r, GRACE_MS + 1000));
    }
    return {
      sendLatencies: sendLatencies.sort((a, b) => a - b),
      sendsPerSecond: DEVICES / sendSeconds,
      wakeLatencies,
      pushesPerSecond,
      received: service.received.length - before,
      violations: service.violations,
      pushFailures: server.log.split('\n').filter((l) => l.includes('push failed')).length,
    };
  } finally {
    await server.kill('SIGTERM');
    await sql.close();
    await db.drop();
  }
}

async function main(): Promise<void> {
  printMachine(log);
  const service = await PushServiceProcess.start();
  try {
    log(`bench:push — ${DEVICES} offline devices registered for Web Push, one message each, ${CONCURRENCY} sends in flight, grace ${GRACE_MS} ms`);
    const off = await run(false, service);
    const on = await run(true, service);
    const f = (x: number) => x.toFixed(1);
    log('');
    log(`wake-ups received: ${on.received} of ${DEVICES} (push service contract violations: ${on.violations})`);
    log(`wake-up latency, accepted send -> push service receipt: p50 ${f(pct(on.wakeLatencies, 50))} ms, p99 ${f(pct(on.wakeLatencies, 99))} ms`);
    log(`   of which the grace (time for a live stream to take it): ${GRACE_MS} ms; beyond it p50 ${f(pct(on.wakeLatencies, 50) - GRACE_MS)} ms, p99 ${f(pct(on.wakeLatencies, 99) - GRACE_MS)} ms`);
    log(`pushes/s (first receipt to last): ${f(on.pushesPerSecond)}; failed attempts logged by the server: ${on.pushFailures}`);
    log('');
    log('send path            sends/s   p50 ms   p99 ms');
    log(`push on          ${f(on.sendsPerSecond).padStart(11)} ${f(pct(on.sendLatencies, 50)).padStart(8)} ${f(pct(on.sendLatencies, 99)).padStart(8)}`);
    log(`push off         ${f(off.sendsPerSecond).padStart(11)} ${f(pct(off.sendLatencies, 50)).padStart(8)} ${f(pct(off.sendLatencies, 99)).padStart(8)}`);
    log(`push off received ${off.received} wake-ups (must be 0)`);
    log(`load average at the end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')} on ${(await import('node:os')).cpus().length} cores (other work on a shared machine skews these figures)`);
  } finally {
    service.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
