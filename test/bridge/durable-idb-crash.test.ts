/**
 * Crash loop with the real crypto: a child process runs Alice's and Bob's crypto-wasm OlmMachines
 * in one durable IndexedDB (fixtures/olm-crash-child.ts), exchanging Olm and Megolm through a
 * homeserver in this process; we SIGKILL it at random moments and restart it, then check in a
 * fresh process that every message Bob acknowledged still decrypts, and that neither device's
 * identity keys ever changed. CRASH_SEED=n replays a run.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ALICE, BOB, bodyOf, type ChildMessage } from './fixtures/olm-crash-protocol.js';
import { MiniHomeserver } from './fixtures/mini-homeserver.js';
import { mulberry32 } from '../helpers/seeded-random.js';

const TOTAL = 30;
const KILLS = 6;
const root = mkdtempSync(join(tmpdir(), 'gchat-olm-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));


interface Life {
  killed: boolean;
  code: number | null;
  stderr: string;
  verified?: { i: number; body: string | null; error?: string }[];
}

it('everything Bob acknowledged still decrypts after SIGKILLs at random moments, and identities never change', async () => {
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
  const rand = mulberry32(seed);
  const dir = join(root, 'store');
  const hs = new MiniHomeserver();
  const identities = new Map<string, Set<string>>();
  const problems: string[] = [];
  const script = join(import.meta.dirname, 'fixtures', 'olm-crash-child.ts');

  const live = (mode: 'run' | 'verify', kill?: { afterReadyMs?: number; atAcked?: number }) =>
    new Promise<Life>((resolve) => {
      const child = fork(script, [dir, mode, String(TOTAL)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      let stderr = '';
      let verified: Life['verified'];
      let killed = false;
      const killNow = () => {
        if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL');
      };
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
      child.on('message', (m: ChildMessage) => {
        if ('rpc' in m) {
          let result: unknown;
          try {
            result = hs.handle(m.op, m.from, m.body as Record<string, unknown>);
          } catch (e) {
            problems.push(`${m.op}: ${(e as Error).message}`);
            result = { errcode: 'M_UNKNOWN' };
          }
          // Killed right after the homeserver took the ack: the child never hears the answer.
          if (kill?.atAcked !== undefined && hs.acked >= kill.atAcked) return killNow();
          if (child.connected) child.send({ rpc: m.rpc, result }, () => undefined);
        } else if ('identity' in m) {
          const ids = identities.get(m.identity.user) ?? new Set<string>();
          ids.add(`${m.identity.curve25519}/${m.identity.ed25519}`);
          identities.set(m.identity.user, ids);
        } else if ('ready' in m) {
          if (kill?.afterReadyMs !== undefined) setTimeout(killNow, kill.afterReadyMs);
        } else if ('verified' in m) {
          verified = m.verified;
        }
      });
      child.on('exit', (code) => resolve({ killed, code, stderr, verified }));
    });

  let kills = 0;
  const story: string[] = [];
  for (let lives = 0; hs.acked < TOTAL; lives++) {
    expect(lives, `no progress: ${story.join(', ')}`).toBeLessThan(KILLS + 10);
    // Mostly at a random message of what is left (judged by progress, not time, so a fast machine
    // cannot finish before the kills); now and then as soon as the machines are open.
    const span = Math.max(1, Math.floor((TOTAL - hs.acked - 1) / Math.max(1, KILLS - kills)));
    const kill = kills >= KILLS ? undefined : rand() < 0.25 ? { afterReadyMs: rand() * 50 } : { atAcked: hs.acked + 1 + Math.floor(rand() * span) };
    const before = hs.acked;
    const life = await live('run', kill);
    story.push(`${life.killed ? 'killed' : `exit ${life.code}`} at ${hs.acked} acked (+${hs.acked - before})`);
    if (life.killed) kills++;
    else expect(life.code, life.stderr).toBe(0);
  }
  console.log(`crash loop (CRASH_SEED=${seed}): ${story.join('; ')}; ${hs.claims} one-time keys claimed, ${hs.toDeviceSent} to-device messages`);
  expect(problems).toEqual([]);
  expect(kills).toBe(KILLS);

  const check = await live('verify');
  expect(check.code, check.stderr).toBe(0);
  expect(check.verified).toEqual(Array.from({ length: TOTAL }, (_, i) => ({ i, body: bodyOf(i) })));
  expect(identities.get(BOB)?.size).toBe(1);
  expect(identities.get(ALICE)?.size).toBe(1);
});
