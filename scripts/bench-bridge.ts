/**
 * npm run bench:bridge — latency through the Matrix bridge over a real Synapse, beside Matrix
 * user-to-user through the same Synapse alone, in the same run: Matrix -> GChat, GChat -> Matrix,
 * and Matrix -> Matrix (the baseline; the bridge's own cost is the difference). Encrypted portals
 * and an encrypted Matrix DM (as the bridge makes them by default); unencrypted too unless
 * BENCH_PLAIN=0. The kinds take turns within each round, so load from other work on the machine
 * falls on all of them alike.
 *
 * Processes: Synapse, the GChat server and the bridge each run as their own process; this one is
 * the load generator (matrix-js-sdk users with Rust crypto, GChat SDK users). A latency is the
 * send call to the moment the other user's client has the (decrypted) message, taken in the event
 * handler (no polling). The bridge's per-stage timestamps (GCHAT_BRIDGE_TRACE) show where its time
 * goes. Needs Synapse (SYNAPSE_PYTHON or .venv-synapse) and PostgreSQL or PGlite for the server.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { gchatUsernameFor } from '../bridge/src/ids.js';
import type { GChatClient } from '../src/client/client.js';
import { BridgeProcess } from '../test/helpers/bridge.js';
import { registered, waitFor } from '../test/helpers/clients.js';
import { JsMatrixUser } from '../test/helpers/matrix-js.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { SERVER_NAME, Synapse, synapsePython } from '../test/helpers/synapse.js';
import { loadNow, printMachine } from './bench/machine.js';

printMachine();
const COUNT = Number(process.env.BENCH_MESSAGES ?? 200);
const WARMUP = 5;
const PLAIN = process.env.BENCH_PLAIN !== '0';
if (!synapsePython()) {
  console.error('bench:bridge needs Synapse: set SYNAPSE_PYTHON or run .ci/run to make .venv-synapse');
  process.exit(2);
}
// BENCH_BRIDGE_DB=postgres: the bridge on a fresh PostgreSQL database (at DATABASE_URL's server) instead of its embedded PGlite.
const PG_ADMIN = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DB_NAME = process.env.BENCH_BRIDGE_DB === 'postgres' ? `bench_bridge_${process.pid}` : null;
async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}
if (DB_NAME) await admin(`CREATE DATABASE ${DB_NAME}`);
const DB_URL = DB_NAME ? Object.assign(new URL(PG_ADMIN), { pathname: `/${DB_NAME}` }).toString() : undefined;
console.log(`bridge database: ${DB_URL ? 'PostgreSQL' : 'embedded PGlite'}`);


function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1).padStart(6)} ms  p99 ${pct(xs, 99).toFixed(1).padStart(6)} ms  (n=${xs.length})`;

const traceDir = mkdtempSync(join(tmpdir(), 'bench-bridge-'));
const traceFile = join(traceDir, 'trace.jsonl');
process.env.GCHAT_BRIDGE_TRACE = traceFile; // inherited by the bridge process

const gchat = await ServerProcess.create({ prefix: 'bench_bridge' });
// The bridge's default config (no SUCCESS status event per message); BENCH_STATUS_EVENTS=1 turns them on.
const STATUS_EVENTS = process.env.BENCH_STATUS_EVENTS === '1';
console.log(`bridge: message_status_events ${STATUS_EVENTS}`);
const bridge = await BridgeProcess.prepare({ gchatUrl: gchat.url, allowed: [`@alice:${SERVER_NAME}`], encryption: true, messageStatusEvents: STATUS_EVENTS, ...(DB_URL ? { databaseUrl: DB_URL } : {}) });
const synapse = await Synapse.start([bridge.registrationFile], process.env.BENCH_SYNAPSE_ACCESS_LOG ? { accessLog: process.env.BENCH_SYNAPSE_ACCESS_LOG } : {});
await bridge.start(synapse.url);
const alice = await JsMatrixUser.start(synapse.url, await synapse.register('alice'));
const carol = await JsMatrixUser.start(synapse.url, await synapse.register('carol'));
const bob = await registered(gchat.url, 'bob');
const dave = await registered(gchat.url, 'dave');
await bob.client.start();
await dave.client.start();
const aliceOnGChat = gchatUsernameFor(alice.userId);
const ENCRYPTION = [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }];

/** Resolves with the time (performance.now()) the user's client has the message `body`, from now on. */
function matrixArrival(user: JsMatrixUser, body: string): Promise<number> {
  return new Promise((resolve) => {
    const l = (e: { content: Record<string, unknown>; receivedAt: number }) => {
      if (e.content.body !== body) return;
      user.listeners.delete(l);
      resolve(e.receivedAt);
    };
    user.listeners.add(l);
  });
}
function gchatArrival(client: GChatClient, body: string): Promise<number> {
  return new Promise((resolve) => {
    const off = client.on('message', (m) => {
      if (m.body !== body) return;
      const at = performance.now();
      off();
      resolve(at);
    });
  });
}
const within = <T>(p: Promise<T>, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), 60_000))]);

async function dm(encrypted: boolean): Promise<string> {
  const { room_id } = await alice.client.createRoom({ invite: [carol.userId], is_direct: true, preset: 'trusted_private_chat' as never, ...(encrypted ? { initial_state: ENCRYPTION } : {}) });
  await waitFor('carol invited and joined', async () => (await alice.client.getJoinedRoomMembers(room_id)).joined[carol.userId] !== undefined, 60_000);
  return room_id;
}
async function portal(ghostOf: string, encrypted: boolean): Promise<string> {
  const ghost = `@gchat_${ghostOf}:${SERVER_NAME}`;
  const { room_id } = await alice.client.createRoom({ invite: [ghost], is_direct: true, preset: 'trusted_private_chat' as never, ...(encrypted ? { initial_state: ENCRYPTION } : {}) });
  await waitFor('the ghost to join', async () => (await alice.client.getJoinedRoomMembers(room_id)).joined[ghost] !== undefined, 60_000);
  // As a person's client would: the other side's devices are known before the first message.
  if (encrypted) await waitFor("alice's client to see the ghost's device", async () => ((await alice.client.getCrypto()!.getUserDeviceInfo([ghost], true)).get(ghost)?.size ?? 0) > 0, 60_000);
  return room_id;
}

type Kind = { name: string; run: (i: number) => Promise<{ ms: number; id: string; t0: number; at: number }> };
/** Alice sends in `room`; `arrival` resolves when the other side (Carol in Matrix, or a GChat client) has it. */
function fromAlice(name: string, room: string, arrival: (body: string) => Promise<number>): Kind {
  return {
    name,
    async run(i) {
      const body = `${name} ${i}`;
      const arrived = arrival(body);
      const t0 = performance.now();
      const { event_id } = await alice.client.sendEvent(room, 'm.room.message' as never, { msgtype: 'm.text', body } as never);
      const at = await within(arrived, body);
      return { ms: at - t0, id: event_id, t0, at };
    },
  };
}
const matrixToMatrix = (name: string, room: string): Kind => fromAlice(name, room, (body) => matrixArrival(carol, body));
const matrixToGChat = (name: string, room: string, to: GChatClient): Kind => fromAlice(name, room, (body) => gchatArrival(to, body));
function gchatToMatrix(name: string, from: GChatClient): Kind {
  return {
    name,
    async run(i) {
      const body = `${name} ${i}`;
      const arrived = matrixArrival(alice, body);
      const t0 = performance.now();
      const id = await from.sendText(aliceOnGChat, body);
      const at = await within(arrived, body);
      return { ms: at - t0, id, t0, at };
    },
  };
}

try {
  const kinds: Kind[] = [
    matrixToMatrix('Matrix -> Matrix, encrypted (Synapse alone)', await dm(true)),
    matrixToGChat('Matrix -> GChat, encrypted portal', await portal('bob', true), bob.client),
    gchatToMatrix('GChat -> Matrix, encrypted portal', bob.client),
  ];
  if (PLAIN) {
    kinds.push(
      matrixToMatrix('Matrix -> Matrix, unencrypted (Synapse alone)', await dm(false)),
      matrixToGChat('Matrix -> GChat, unencrypted portal', await portal('dave', false), dave.client),
      gchatToMatrix('GChat -> Matrix, unencrypted portal', dave.client),
    );
  }
  const results = new Map<Kind, { ms: number; id: string; t0: number; at: number }[]>(kinds.map((k) => [k, []]));
  // Steady state: for 30 s after its start the bridge looks, before each Matrix message, for ones the homeserver never sent (bridge/src/matrix/gaps.ts).
  await waitFor('the bridge to end its check for missed events', async () => ((await (await fetch(`${bridge.url}/health`)).json()) as { checking_for_missed_events?: boolean }).checking_for_missed_events === false, 60_000);
  for (let i = -WARMUP; i < COUNT; i++) {
    for (const k of kinds) {
      const r = await k.run(i);
      if (i >= 0) results.get(k)!.push(r);
    }
  }
  const ms = (k: Kind) => results.get(k)!.map((r) => r.ms);
  console.log(`${COUNT} messages of each kind (after ${WARMUP} warm-up), send call -> the other client has it decrypted:`);
  for (const k of kinds) console.log(`  ${k.name.padEnd(48)} ${fmt(ms(k))}`);
  for (let g = 0; g < kinds.length; g += 3) {
    const [base, m2g, g2m] = kinds.slice(g, g + 3) as [Kind, Kind, Kind];
    const added = (k: Kind) => (pct(ms(k), 50) - pct(ms(base), 50)).toFixed(1);
    console.log(`  added by the bridge, p50 (${g === 0 ? 'encrypted' : 'unencrypted'}): Matrix->GChat ${added(m2g)} ms, GChat->Matrix ${added(g2m)} ms (goal <= 20)`);
  }
  await new Promise((r) => setTimeout(r, 500)); // the bridge's trace lines land
  printHops(kinds, results);
  console.log(loadNow());
} finally {
  alice.stop();
  carol.stop();
  await bob.client.stop();
  await dave.client.stop();
  await bridge.close();
  await synapse.stop();
  await gchat.close();
  if (!process.env.BENCH_KEEP_TRACE) rmSync(traceDir, { recursive: true, force: true });
  else console.log(traceFile);
  if (DB_NAME) await admin(`DROP DATABASE IF EXISTS ${DB_NAME}`);
}

/** Per hop, the median time between consecutive stages (wall clock, all processes on this host). */
function printHops(ks: Kind[], res: Map<Kind, { id: string; t0: number; at: number }[]>): void {
  const stages = new Map<string, Record<string, number>>();
  const byMid = new Map<string, string>();
  for (const line of readFileSync(traceFile, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { id: string; stage: string; t: number; origin?: number; mid?: string; eid?: string };
    const s = stages.get(r.id) ?? {};
    s[r.stage] ??= r.t;
    if (r.origin) s.origin = r.origin;
    if (r.mid) byMid.set(r.mid, r.id);
    stages.set(r.id, s);
  }
  for (const [mid, eid] of byMid) if (stages.get(mid)?.server_ack) stages.get(eid)!.server_ack = stages.get(mid)!.server_ack!;
  const m2g = [['send', 'send call'], ['origin', 'Synapse made the event (origin_server_ts)'], ['txn_in', 'transaction arrived at the bridge'], ['txn_start', 'its turn (previous transaction done)'], ['keys_fed', "to-device and key counts fed to the ghosts' OlmMachines"], ['decrypted', 'decrypted'], ['mapped', 'portal, client, message map'], ['queued', 'durably in the GChat outbox'], ['server_ack', 'GChat server acknowledged'], ['arrived', 'the GChat user has it']];
  const g2m = [['send', 'send call'], ['gchat_in', "bridge's GChat client has it"], ['portal_ready', 'portal and relations looked up'], ['members', 'room members fetched'], ['encrypted', 'encrypted (Megolm)'], ['matrix_sent', 'Synapse accepted the ghost event'], ['arrived', 'the Matrix user has it decrypted']];
  const aside = [['txn_done', 'transaction answered (200)']];
  for (const k of ks) {
    const toGChat = k.name.startsWith('Matrix -> GChat');
    if (!toGChat && !k.name.startsWith('GChat -> Matrix')) continue;
    const rows = res.get(k)!.map((r) => ({ ...stages.get(r.id), send: performance.timeOrigin + r.t0, arrived: performance.timeOrigin + r.at }) as Record<string, number>);
    const path = toGChat ? m2g : g2m;
    console.log(`where the time goes, ${k.name} (p50 of each hop, ms from the stage before):`);
    let prev = path[0]![0]!;
    for (const [stage, label] of path.slice(1)) {
      const d = rows.map((r) => r[stage!]! - r[prev]!).filter((x) => Number.isFinite(x));
      if (d.length) console.log(`  ${label!.padEnd(46)} ${pct(d, 50).toFixed(1).padStart(7)}   (p90 ${pct(d, 90).toFixed(1)})`);
      if (d.length) prev = stage!;
    }
    if (toGChat)
      for (const [stage, label] of aside) {
        const d = rows.map((r) => r[stage!]! - r.txn_in!).filter((x) => Number.isFinite(x));
        if (d.length) console.log(`  (${label} after it arrived ${pct(d, 50).toFixed(1)}, p90 ${pct(d, 90).toFixed(1)})`);
      }
  }
}
