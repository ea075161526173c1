/**
 * `npm run bench:crypto [-- --provider=node|webcrypto|noble] [--seconds=N]`: GChat's protocol
 * against libsignal doing the same work, each storing its session state after every operation and
 * loading it before the next. Prints, per line, the GChat figure, the libsignal figure and their
 * ratio. A report, not a test: it exits 0 whatever the figures (non-zero only if a side breaks).
 *
 * libsignal (@signalapp/libsignal-client, AGPL-3.0) is a devDependency used here only.
 */
import { nodeCryptoProvider } from '../src/platform/node-crypto.js';
import { type CryptoProvider, nobleProvider, webCryptoProvider } from '../src/protocol/primitives.js';
import { gchatArgon2id, gchatSide } from './bench/gchat-adapter.js';
import { PIN_HASH_PARAMS, libsignalPinHash, libsignalSide } from './bench/libsignal-side.js';
import type { BenchSide, Conversation } from './bench/types.js';

const MESSAGE_BYTES = 100;
const BURST = 100;
/** The goal for the ratchet lines: GChat at least this share of libsignal's rate. */
const GOAL = 0.5;
/** Interleaved slices per figure. */
const SLICES = 4;

function arg(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

function pickProvider(name: string): CryptoProvider {
  if (name === 'node') return nodeCryptoProvider;
  if (name === 'webcrypto') return webCryptoProvider();
  if (name === 'noble') return nobleProvider;
  throw new Error(`unknown provider '${name}' (node, webcrypto, noble)`);
}

/** A 100-byte message body (UTF-8 JSON, as GChat content is). */
function message(i: number): Uint8Array {
  const head = `{"v":1,"kind":"text","id":"${String(i).padStart(8, '0')}","body":"`;
  const tail = '"}';
  return new TextEncoder().encode(head + 'x'.repeat(MESSAGE_BYTES - head.length - tail.length) + tail);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Runs `round` (which returns how many operations it did) for `ms`; returns operations per second. */
async function rate(round: () => Promise<number>, ms: number): Promise<number> {
  let ops = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    ops += await round();
    t = performance.now();
  }
  return (ops * 1000) / (t - t0);
}

/**
 * Both sides on the same work, in interleaved slices (G, L, G, L, ...) after a warm-up, so a load
 * change on the machine hits both alike; each side's figure is its best slice.
 */
async function compare(g: (() => Promise<number>) | null, l: () => Promise<number>, ms: number): Promise<[number | null, number]> {
  const slices = SLICES;
  const warm = Math.min(400, ms * 0.1);
  if (g) await rate(g, warm);
  await rate(l, warm);
  let gBest = 0;
  let lBest = 0;
  for (let i = 0; i < slices; i++) {
    if (g) gBest = Math.max(gBest, await rate(g, ms / slices));
    lBest = Math.max(lBest, await rate(l, ms / slices));
  }
  return [g ? gBest : null, lBest];
}

async function burst(conv: Conversation): Promise<number> {
  const sent: Uint8Array[] = [];
  for (let i = 0; i < BURST; i++) sent.push(await conv.send('A', message(i)));
  for (let i = 0; i < BURST; i++) {
    const pt = await conv.receive('B', sent[i]!);
    if (!sameBytes(pt, message(i))) throw new Error('burst: plaintext mismatch');
  }
  return BURST;
}

async function alternate(conv: Conversation): Promise<number> {
  const m = message(7);
  if (!sameBytes(await conv.receive('B', await conv.send('A', m)), m)) throw new Error('alternating: plaintext mismatch');
  if (!sameBytes(await conv.receive('A', await conv.send('B', m)), m)) throw new Error('alternating: plaintext mismatch');
  return 2;
}

interface Row {
  label: string;
  gchat: number | string;
  libsignal: number | string;
  unit: string;
  /** 'rate': higher is better; 'time': lower is better. */
  kind: 'rate' | 'time';
  note?: string;
}

function fmt(v: number | string): string {
  if (typeof v === 'string') return v;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function ratio(r: Row): string {
  if (typeof r.gchat !== 'number' || typeof r.libsignal !== 'number') return 'n/a';
  const x = r.gchat / r.libsignal;
  return r.kind === 'rate' ? `${x.toFixed(2)} (${(x * 100).toFixed(0)}% of libsignal's rate)` : `${x.toFixed(2)} (GChat takes ${x.toFixed(2)}x the time)`;
}

function printRow(r: Row): void {
  const g = `${fmt(r.gchat)}${typeof r.gchat === 'number' ? ' ' + r.unit : ''}`;
  const l = `${fmt(r.libsignal)}${typeof r.libsignal === 'number' ? ' ' + r.unit : ''}`;
  console.log(`${r.label.padEnd(54)} GChat ${g.padEnd(14)} libsignal ${l.padEnd(14)} GChat/libsignal ${ratio(r)}`);
  if (r.note) console.log(`${''.padEnd(54)} ${r.note}`);
}

interface Figures {
  hs: [number | null, number];
  burst: [number | null, number];
  alt: [number | null, number];
  notes: string[];
}

async function measure(gchat: BenchSide | null, lib: BenchSide, ms: number): Promise<Figures> {
  const sides = gchat ? [gchat, lib] : [lib];
  const wire = new Map<BenchSide, number>();
  const handshake = (side: BenchSide) => async () => {
    wire.set(side, (await side.handshake(message(0))).wireBytes);
    return 1;
  };
  const hs = await compare(gchat && handshake(gchat), handshake(lib), ms);

  const convs = new Map<BenchSide, Conversation>();
  for (const side of sides) convs.set(side, await side.conversation());
  const b = await compare(gchat && (() => burst(convs.get(gchat)!)), () => burst(convs.get(lib)!), ms);

  const notes: string[] = [];
  for (const side of sides) {
    const conv = convs.get(side)!;
    const probe = await conv.send('A', message(1));
    await conv.receive('B', probe);
    convs.set(side, await side.conversation());
    notes.push(`${side.name}: prekey message ${wire.get(side)} B, normal message ${probe.length} B (for a ${MESSAGE_BYTES}-byte plaintext)`);
  }
  const a = await compare(gchat && (() => alternate(convs.get(gchat)!)), () => alternate(convs.get(lib)!), ms);
  for (const side of sides) notes.push(`${side.name}: stored session state A->B after the run: ${await convs.get(side)!.storedSessionBytes('A')} B`);
  return { hs, burst: b, alt: a, notes };
}

async function main(): Promise<number> {
  const started = performance.now();
  const providerName = arg('provider') ?? 'node';
  const seconds = Number(arg('seconds') ?? '3');
  const ms = seconds * 1000;
  const provider = pickProvider(providerName);

  console.log(`bench:crypto — ${process.version}, ${process.platform}-${process.arch}, OpenSSL ${process.versions.openssl}, ${seconds}s per figure`);
  const lib = libsignalSide();
  let gchat: BenchSide | null = null;
  let gchatError = '';
  try {
    gchat = await gchatSide(provider);
  } catch (e) {
    gchatError = (e as Error).message;
  }
  console.log(`GChat provider: ${provider.name}`);
  console.log(`  GChat:     ${gchat ? gchat.describe : gchatError}`);
  console.log(`  libsignal: ${lib.describe}`);
  console.log('');

  const f = await measure(gchat, lib, ms);
  const na = gchatError || 'n/a';
  const rows: Row[] = [
    { label: 'handshakes/s (bundle -> start -> encrypt -> decrypt)', gchat: f.hs[0] ?? na, libsignal: f.hs[1], unit: '/s', kind: 'rate' },
    { label: `ratchet msgs/s, burst (A sends ${BURST}, B decrypts ${BURST})`, gchat: f.burst[0] ?? na, libsignal: f.burst[1], unit: '/s', kind: 'rate' },
    { label: 'ratchet msgs/s, alternating (DH step each msg)', gchat: f.alt[0] ?? na, libsignal: f.alt[1], unit: '/s', kind: 'rate' },
  ];

  // Argon2id: GChat's backup KDF at its defaults; libsignal has none with settable parameters.
  const libKdf = await lib.backupKdf();
  let gKdfRow: Row;
  if (gchat) {
    const runs = [await gchat.backupKdf(), await gchat.backupKdf()];
    const best = Math.min(...runs.map((r) => ('ms' in r ? r.ms : Infinity)));
    gKdfRow = { label: `Argon2id backup derive (${runs[0]!.params})`, gchat: best, libsignal: 'n/a', unit: 'ms', kind: 'time' };
  } else {
    gKdfRow = { label: 'Argon2id backup derive', gchat: na, libsignal: 'n/a', unit: 'ms', kind: 'time' };
  }
  gKdfRow.note = `libsignal n/a: ${'na' in libKdf ? libKdf.na : 'unexpected'}`;
  rows.push(gKdfRow);

  // The same Argon2id computation on both: libsignal's PinHash parameters, outputs compared byte for byte.
  const pin = new TextEncoder().encode('123456');
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const { mKib, t, p, length } = PIN_HASH_PARAMS;
  const lp = [libsignalPinHash(pin, salt), libsignalPinHash(pin, salt)];
  let same: Row = { label: `Argon2id at PinHash params (m=${mKib} t=${t} p=${p})`, gchat: na, libsignal: Math.min(...lp.map((r) => ('ms' in r ? r.ms : Infinity))), unit: 'ms', kind: 'time' };
  if (gchat) {
    const gp = [await gchatArgon2id(pin, salt, mKib, t, p, length), await gchatArgon2id(pin, salt, mKib, t, p, length)];
    const identical = 'output' in gp[0]! && 'output' in lp[0]! && sameBytes(gp[0].output, lp[0].output);
    same = { ...same, gchat: Math.min(...gp.map((r) => ('ms' in r ? r.ms : Infinity))) };
    same.note = `same inputs, 64-byte outputs ${identical ? 'identical' : 'DIFFER'} (libsignal PinHash.fromSalt vs GChat primitives.argon2id)`;
  }
  rows.push(same);

  console.log('line                                                   figures (best of the run; ratio = GChat / libsignal)');
  for (const r of rows) printRow(r);
  console.log('');
  for (const n of f.notes) console.log(n);
  if (gchat) {
    const goal = ([g, l]: [number | null, number]) => ((g ?? 0) / l >= GOAL ? 'met' : 'NOT met');
    console.log(`goal (GChat >= ${GOAL * 100}% of libsignal's rate): burst ${goal(f.burst)}, alternating ${goal(f.alt)}`);
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (!gchat) {
    console.error(`GChat side failed: ${gchatError}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
