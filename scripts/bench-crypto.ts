/**
 * `npm run bench:crypto [-- --provider=node|webcrypto|noble] [--seconds=N]`: GChat's protocol
 * against libsignal doing the same work, each storing its session state after every operation and
 * loading it before the next. Prints, per line, the GChat figure, the libsignal figure and their
 * ratio; the handshake loop and Argon2id also run in headless Chromium (scripts/bench/crypto-browser.ts),
 * printed beside the same run's libsignal figure. A report, not a test: it exits 0 whatever the
 * figures (non-zero only if a side breaks).
 *
 * libsignal (@signalapp/libsignal-client, AGPL-3.0) is a devDependency used here only.
 */
import { nodeCryptoProvider } from '../src/platform/node-crypto.js';
import { type CryptoProvider, nobleProvider, webCryptoProvider } from '../src/protocol/primitives.js';
import { startBrowserSide, type BrowserCurves, type BrowserSide } from './bench/crypto-browser.js';
import { BACKUP_PARAMS, gchatArgon2id, gchatSide } from './bench/gchat-adapter.js';
import { PIN_HASH_PARAMS, libsignalPinHash, libsignalSide } from './bench/libsignal-side.js';
import { loadNow, printMachine } from './bench/machine.js';
import type { BenchSide, Conversation, KdfResult } from './bench/types.js';

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

/**
 * Chromium's handshake figures: the best slice of each curve provider there, interleaved with
 * libsignal slices in Node (so the ratio compares the same stretch of machine load).
 */
async function browserHandshakes(browser: BrowserSide, lib: BenchSide, ms: number): Promise<Record<BrowserCurves | 'libsignal', number>> {
  const curves: BrowserCurves[] = ['webcrypto', 'noble'];
  const best: Record<BrowserCurves | 'libsignal', number> = { webcrypto: 0, noble: 0, libsignal: 0 };
  const libRound = async (): Promise<number> => {
    await lib.handshake(message(0));
    return 1;
  };
  for (const c of curves) await browser.handshakeRate(c, Math.min(400, ms * 0.1));
  for (let i = 0; i < SLICES; i++) {
    for (const c of curves) best[c] = Math.max(best[c], await browser.handshakeRate(c, ms / SLICES));
    best.libsignal = Math.max(best.libsignal, await rate(libRound, ms / SLICES));
  }
  return best;
}

const bestMs = (rs: KdfResult[]): number => Math.min(...rs.map((r) => ('ms' in r ? r.ms : Infinity)));
const outputOf = (r: KdfResult | undefined): Uint8Array | null => (r && 'output' in r ? r.output : null);

async function main(): Promise<number> {
  printMachine();
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
  let browser: BrowserSide | null = null;
  let browserError = '';
  try {
    browser = await startBrowserSide();
  } catch (e) {
    browserError = `Chromium unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
  console.log(`GChat provider: ${provider.name}`);
  console.log(`  GChat:     ${gchat ? gchat.describe : gchatError}`);
  console.log(`  Chromium:  ${browser ? browser.describe : browserError}`);
  console.log(`  libsignal: ${lib.describe}`);
  console.log('');

  const f = await measure(gchat, lib, ms);
  const bhs = browser ? await browserHandshakes(browser, lib, ms) : null;
  const na = gchatError || 'n/a';
  const bna = browserError || 'n/a';
  const rows: Row[] = [
    { label: 'handshakes/s (bundle -> start -> encrypt -> decrypt)', gchat: f.hs[0] ?? na, libsignal: f.hs[1], unit: '/s', kind: 'rate' },
    {
      label: 'handshakes/s in Chromium (same loop; vs Node libsignal)',
      gchat: bhs ? Math.max(bhs.webcrypto, bhs.noble) : bna,
      libsignal: bhs ? bhs.libsignal : f.hs[1],
      unit: '/s',
      kind: 'rate',
      ...(bhs ? { note: `Chromium curves: WebCrypto ${fmt(bhs.webcrypto)}/s, noble ${fmt(bhs.noble)}/s (ML-KEM-768 in WebAssembly both); libsignal in slices between them` } : {}),
    },
    { label: `ratchet msgs/s, burst (A sends ${BURST}, B decrypts ${BURST})`, gchat: f.burst[0] ?? na, libsignal: f.burst[1], unit: '/s', kind: 'rate' },
    { label: 'ratchet msgs/s, alternating (DH step each msg)', gchat: f.alt[0] ?? na, libsignal: f.alt[1], unit: '/s', kind: 'rate' },
  ];

  // Argon2id: GChat's backup KDF at its defaults; libsignal has none with settable parameters.
  const libKdf = await lib.backupKdf();
  const backupNote = `libsignal n/a: ${'na' in libKdf ? libKdf.na : 'unexpected'}`;
  const secret = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz');
  const bSalt = crypto.getRandomValues(new Uint8Array(16));
  const { mKib: bm, t: bt, p: bp } = BACKUP_PARAMS;
  const backupLabel = `Argon2id backup derive (m=${bm} KiB t=${bt} p=${bp})`;
  if (gchat) {
    const runs = [await gchat.backupKdf(), await gchat.backupKdf()];
    rows.push({ label: `${backupLabel}, Node`, gchat: bestMs(runs), libsignal: 'n/a', unit: 'ms', kind: 'time', note: backupNote });
  } else {
    rows.push({ label: `${backupLabel}, Node`, gchat: na, libsignal: 'n/a', unit: 'ms', kind: 'time', note: backupNote });
  }
  if (browser) {
    const runs = [await browser.argon2id(secret, bSalt, bm, bt, bp, 32), await browser.argon2id(secret, bSalt, bm, bt, bp, 32)];
    rows.push({ label: `${backupLabel}, Chromium (hash-wasm)`, gchat: bestMs(runs), libsignal: 'n/a', unit: 'ms', kind: 'time' });
  } else {
    rows.push({ label: `${backupLabel}, Chromium (hash-wasm)`, gchat: bna, libsignal: 'n/a', unit: 'ms', kind: 'time' });
  }

  // The same Argon2id computation on every side: libsignal's PinHash parameters, outputs compared byte for byte.
  const pin = new TextEncoder().encode('123456');
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const { mKib, t, p, length } = PIN_HASH_PARAMS;
  const lp = [libsignalPinHash(pin, salt), libsignalPinHash(pin, salt), libsignalPinHash(pin, salt)];
  const libMs = bestMs(lp);
  const pinLabel = `Argon2id at PinHash params (m=${mKib} t=${t} p=${p})`;
  const same = (r: KdfResult | undefined): string => {
    const a = outputOf(r);
    const b = outputOf(lp[0]);
    return a && b && sameBytes(a, b) ? 'identical' : 'DIFFER';
  };
  if (gchat) {
    const gp = [
      await gchatArgon2id(provider, pin, salt, mKib, t, p, length),
      await gchatArgon2id(provider, pin, salt, mKib, t, p, length),
      await gchatArgon2id(provider, pin, salt, mKib, t, p, length),
    ];
    const wasmInNode = [await gchatArgon2id(null, pin, salt, mKib, t, p, length), await gchatArgon2id(null, pin, salt, mKib, t, p, length)];
    rows.push({
      label: `${pinLabel}, Node (${provider.argon2id ? 'native' : 'hash-wasm'})`,
      gchat: bestMs(gp),
      libsignal: libMs,
      unit: 'ms',
      kind: 'time',
      note: `same inputs, 64-byte outputs ${same(gp[0])} (libsignal PinHash.fromSalt vs GChat); hash-wasm in Node for reference: ${fmt(bestMs(wasmInNode))} ms, output ${same(wasmInNode[0])}`,
    });
  } else {
    rows.push({ label: pinLabel, gchat: na, libsignal: libMs, unit: 'ms', kind: 'time' });
  }
  if (browser) {
    const bp2 = [await browser.argon2id(pin, salt, mKib, t, p, length), await browser.argon2id(pin, salt, mKib, t, p, length)];
    rows.push({ label: `${pinLabel}, Chromium (hash-wasm)`, gchat: bestMs(bp2), libsignal: libMs, unit: 'ms', kind: 'time', note: `output ${same(bp2[0])} to libsignal's` });
    await browser.close();
  } else {
    rows.push({ label: `${pinLabel}, Chromium (hash-wasm)`, gchat: bna, libsignal: libMs, unit: 'ms', kind: 'time' });
  }

  console.log('line                                                   figures (best of the run; ratio = GChat / libsignal)');
  for (const r of rows) printRow(r);
  console.log('');
  for (const n of f.notes) console.log(n);
  if (gchat) {
    const goal = ([g, l]: [number | null, number]) => ((g ?? 0) / l >= GOAL ? 'met' : 'NOT met');
    const hsGoal = ([g, l]: [number | null, number]) => ((g ?? 0) >= l ? 'met' : 'NOT met');
    console.log(`goal (GChat >= ${GOAL * 100}% of libsignal's rate): burst ${goal(f.burst)}, alternating ${goal(f.alt)}`);
    console.log(`goal (handshakes/s >= libsignal's): Node ${hsGoal(f.hs)}, Chromium ${bhs ? hsGoal([Math.max(bhs.webcrypto, bhs.noble), bhs.libsignal]) : 'n/a'}`);
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s, ${loadNow()}`);
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
