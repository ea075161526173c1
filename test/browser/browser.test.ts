/**
 * The protocol and the client's IndexedDB store in a real Chromium (headless, loopback only): the
 * web client loads this same code. Every vector file passes there too, with the browser's WebCrypto.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { bundleForBrowser } from './bundle.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = join(import.meta.dirname, '../..');
const vectorDir = join(root, 'test/vectors');
const present = existsSync(CHROMIUM);
if (!present && process.env.CI === 'true') throw new Error(`Chromium is required in CI and missing at ${CHROMIUM} (.ci/run installs it)`);
if (!present) console.warn(`\n*** Chromium not found at ${CHROMIUM}: skipping the browser tests (apt-get install -y chromium) ***\n`);

let server: Server;
let browser: Browser;
let page: Page;
let url: string;

describe.runIf(present)('in Chromium', () => {
  beforeAll(async () => {
    const js = await bundleForBrowser(join(import.meta.dirname, 'entry.ts'));
    server = createServer((req, res) => {
      if (req.url === '/bundle.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      if (req.url === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/bundle.js"></script>');
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => 'gchatTest' in window);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  it('runs src/protocol with the browser WebCrypto and no Node globals', async () => {
    expect(await page.evaluate(() => window.gchatTest.provider)).toBe('webcrypto');
    expect(await page.evaluate(() => window.gchatTest.hasNodeGlobals)).toBe(false);
  });

  it.each(readdirSync(vectorDir).filter((f) => f.endsWith('.json')))('passes every case of %s', async (file) => {
    const doc = JSON.parse(readFileSync(join(vectorDir, file), 'utf8'));
    const results = await page.evaluate((d) => window.gchatTest.runVectors(d), doc);
    expect(results.length).toBe(doc.cases.length);
    expect(results.filter((r) => !r.ok)).toEqual([]);
  }, 120_000);

  it('keeps the client state in IndexedDB: atomic batches, prefix lists, across a reload', async () => {
    const first = (await page.evaluate(() => window.gchatTest.kvRoundTrip('device-1'))) as Record<string, unknown>;
    expect(first).toEqual({
      before: [],
      bob: [
        ['sessions/bob/1', { n: 1 }],
        ['sessions/bob/2', [1, 'two', null]],
      ],
      all: ['sessions/bob/1', 'sessions/bob/2', 'sessions/carol/1'],
      one: 'x',
      gone: null,
    });
    await page.reload();
    await page.waitForFunction(() => 'gchatTest' in window);
    const again = (await page.evaluate(() => window.gchatTest.kvRoundTrip('device-1'))) as { before: [string, unknown][] };
    expect(again.before.map(([k]) => k)).toEqual(['sessions/bob/1', 'sessions/bob/2', 'sessions/carol/1']);
  });
});
