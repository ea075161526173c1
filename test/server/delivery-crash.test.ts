/**
 * Crash test: two server processes (src/server/main.ts) on one database; senders send 5,000
 * messages through both while one process is SIGKILLed and restarted. Every message reaches
 * every device; after acks no queue holds anything; a device sees a message twice only when it
 * had not been told its ack was durable. Bounded: the test stops by itself.
 */
import { ServerProcess } from '../helpers/server-process.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope, SendRequest } from '../../src/server/delivery/schemas.js';
import {
  type FreshDatabase,
  type SeededAccount,
  StreamClient,
  freshDatabase,
  makeSend,
  pgExec,
  postgresReachable,
  seedAccounts,
} from './delivery-fixture.js';

const reachable = await postgresReachable();
const MESSAGES = 5000;
const SENDERS = 10;
const RECEIVERS = 10;
const WINDOW = 16;
const DEADLINE_MS = Number(process.env.GCHAT_CRASH_DEADLINE_MS ?? 600_000);

/** What one device saw, for the duplicate rule. */
class DeviceLog {
  readonly byMessage = new Map<string, Set<string>>(); // message_id -> server ids seen
  readonly confirmed = new Set<string>(); // server ids whose ack the server confirmed
  readonly seen = new Set<string>(); // message_ids received
  duplicates = 0;
  violations: string[] = [];

  receive(e: Envelope): void {
    const ids = this.byMessage.get(e.message_id) ?? new Set<string>();
    if (this.seen.has(e.message_id)) {
      this.duplicates++;
      // Allowed only for an envelope whose ack this device had not seen confirmed.
      for (const id of ids) if (this.confirmed.has(id)) this.violations.push(`${e.message_id} again after its ack was confirmed`);
    }
    ids.add(e.id);
    this.byMessage.set(e.message_id, ids);
    this.seen.add(e.message_id);
  }
}

describe.skipIf(!reachable)('delivery: crash of one of two server processes (PostgreSQL)', () => {
  let fdb: FreshDatabase;
  let sql: ReturnType<typeof pgExec>;
  const servers: ServerProcess[] = [];
  let stop = false;

  beforeAll(async () => {
    fdb = await freshDatabase('gchat_crash');
    sql = pgExec(fdb.url);
    for (let i = 0; i < 2; i++) servers.push(await ServerProcess.onDatabase(fdb.url, { LOG_LEVEL: 'warn' }));
    await Promise.all(servers.map((s) => s.start()));
  }, 300_000);

  afterAll(async () => {
    stop = true;
    await Promise.all(servers.map((s) => s.kill('SIGKILL')));
    await sql?.close();
    await fdb?.drop();
  });

  it('delivers 5,000 messages to every device exactly once per unconfirmed ack, through a SIGKILL and restart', async () => {
    const started = Date.now();
    const senders = await seedAccounts(sql.exec, Array.from({ length: SENDERS }, (_, i) => ({ username: `sender-${i}`, devices: 2 })));
    const receivers = await seedAccounts(sql.exec, Array.from({ length: RECEIVERS }, (_, i) => ({ username: `receiver-${i}`, devices: 2 })));
    const perSender = MESSAGES / SENDERS;
    // The expected message_ids of every receiving device: recipients' devices, senders' device 2.
    const expected = new Map<string, Set<string>>();
    const plan: { from: SeededAccount; reqs: SendRequest[] }[] = senders.map((from, i) => {
      const reqs = Array.from({ length: perSender }, (_, k) => {
        const to = receivers[(i + k) % RECEIVERS]!;
        const req = makeSend(from, 1, to, Buffer.from(`${from.username}/${k}`).toString('base64url'));
        for (const c of req.copies) {
          const key = `${c.user}/${c.device}`;
          if (!expected.has(key)) expected.set(key, new Set());
          expected.get(key)!.add(req.message_id);
        }
        return req;
      });
      return { from, reqs };
    });

    const connectAny = async (token: string, first: number, autoAck: boolean): Promise<StreamClient> => {
      for (let attempt = 0; ; attempt++) {
        if (stop || Date.now() - started > DEADLINE_MS) throw new Error('deadline');
        const s = servers[(first + attempt) % servers.length]!;
        try {
          return await StreamClient.connect(s.port, token, autoAck);
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };

    // Receivers: every device of the receivers and each sender's device 2, reconnecting forever.
    const logs = new Map<string, DeviceLog>();
    const receiving: { user: string; device: number; token: string }[] = [
      ...receivers.flatMap((a) => a.devices.map((d) => ({ user: a.username, device: d.device, token: d.token }))),
      ...senders.map((a) => ({ user: a.username, device: 2, token: a.devices[1]!.token })),
    ];
    const done = (key: string): boolean => {
      const log = logs.get(key)!;
      const want = expected.get(key) ?? new Set<string>();
      if (log.seen.size < want.size) return false;
      // every message has at least one of its envelopes acked and confirmed
      for (const [, ids] of log.byMessage) if (![...ids].some((x) => log.confirmed.has(x))) return false;
      return true;
    };
    const receiverLoops = receiving.map(async (r, i) => {
      const key = `${r.user}/${r.device}`;
      const log = new DeviceLog();
      logs.set(key, log);
      while (!stop && Date.now() - started < DEADLINE_MS) {
        const c = await connectAny(r.token, i, true);
        // Envelopes may arrive with the upgrade, before this line runs: take them first.
        c.received.forEach((e) => log.receive(e));
        c.onEnvelopes = (envs) => envs.forEach((e) => log.receive(e));
        // Acks sent on a lost connection may or may not have been applied: ack them again.
        const unconfirmed = [...log.byMessage.values()].flatMap((ids) => [...ids]).filter((id) => !log.confirmed.has(id));
        for (let k = 0; k < unconfirmed.length; k += 1000) c.ack(unconfirmed.slice(k, k + 1000));
        const watch = setInterval(() => {
          for (const id of c.confirmed) log.confirmed.add(id);
        }, 20);
        await c.until(() => c.closed || stop, DEADLINE_MS).catch(() => undefined);
        clearInterval(watch);
        for (const id of c.confirmed) log.confirmed.add(id);
        await c.close();
      }
    });

    // Senders: a window of sends each; what is not answered 200 is sent again, same id and bytes.
    const answered = new Map<string, string>(); // message_id -> JSON of the answer
    let answerMismatch = 0;
    const senderLoops = plan.map(async ({ from, reqs }, i) => {
      const left = new Map(reqs.map((r) => [r.message_id, r]));
      while (left.size > 0) {
        const c = await connectAny(from.devices[0]!.token, i, false);
        const queue = [...left.values()];
        await new Promise<void>((resolve) => {
          let inflight = 0;
          let next = 0;
          const pump = (): void => {
            if (c.closed || (next >= queue.length && inflight === 0)) return resolve();
            while (inflight < WINDOW && next < queue.length) {
              const req = queue[next++]!;
              inflight++;
              void c.send(req).then((res) => {
                inflight--;
                if (res.status === 200) {
                  const a = JSON.stringify(res.body);
                  const prev = answered.get(req.message_id);
                  if (prev !== undefined && prev !== a) answerMismatch++;
                  answered.set(req.message_id, a);
                  left.delete(req.message_id);
                }
                pump();
              });
            }
          };
          pump();
        });
        await c.close();
        if (left.size > 0) await new Promise((r) => setTimeout(r, 20));
      }
    });

    // The crash: once a third of the messages are answered, SIGKILL instance 0, restart it.
    let answeredAtKill = -1;
    const killer = (async () => {
      while (answered.size < MESSAGES / 3) await new Promise((r) => setTimeout(r, 10));
      answeredAtKill = answered.size;
      await servers[0]!.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      await servers[0]!.start();
    })();

    await Promise.all([...senderLoops, killer]);
    const allDone = async (): Promise<void> => {
      while (![...logs.keys()].every(done)) {
        if (Date.now() - started > DEADLINE_MS) {
          const lagging = [...logs.entries()]
            .filter(([k]) => !done(k))
            .map(([k, l]) => {
              const unconfirmed = [...l.byMessage.values()].filter((ids) => ![...ids].some((x) => l.confirmed.has(x))).length;
              return `${k}: seen ${l.seen.size}/${expected.get(k)?.size ?? 0}, unconfirmed ${unconfirmed}`;
            });
          const q = await sql.exec(
            `SELECT a.username || '/' || e.device_id AS k, count(*) AS n FROM delivery_envelopes e JOIN accounts a ON a.id = e.account_id GROUP BY 1`,
            [],
          );
          const queues = q.rows.map((r) => `${String(r.k)}=${String(r.n)}`).join(' ');
          throw new Error(`deadline: not every device got every message (answered ${answered.size}); ${lagging.slice(0, 8).join('; ')}; queues: ${queues}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await allDone();
    stop = true;
    await Promise.all(receiverLoops);

    // Every device got exactly its messages, each under one server id.
    let dupes = 0;
    for (const [key, want] of expected) {
      const log = logs.get(key)!;
      expect([...log.seen].sort()).toEqual([...want].sort());
      for (const [, ids] of log.byMessage) expect(ids.size).toBe(1);
      expect(log.violations).toEqual([]);
      dupes += log.duplicates;
    }
    expect(answeredAtKill).toBeGreaterThan(0);
    expect(answeredAtKill).toBeLessThan(MESSAGES * 0.6);
    expect(answered.size).toBe(MESSAGES);
    expect(answerMismatch).toBe(0);
    const q = await sql.exec('SELECT count(*) AS n FROM delivery_envelopes', []);
    expect(Number(q.rows[0]!.n)).toBe(0);
    const s = await sql.exec('SELECT count(*) AS n FROM delivery_sends', []);
    expect(Number(s.rows[0]!.n)).toBe(MESSAGES);
    console.log(
      `crash test: ${MESSAGES} messages, ${[...expected.values()].reduce((n, v) => n + v.size, 0)} envelopes to ${expected.size} devices ` +
        `in ${((Date.now() - started) / 1000).toFixed(1)} s; SIGKILL after ${answeredAtKill} answered; duplicates (all of unconfirmed acks): ${dupes}`,
    );
  }, DEADLINE_MS + 30_000);
});
