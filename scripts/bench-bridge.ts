/**
 * npm run bench:bridge — latency through the Matrix bridge over a real Synapse, beside Matrix
 * user-to-user through the same Synapse, in the same run. 200 messages each: Matrix -> GChat,
 * GChat -> Matrix, and Matrix -> Matrix (the bridge's own cost is the difference). Unencrypted
 * rooms unless BENCH_ENCRYPTED=1. Needs Synapse (SYNAPSE_PYTHON or .venv-synapse) and PostgreSQL
 * or PGlite for the GChat server.
 */
import { gchatUsernameFor } from '../bridge/src/ids.js';
import { BridgeProcess, PlainMatrixUser } from '../test/helpers/bridge.js';
import { registered, waitFor } from '../test/helpers/clients.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { SERVER_NAME, Synapse, synapsePython } from '../test/helpers/synapse.js';

const COUNT = Number(process.env.BENCH_MESSAGES ?? 200);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms  p99 ${pct(xs, 99).toFixed(1)} ms  (n=${xs.length})`;

if (!synapsePython()) {
  console.error('bench:bridge needs Synapse: set SYNAPSE_PYTHON or run .ci/run to make .venv-synapse');
  process.exit(2);
}

const gchat = await ServerProcess.create({ prefix: 'bench_bridge' });
const bridge = await BridgeProcess.prepare({ gchatUrl: gchat.url, allowed: [`@alice:${SERVER_NAME}`], encryption: false });
const synapse = await Synapse.start([bridge.registrationFile]);
await bridge.start(synapse.url);
const a = await synapse.register('alice');
const c = await synapse.register('carol');
const alice = new PlainMatrixUser(synapse.url, a.userId, a.accessToken);
const carol = new PlainMatrixUser(synapse.url, c.userId, c.accessToken);
const bob = await registered(gchat.url, 'bob');
await bob.client.start();
const ghost = `@gchat_bob:${SERVER_NAME}`;
try {
  // Matrix -> Matrix through Synapse alone.
  const { room_id: mm } = await alice.call<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { invite: [carol.userId], is_direct: true, preset: 'trusted_private_chat' });
  await waitFor('carol invited', () => carol.invites.includes(mm));
  await carol.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(mm)}`, {});
  const matrixOnly: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    const t0 = performance.now();
    const body = `mm ${i}`;
    await alice.send(mm, { msgtype: 'm.text', body });
    await waitFor('carol gets it', () => carol.messages(mm).some((e) => e.content.body === body), 60_000);
    matrixOnly.push(performance.now() - t0);
  }

  // The portal.
  const { room_id: room } = await alice.call<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { invite: [ghost], is_direct: true, preset: 'trusted_private_chat' });
  await waitFor('ghost joined', async () => (await alice.call<{ joined: Record<string, unknown> }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/joined_members`)).joined[ghost] !== undefined);
  const toGChat: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    const t0 = performance.now();
    const body = `m2g ${i}`;
    await alice.send(room, { msgtype: 'm.text', body });
    await waitFor('bob gets it', () => bob.seen.messages.some((m) => m.body === body), 60_000);
    toGChat.push(performance.now() - t0);
  }
  const aliceOnGChat = gchatUsernameFor(alice.userId);
  const toMatrix: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    const t0 = performance.now();
    const body = `g2m ${i}`;
    await bob.client.sendText(aliceOnGChat, body);
    await waitFor('alice gets it', () => alice.messages(room, ghost).some((e) => e.content.body === body), 60_000);
    toMatrix.push(performance.now() - t0);
  }
  console.log(`Matrix -> Matrix (Synapse alone):  ${fmt(matrixOnly)}`);
  console.log(`Matrix -> GChat (bridge):          ${fmt(toGChat)}`);
  console.log(`GChat -> Matrix (bridge):          ${fmt(toMatrix)}`);
  console.log(`added by the bridge, p50: Matrix->GChat ${(pct(toGChat, 50) - pct(matrixOnly, 50)).toFixed(1)} ms, GChat->Matrix ${(pct(toMatrix, 50) - pct(matrixOnly, 50)).toFixed(1)} ms`);
  console.log('(latency is measured at the receiving test client, which polls /sync with a long-poll and the SDK events; same method for all three)');
} finally {
  await alice.stop();
  await carol.stop();
  await bob.client.stop();
  await bridge.close();
  await synapse.stop();
  await gchat.close();
}
