/**
 * npm run bench:web — the web client's size and speed (a benchmark: it prints figures, asserts nothing).
 *
 *   1. First-screen JavaScript: the entry and its static imports (web/dist/build.json), gzipped.
 *   2. Cold load to a usable chat list: a registered browser, HTTP cache emptied and service worker
 *      gone, from navigation until the conversation list is shown and the stream is online
 *      (median of BENCH_LOADS, default 5); and the same with the service worker's cache (warm).
 *   3. Message latency between two browser contexts through the server: Alice presses Enter, Bob's
 *      page shows the bubble (both measured in the pages with Date.now, same machine clock),
 *      p50/p99 over BENCH_MESSAGES (default 200), one at a time.
 *   4. The same latency between two Node SDK clients (GChatClient with the CLI's file store and
 *      node:crypto, as `gchat` uses it) through the same server: sendText until the receiver's
 *      `message` event.
 *
 * The server runs as its own process (src/server/main.ts, serving web/dist) on a fresh PostgreSQL
 * database (the local test server) and a free port, so the Node SDK clients that load it here do
 * not share its event loop; Chromium is /usr/bin/chromium.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Page } from 'playwright-core';
import { GChatClient } from '../src/client/client.js';
import { nodeClientOptions } from '../src/client/node.js';
import { ServerProcess } from '../test/helpers/server-process.js';
import { CHROMIUM, ensureBuilt, openApp, openChat, signUp, waitOnline } from '../test/web/harness.js';
import { loadNow, printMachine } from './bench/machine.js';
import type { BuildInfo } from './build-web.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200);
const LOADS = Number(process.env.BENCH_LOADS ?? 5);
const dist = join(import.meta.dirname, '../web/dist');

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const median = (xs: number[]): number => pct([...xs].sort((a, b) => a - b), 50);
const fmt = (ms: number): string => `${ms.toFixed(0)} ms`;

async function loadTime(page: Page, url: string, cold: boolean): Promise<number> {
  if (cold) {
    await page.evaluate(async () => {
      for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
      for (const k of await caches.keys()) await caches.delete(k);
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.clearBrowserCache');
    await cdp.detach();
  }
  const start = Date.now();
  await page.goto(url);
  await page.locator('.conversations .conv').first().waitFor();
  await waitOnline(page);
  return Date.now() - start;
}

async function browserLatency(alice: Page, bob: Page, bobName: string, aliceName: string): Promise<number[]> {
  await openChat(alice, bobName);
  await openChat(bob, aliceName);
  // Timestamps taken in the pages: Enter pressed in Alice's composer, the bubble added to Bob's list.
  await alice.evaluate(() => {
    const w = window as unknown as { sentAt: Record<string, number> };
    w.sentAt = {};
    document.addEventListener(
      'keydown',
      (e) => {
        const t = e.target as HTMLTextAreaElement;
        if (e.key === 'Enter' && t.id === 'compose') w.sentAt[t.value.trim()] = Date.now();
      },
      true,
    );
  });
  await bob.evaluate(() => {
    const w = window as unknown as { seenAt: Record<string, number> };
    w.seenAt = {};
    new MutationObserver(() => {
      for (const p of Array.from(document.querySelectorAll('[data-testid="message"] p.body'))) {
        const text = p.textContent ?? '';
        if (!(text in w.seenAt)) w.seenAt[text] = Date.now();
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const latencies: number[] = [];
  const composer = alice.getByLabel(/^Message to /);
  for (let i = 0; i < MESSAGES; i++) {
    const text = `bench message ${i}`;
    await composer.fill(text);
    await composer.press('Enter');
    await bob.waitForFunction((t) => t in (window as unknown as { seenAt: Record<string, number> }).seenAt, text, { timeout: 60_000, polling: 5 });
    const sent = await alice.evaluate((t) => (window as unknown as { sentAt: Record<string, number> }).sentAt[t]!, text);
    const seen = await bob.evaluate((t) => (window as unknown as { seenAt: Record<string, number> }).seenAt[t]!, text);
    latencies.push(seen - sent);
  }
  return latencies;
}

async function sdkLatency(serverUrl: string): Promise<number[]> {
  const dirs = [mkdtempSync(join(tmpdir(), 'gchat-bench-a-')), mkdtempSync(join(tmpdir(), 'gchat-bench-b-'))];
  const tag = Date.now().toString(36);
  const { client: a } = await GChatClient.register(nodeClientOptions(dirs[0]!), { serverUrl, username: `sdka${tag}`, password: 'correct horse battery' });
  const { client: b } = await GChatClient.register(nodeClientOptions(dirs[1]!), { serverUrl, username: `sdkb${tag}`, password: 'correct horse battery' });
  await a.start();
  await b.start();
  const waiting = new Map<string, (t: number) => void>();
  b.on('message', (m) => waiting.get(m.body)?.(Date.now()));
  const latencies: number[] = [];
  try {
    await a.sendText(b.userId, 'warm-up');
    await new Promise<void>((r) => waiting.set('warm-up', () => r()));
    for (let i = 0; i < MESSAGES; i++) {
      const body = `sdk message ${i}`;
      const got = new Promise<number>((r) => waiting.set(body, r));
      const start = Date.now();
      await a.sendText(b.userId, body);
      latencies.push((await got) - start);
    }
  } finally {
    await a.stop();
    await b.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return latencies;
}

function summary(latencies: number[]): string {
  const s = [...latencies].sort((x, y) => x - y);
  return `p50 ${fmt(pct(s, 50))}, p99 ${fmt(pct(s, 99))}, max ${fmt(s.at(-1)!)} (n=${s.length})`;
}

printMachine();
await ensureBuilt();
const server = await ServerProcess.create({ prefix: 'gchat_bench_web' });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
const bench = {
  url: `${server.url}/`,
  person: () => browser.newContext({ viewport: { width: 1100, height: 720 }, colorScheme: 'light' as const, deviceScaleFactor: 1 }),
};
try {
  const info = JSON.parse(readFileSync(join(dist, 'build.json'), 'utf8')) as BuildInfo;
  const gz = info.firstScreen.reduce((n, f) => n + gzipSync(readFileSync(join(dist, f)), { level: 9 }).length, 0);
  const raw = info.firstScreen.reduce((n, f) => n + readFileSync(join(dist, f)).length, 0);
  const lazy = info.shell.filter((f) => f.endsWith('.js') && !info.firstScreen.includes(f));
  const lazyGz = lazy.reduce((n, f) => n + gzipSync(readFileSync(join(dist, f)), { level: 9 }).length, 0);
  console.log(`first-screen JavaScript: ${(gz / 1024).toFixed(1)} KB gzipped (${(raw / 1024).toFixed(0)} KB raw, ${info.firstScreen.length} files; budget 150 KB)`);
  console.log(`loaded on demand (Argon2id, QR code): ${(lazyGz / 1024).toFixed(1)} KB gzipped in ${lazy.length} files`);

  const aliceName = `alice${Date.now().toString(36)}`;
  const bobName = `bob${Date.now().toString(36)}`;
  const alice = await openApp(await bench.person(), bench.url);
  const bob = await openApp(await bench.person(), bench.url);
  await signUp(alice, aliceName);
  await signUp(bob, bobName);
  await openChat(alice, bobName);
  await alice.getByLabel(/^Message to /).fill('hello');
  await alice.getByLabel(/^Message to /).press('Enter');
  await openChat(bob, aliceName);

  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < LOADS; i++) cold.push(await loadTime(alice, bench.url, true));
  await alice.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  for (let i = 0; i < LOADS; i++) warm.push(await loadTime(alice, bench.url, false));
  console.log(`cold load to usable chat list (no HTTP cache, no service worker): median ${fmt(median(cold))} of ${LOADS} [${cold.join(', ')}]`);
  console.log(`warm load (service worker cache): median ${fmt(median(warm))} of ${LOADS} [${warm.join(', ')}]`);

  console.log(`browser to browser (${MESSAGES} messages, one at a time): ${summary(await browserLatency(alice, bob, bobName, aliceName))}`);
  console.log(`SDK to SDK in Node, the CLI's file store (${MESSAGES} messages): ${summary(await sdkLatency(server.url))}`);
  console.log(loadNow());
} finally {
  await browser.close().catch(() => undefined);
  await server.close();
}
