/**
 * The chaos run behind `npm run chaos` and its short version in the test suite: two server
 * instances on a throwaway PostgreSQL cluster, real SDK clients behind a misbehaving proxy, and a
 * fault per round (SIGKILL of an instance, a PostgreSQL crash-restart, all connections cut, the
 * network stalled) while users send. The checker reads the clients' own stores and what their
 * apps were handed: every accepted message must reach every target device's app exactly once,
 * and end delivered at its sender.
 */
import { GChatClient } from '../../src/client/client.js';
import { MemoryKeyValueStore } from '../../src/client/stores/memory.js';
import { nodeWebSocket } from '../../src/client/node.js';
import { nodeCryptoProvider } from '../../src/platform/node-crypto.js';
import { ChaosProxy } from './chaos-proxy.js';
import { PgCluster } from './pg-cluster.js';
import { ServerProcess } from './server-process.js';
import { mulberry32 } from './seeded-random.js';

export interface ChaosOptions {
  rounds: number;
  messagesPerRound: number;
  seed: number;
  /** How long to wait, after the last fault, for everything to be delivered. */
  settleMs: number;
  log?: (line: string) => void;
}

export interface ChaosFigures {
  sent: number;
  /** (message, target device) pairs that reached the device's app, counted once each. */
  delivered: number;
  expected: number;
  lost: number;
  /** Extra times a message reached an app it had already reached. */
  duplicated: number;
  /** Sent messages whose status at the sender is not final (delivered or read). */
  stuck: number;
  faults: { instanceKills: number; postgresRestarts: number; cutAll: number; stalls: number; refused: number; cut: number };
  seconds: number;
}

const PASSWORD = 'chaos run password';
const FAULTS = ['kill-instance', 'restart-postgres', 'cut-all', 'stall'] as const;


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosFigures> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const rand = mulberry32(o.seed);
  const faults = { instanceKills: 0, postgresRestarts: 0, cutAll: 0, stalls: 0, refused: 0, cut: 0 };
  const cluster = await PgCluster.start();
  const servers: ServerProcess[] = [];
  let proxy: ChaosProxy | null = null;
  const devices: { user: string; client: GChatClient }[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const s = await ServerProcess.onDatabase(cluster.url(), { LOG_LEVEL: 'error' });
      await s.start();
      servers.push(s);
    }
    proxy = new ChaosProxy({ targetPort: servers.map((s) => s.port), seed: o.seed, refuse: 0.03, cut: 0.2, cutWithinMs: 4000, maxDelayMs: 10 });
    await proxy.start();
    log(`chaos: PostgreSQL on :${cluster.port}, servers on :${servers.map((s) => s.port).join(', :')}, proxy on :${proxy.port}, seed ${o.seed}`);

    // Accounts are made with the proxy behaving; everything after goes through its chaos.
    proxy.enabled = false;
    const tag = (o.seed % 100000).toString(36);
    const users = ['ann', 'ben', 'cat'].map((u) => `${u}${tag}`);
    const options = () => ({ store: new MemoryKeyValueStore(), webSocket: nodeWebSocket, crypto: nodeCryptoProvider });
    for (const user of users) {
      const { client, recoveryCode } = await GChatClient.register(options(), { serverUrl: proxy.url, username: user, password: PASSWORD });
      const second = await GChatClient.addDevice(options(), { serverUrl: proxy.url, username: user, password: PASSWORD, secret: recoveryCode! });
      devices.push({ user, client }, { user, client: second });
    }
    const handed = new Map<string, Map<string, number>>(); // device -> message id -> times handed to the app
    for (const { user, client } of devices) {
      const seen = new Map<string, number>();
      handed.set(`${user}/${client.deviceId}`, seen);
      client.on('message', (m) => seen.set(m.messageId, (seen.get(m.messageId) ?? 0) + 1));
      await client.start();
    }
    proxy.enabled = true;

    const sent: { id: string; from: string; fromDevice: number; to: string }[] = [];
    const send = async (): Promise<void> => {
      const d = devices[Math.floor(rand() * devices.length)]!;
      const others = users.filter((u) => u !== d.user);
      const to = others[Math.floor(rand() * others.length)]!;
      sent.push({ id: await d.client.sendText(to, `chaos ${sent.length}`), from: d.user, fromDevice: d.client.deviceId, to });
    };
    const inject = async (round: number): Promise<void> => {
      const fault = FAULTS[round % FAULTS.length]!;
      log(`chaos: round ${round + 1}/${o.rounds}: ${fault}`);
      if (fault === 'kill-instance') {
        const victim = servers[faults.instanceKills % servers.length]!;
        faults.instanceKills++;
        await victim.kill();
        await sleep(1000);
        await victim.start();
      } else if (fault === 'restart-postgres') {
        faults.postgresRestarts++;
        await cluster.crashRestart(1000);
      } else if (fault === 'cut-all') {
        faults.cutAll++;
        proxy!.cutAll();
      } else {
        proxy!.stall(3000);
        faults.stalls++;
        await sleep(3000);
      }
    };
    for (let round = 0; round < o.rounds; round++) {
      // The fault lands while this round's messages are being written.
      const sending = (async () => {
        for (let i = 0; i < o.messagesPerRound; i++) {
          await send();
          await sleep(15);
        }
      })();
      await sleep(o.messagesPerRound * 7);
      await inject(round);
      await sending;
    }

    // Wait until every message is final at its sender (or the settle time runs out).
    const isFinal = async (m: (typeof sent)[number]): Promise<boolean> => {
      const d = devices.find((x) => x.user === m.from && x.client.deviceId === m.fromDevice)!;
      const rec = await d.client.message(m.to, m.id);
      return rec?.status === 'delivered' || rec?.status === 'read';
    };
    const deadline = Date.now() + o.settleMs;
    let pending = sent.length;
    while (Date.now() < deadline) {
      pending = 0;
      for (const m of sent) if (!(await isFinal(m))) pending++;
      if (pending === 0) break;
      await sleep(500);
    }
    // Calm network, then a moment for late duplicates to surface if there were any.
    proxy.enabled = false;
    await sleep(1500);

    let delivered = 0;
    let expected = 0;
    let lost = 0;
    let duplicated = 0;
    for (const m of sent) {
      const targets = devices.filter((d) => d.user === m.to || (d.user === m.from && d.client.deviceId !== m.fromDevice));
      for (const t of targets) {
        expected++;
        const times = handed.get(`${t.user}/${t.client.deviceId}`)!.get(m.id) ?? 0;
        // The device's store must hold it too: the app's view and the store agree.
        const stored = await t.client.message(t.user === m.to ? m.from : m.to, m.id);
        if (times === 0 || !stored) lost++;
        else delivered++;
        if (times > 1) duplicated += times - 1;
      }
    }
    let stuck = 0;
    for (const m of sent) if (!(await isFinal(m))) stuck++;
    faults.refused = proxy.stats.refused;
    faults.cut = proxy.stats.cut;
    return { sent: sent.length, delivered, expected, lost, duplicated, stuck, faults, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    await Promise.all(devices.map((d) => d.client.stop().catch(() => undefined)));
    await proxy?.stop();
    for (const s of servers) await s.close().catch(() => undefined);
    await cluster.stop();
  }
}

export function formatFigures(f: ChaosFigures): string {
  const faults = f.faults;
  return [
    `sent ${f.sent}, delivered ${f.delivered} of ${f.expected} (message, device) pairs, lost ${f.lost}, duplicated to the app ${f.duplicated}, not final ${f.stuck}`,
    `faults injected: ${faults.instanceKills} instance SIGKILLs, ${faults.postgresRestarts} PostgreSQL crash-restarts, ${faults.cutAll} cuts of every connection, ${faults.stalls} network stalls, ${faults.refused} connections refused, ${faults.cut} connections cut at random; ${f.seconds} s`,
  ].join('\n');
}
