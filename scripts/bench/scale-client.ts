/**
 * The client's growth (issue 13, item 4): the SDK's file store on disk and the `gchat` CLI's
 * start-up after many messages received and sent, beside the same at a small size, before and
 * after collection (src/client/collect.ts). A benchmark: it prints figures and asserts nothing.
 *
 *   1. A GChat server as its own process (embedded PGlite in a temporary directory, or
 *      BENCH_PG_URL's PostgreSQL), and two SDK clients with the CLI's file store in this process.
 *   2. Real traffic: BENCH_CLIENT_REAL texts each way (default 200); the receiver marks each seen
 *      and read, as `gchat chat` does, so receipts flow too. Prints the rate and what 100k real
 *      messages would take at it.
 *   3. For each size of BENCH_CLIENT_SIZES (default 1000,100000 messages, half received, half
 *      sent): a copy of the receiver's store, filled up to that size through the store API with
 *      records made from the real ones (same keys, same shapes, the real ratio of dedup records to
 *      messages), then: bytes on disk, `gchat contacts` (start, open the store, answer, exit) and
 *      `gchat listen` until it is online (median of BENCH_CLIENT_RUNS, default 3); then the
 *      collection the SDK runs once the lifetimes have passed, and the same figures again.
 *
 * Runs on its own (`node --import tsx scripts/bench/scale-client.ts`) and under bench-scale.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { freePort } from '../../test/helpers/server-process.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GChatClient } from '../../src/client/client.js';
import { collectExpired, keepFor, knownRetention } from '../../src/client/collect.js';
import { nodeClientOptions } from '../../src/client/node.js';
import { keys, type MessageRecord } from '../../src/client/state.js';
import type { Json, WriteOp } from '../../src/client/storage.js';
import { FileKeyValueStore } from '../../src/client/stores/file.js';
import { newMessageId } from '../../src/protocol/content.js';
import { systemRandom } from '../../src/protocol/primitives.js';
import { loadNow, printMachine } from './machine.js';

const root = join(import.meta.dirname, '../..');
const REAL = Number(process.env.BENCH_CLIENT_REAL ?? 200);
const SIZES = (process.env.BENCH_CLIENT_SIZES ?? '1000,100000').split(',').map(Number);
const RUNS = Number(process.env.BENCH_CLIENT_RUNS ?? 3);
const PASSWORD = 'bench password 123';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(2)} MB`;


async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The server in its own process, so it does not share an event loop with the clients. */
async function startServer(work: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    GCHAT_RATE_REGISTER_IP: '1000/60',
    GCHAT_RATE_BUNDLES_IP: '100000/60',
    GCHAT_RATE_BUNDLES_ACCOUNT: '100000/60',
    GCHAT_RATE_LOOKUPS_IP: '100000/60',
  };
  if (process.env.BENCH_PG_URL) env.DATABASE_URL = process.env.BENCH_PG_URL;
  else env.GCHAT_DATA_DIR = join(work, 'server');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/server/main.ts')], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('the server', () => fetch(`${url}/ready`).then((r) => r.ok, () => false));
  return { url, child };
}

/** Real messages both ways between two SDK clients; returns the receiver's store directory and the rate. */
async function realTraffic(url: string, work: string): Promise<{ bobDir: string; perSecond: number; alice: string }> {
  const tag = Date.now() % 1_000_000;
  const [aliceDir, bobDir] = [join(work, 'alice'), join(work, 'bob')];
  const ao = nodeClientOptions(aliceDir);
  const bo = nodeClientOptions(bobDir);
  const alice = (await GChatClient.register(ao, { serverUrl: url, username: `alice${tag}`, password: PASSWORD })).client;
  const bob = (await GChatClient.register(bo, { serverUrl: url, username: `bob${tag}`, password: PASSWORD })).client;
  let atBob = 0;
  let atAlice = 0;
  // As `gchat chat` does: each message shown is marked seen and read.
  bob.on('message', (m) => {
    atBob++;
    void bob.markSeen([m.messageId]).then(() => bob.markRead(m.conversation, [m.messageId]));
  });
  alice.on('message', (m) => {
    atAlice++;
    void alice.markSeen([m.messageId]).then(() => alice.markRead(m.conversation, [m.messageId]));
  });
  await alice.start();
  await bob.start();
  const t0 = performance.now();
  for (let i = 0; i < REAL; i++) {
    await alice.sendText(bob.userId, `message ${i} from alice, about as long as a chat line is`);
    await bob.sendText(alice.userId, `reply ${i} from bob, about as long as a chat line is`);
  }
  await waitUntil('every message arrives', () => atBob === REAL && atAlice === REAL);
  const seconds = (performance.now() - t0) / 1000;
  // Let the receipts settle, so the stores hold what a conversation leaves behind.
  await waitUntil('outboxes empty', async () => (await alice.pendingCount()) === 0 && (await bob.pendingCount()) === 0);
  await new Promise((r) => setTimeout(r, 1000));
  await alice.stop();
  await bob.stop();
  await ao.store.close();
  await bo.store.close();
  return { bobDir, perSecond: (2 * REAL) / seconds, alice: alice.userId };
}

/** Fills a copy of the receiver's store to `size` messages from its real records. */
async function fill(from: string, dir: string, size: number): Promise<{ records: number }> {
  cpSync(from, dir, { recursive: true });
  rmSync(join(dir, 'lock'), { force: true });
  const kv = FileKeyValueStore.open(dir);
  const templates = (await kv.list('messages/')).map(([, v]) => v as unknown as MessageRecord);
  const seen = (await kv.list(keys.seenPrefix)).length;
  const incoming = templates.filter((m) => !m.outgoing).length;
  // Receipts leave dedup records too: as many per message as the real traffic left.
  const extraSeenPerMessage = (seen - incoming) / templates.length;
  const have = templates.length;
  let ops: WriteOp[] = [];
  let records = 0;
  const flush = async (): Promise<void> => {
    if (!ops.length) return;
    records += ops.length;
    await kv.write(ops);
    ops = [];
  };
  const at = Date.now();
  let extra = 0;
  for (let i = have; i < size; i++) {
    const t = templates[i % have]!;
    const ts = t.ts + i;
    const id = newMessageId(ts, systemRandom);
    const record: MessageRecord = { ...t, messageId: id, ts, content: t.content.replace(t.messageId, id), serverTs: t.serverTs === null ? null : t.serverTs + i };
    ops.push([keys.message(t.conversation, id), record as unknown as Json]);
    if (t.outgoing) ops.push([keys.sentIndex(id), { conversation: t.conversation }]);
    else ops.push([keys.seen(t.sender, id), { at }]);
    for (extra += extraSeenPerMessage; extra >= 1; extra--) ops.push([keys.seen(t.conversation, newMessageId(ts, systemRandom)), { at }]);
    if (ops.length >= 2000) await flush();
  }
  await flush();
  await kv.close();
  return { records };
}

function bytesOnDisk(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

function cli(dir: string, url: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), '--data', dir, '--server', url, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `gchat contacts`: from spawn to exit. */
async function contactsMs(dir: string, url: string): Promise<number> {
  const t0 = performance.now();
  const p = cli(dir, url, ['contacts']);
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`gchat contacts exited ${code}`);
  return performance.now() - t0;
}

/** `gchat listen`: from spawn until it says it is online. */
async function listenMs(dir: string, url: string): Promise<number> {
  const t0 = performance.now();
  const p = cli(dir, url, ['listen']);
  let err = '';
  let online = 0;
  p.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (!online && err.includes('(online)')) online = performance.now() - t0;
  });
  await waitUntil('gchat listen online', () => online > 0 || p.exitCode !== null);
  p.kill('SIGINT');
  if (p.exitCode === null) await new Promise((r) => p.once('exit', r));
  if (!online) throw new Error(`gchat listen exited: ${err}`);
  return online;
}

interface Figures {
  bytes: number;
  contacts: number;
  listen: number;
}

async function measure(dir: string, url: string): Promise<Figures> {
  const contacts: number[] = [];
  const listen: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    contacts.push(await contactsMs(dir, url));
    listen.push(await listenMs(dir, url));
  }
  return { bytes: bytesOnDisk(dir), contacts: median(contacts), listen: median(listen) };
}

/** The collection the SDK runs, at a time past every lifetime (the messages themselves stay). */
async function collect(dir: string): Promise<{ seen: number; ms: number }> {
  const kv = FileKeyValueStore.open(dir);
  const later = Date.now() + keepFor(await knownRetention(kv)) + 60_000;
  const t0 = performance.now();
  const r = await collectExpired(kv, later);
  const ms = performance.now() - t0;
  await kv.close();
  return { seen: r.seen, ms };
}

async function main(): Promise<void> {
  printMachine();
  const work = mkdtempSync(join(tmpdir(), 'gchat-scale-client-'));
  const { url, child } = await startServer(work);
  try {
    console.log(`server: its own process, ${process.env.BENCH_PG_URL ? 'PostgreSQL' : 'embedded PGlite'}; clients: the SDK with the CLI's file store, in this process`);
    const real = await realTraffic(url, work);
    console.log(
      `real traffic: ${2 * REAL} texts (${REAL} each way, receipts and read marks included) at ${real.perSecond.toFixed(0)} texts/s: ` +
        `100k real messages would take ~${(100_000 / real.perSecond / 60).toFixed(1)} min, so the sizes below are filled through the store API ` +
        `with records made from these (same keys and shapes, the same ratio of dedup records)`,
    );
    const rows: { size: number; before: Figures; after: Figures; seen: number; collectMs: number; records: number }[] = [];
    for (const size of SIZES) {
      const dir = join(work, `bob-${size}`);
      const { records } = await fill(real.bobDir, dir, size);
      const before = await measure(dir, url);
      const c = await collect(dir);
      const after = await measure(dir, url);
      rows.push({ size, before, after, seen: c.seen, collectMs: c.ms, records });
      console.log(`  filled ${size} messages (${records} records written), ${loadNow()}`);
    }
    const base = rows[0]!;
    const ratio = (x: number, b: number): string => `${(x / b).toFixed(2)}x`;
    console.log('');
    console.log('messages | when             | store on disk       | gchat contacts     | gchat listen to online | collection');
    for (const r of rows) {
      for (const [when, f, b] of [
        ['before collection', r.before, base.before],
        ['after collection', r.after, base.after],
      ] as const) {
        console.log(
          `${String(r.size).padStart(8)} | ${when.padEnd(16)} | ${mb(f.bytes).padStart(9)} (${ratio(f.bytes, b.bytes).padStart(7)}) | ${f.contacts.toFixed(0).padStart(5)} ms (${ratio(f.contacts, b.contacts).padStart(6)}) | ${f.listen.toFixed(0).padStart(5)} ms (${ratio(f.listen, b.listen).padStart(6)})    | ` +
            (when === 'after collection' ? `${r.seen} dedup records in ${r.collectMs.toFixed(0)} ms` : ''),
        );
      }
    }
    console.log(`(ratios: against ${base.size} messages at the same stage; medians of ${RUNS} runs; ${loadNow()})`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
