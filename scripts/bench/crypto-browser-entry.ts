/**
 * Bundled for Chromium by crypto-browser.ts: the same GChat side as in Node (gchat-adapter.ts over
 * src/protocol), on the browser's WebCrypto with ML-KEM-768 in WebAssembly (the module fetched
 * from the page's origin, as the web client would) and Argon2id in hash-wasm.
 */
import { instantiateMlKem768 } from '../../src/platform/ml-kem-wasm.js';
import { type CryptoProvider, argon2id, nobleProvider, webCryptoProvider } from '../../src/protocol/primitives.js';
import { gchatSide } from './gchat-adapter.js';
import type { BenchSide } from './types.js';

const fromHex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

const sides = new Map<string, BenchSide>();

async function setup(curves: 'webcrypto' | 'noble'): Promise<string> {
  const kem = await instantiateMlKem768(await (await fetch('/pqclean.wasm')).arrayBuffer());
  const base = curves === 'webcrypto' ? webCryptoProvider() : nobleProvider;
  const provider: CryptoProvider = { ...base, name: `${base.name}+wasm-kem`, mlKem768: kem };
  const side = await gchatSide(provider);
  sides.set(curves, side);
  return `${navigator.userAgent.match(/(HeadlessChrome|Chrome)\/[\d.]+/)?.[0] ?? 'Chromium'}: ${side.describe}`;
}

/** Handshakes per second over `ms`, as bench-crypto.ts's rate() counts them in Node. */
async function handshakeRate(curves: string, ms: number): Promise<number> {
  const side = sides.get(curves)!;
  const pt = new Uint8Array(100);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    await side.handshake(pt);
    n++;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

async function argon2(passwordHex: string, saltHex: string, mKib: number, t: number, p: number, length: number): Promise<{ ms: number; output: string }> {
  const t0 = performance.now();
  const out = await argon2id(fromHex(passwordHex), fromHex(saltHex), mKib, t, p, length);
  return { ms: performance.now() - t0, output: toHex(out) };
}

declare global {
  interface Window {
    benchCrypto: { setup: typeof setup; handshakeRate: typeof handshakeRate; argon2: typeof argon2 };
  }
}

window.benchCrypto = { setup, handshakeRate, argon2 };
