/**
 * bench:crypto's Chromium side: bundles crypto-browser-entry.ts with esbuild (as
 * test/browser/browser.test.ts bundles the protocol), serves it and the ML-KEM WebAssembly module
 * on loopback, and drives headless Chromium (a process of its own) through playwright-core.
 */
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { bundleForBrowser } from '../../test/browser/bundle.js';
import { pqcleanWasmPath } from '../../src/platform/ml-kem-node.js';
import type { KdfResult } from './types.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export type BrowserCurves = 'webcrypto' | 'noble';

export interface BrowserSide {
  readonly describe: string;
  /** Handshakes/s over `ms` with the given curve provider (ML-KEM in WebAssembly either way). */
  handshakeRate(curves: BrowserCurves, ms: number): Promise<number>;
  /** The protocol's own Argon2id there (hash-wasm), timed inside the page. */
  argon2id(password: Uint8Array, salt: Uint8Array, mKib: number, t: number, p: number, length: number): Promise<KdfResult>;
  close(): Promise<void>;
}

export async function startBrowserSide(): Promise<BrowserSide> {
  const js = await bundleForBrowser(join(import.meta.dirname, 'crypto-browser-entry.ts'));
  const wasm = readFileSync(pqcleanWasmPath());
  const server: Server = createServer((req, res) => {
    if (req.url === '/bundle.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    if (req.url === '/pqclean.wasm') return res.writeHead(200, { 'content-type': 'application/wasm' }).end(wasm);
    if (req.url === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/bundle.js"></script>');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    const page: Page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    await page.waitForFunction(() => 'benchCrypto' in window);
    const describe = await page.evaluate(() => window.benchCrypto.setup('webcrypto'));
    await page.evaluate(() => window.benchCrypto.setup('noble'));
    const b = browser;
    return {
      describe,
      handshakeRate: (curves, ms) => page.evaluate(([c, m]) => window.benchCrypto.handshakeRate(c, m), [curves, ms] as const),
      async argon2id(password, salt, mKib, t, p, length) {
        const r = await page.evaluate((a) => window.benchCrypto.argon2(...a), [hex(password), hex(salt), mKib, t, p, length] as [string, string, number, number, number, number]);
        return { ms: r.ms, output: new Uint8Array(Buffer.from(r.output, 'hex')) };
      },
      async close() {
        await b.close();
        await new Promise((r) => server.close(r));
      },
    };
  } catch (e) {
    await browser?.close();
    await new Promise((r) => server.close(r));
    throw e;
  }
}
