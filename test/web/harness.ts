/**
 * The web client's test bench: the real server (this process, delivery mounted as main.ts does) on
 * a fresh PostgreSQL database and a free port, serving web/dist; Debian's Chromium driven by
 * playwright-core, one browser context per person. Helpers act as a user would: fill fields,
 * press buttons, read what the page shows.
 */
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { buildWeb, isStale } from '../../scripts/build-web.js';
import { openDatabase, type Database } from '../../src/server/db.js';
import { freshDatabase, postgresReachable, type FreshDatabase } from '../server/delivery-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery staple';
const root = join(import.meta.dirname, '../..');
export const RESULTS = join(root, 'test-results');

/** Whether the browser tests can run here; under CI=true a missing Chromium or PostgreSQL fails. */
export async function webTestsCanRun(): Promise<boolean> {
  const chromiumThere = existsSync(CHROMIUM);
  if (!chromiumThere && process.env.CI === 'true') throw new Error(`Chromium is required in CI and missing at ${CHROMIUM}`);
  if (!chromiumThere) console.warn(`\n*** Chromium not found at ${CHROMIUM}: SKIPPING the web client tests (apt-get install -y chromium) ***\n`);
  return chromiumThere && (await postgresReachable());
}

/** Builds web/dist when a source is newer; test files running in parallel build once (a lock directory). */
export async function ensureBuilt(): Promise<void> {
  const lock = join(root, 'web/.build-lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another file is building; a lock older than two minutes is from a killed run.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 120_000) rmdirSync(lock);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (isStale()) await buildWeb();
  } finally {
    rmdirSync(lock);
  }
}

export interface WebBench {
  readonly server: TestServer;
  readonly url: string;
  readonly browser: Browser;
  readonly database: FreshDatabase;
  readonly db: Database;
  /** A new browser profile (its own IndexedDB): one person's browser. */
  person(opts?: { width?: number; height?: number; dark?: boolean }): Promise<BrowserContext>;
  close(): Promise<void>;
}

/** `env`: server configuration (e.g. TURN); `args`: extra Chromium switches (e.g. fake media devices). */
export async function startWebBench(prefix: string, opts: { env?: Record<string, string>; args?: string[] } = {}): Promise<WebBench> {
  await ensureBuilt();
  const database = await freshDatabase(prefix);
  const db = await openDatabase({ kind: 'postgres', url: database.url, poolSize: 4 });
  const server = await startTestServer(db, { delivery: true, ...(opts.env ? { env: opts.env } : {}) });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', ...(opts.args ?? [])] });
  mkdirSync(RESULTS, { recursive: true });
  return {
    server,
    url: `${server.url}/`,
    browser,
    database,
    db,
    person: (o = {}) =>
      browser.newContext({
        viewport: { width: o.width ?? 1100, height: o.height ?? 720 },
        colorScheme: o.dark ? 'dark' : 'light',
        deviceScaleFactor: 1,
      }),
    async close() {
      await browser.close().catch(() => undefined);
      await server.close();
      await db.close();
      await database.drop();
    },
  };
}

let counter = 0;
/** A username no other test of this run uses (the database is fresh per file, the prefix keeps logs readable). */
export function uniq(name: string): string {
  return `${name}${process.pid % 1000}${++counter}`;
}

export async function openApp(ctx: BrowserContext, url: string): Promise<Page> {
  const page = await ctx.newPage();
  page.setDefaultTimeout(90_000);
  await page.goto(url);
  return page;
}

/** Signs up through the form; returns the recovery code the page showed once. */
export async function signUp(page: Page, username: string): Promise<string> {
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  const code = (await page.getByTestId('recovery-code').textContent({ timeout: 120_000 }))!.trim();
  await page.getByLabel('I have saved my recovery code').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await waitOnline(page);
  return code;
}

export async function signIn(page: Page, username: string, secret: string): Promise<void> {
  await page.getByRole('tab', { name: 'Sign in' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Recovery code or backup passphrase').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await waitOnline(page);
}

export async function waitOnline(page: Page): Promise<void> {
  await page.locator('[data-testid="connection"][data-state="online"]').waitFor({ timeout: 120_000 });
}

/** Finds `username` with the search box and opens the conversation. */
export async function openChat(page: Page, username: string): Promise<void> {
  const existing = page.locator(`.conv[data-user="${username}"]`);
  if (await existing.count()) await existing.click();
  else {
    await page.getByLabel('Find a contact by username').fill(username);
    await page.getByRole('button', { name: 'Find', exact: true }).click();
  }
  await page.getByRole('heading', { name: username, level: 2 }).waitFor();
}

export async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel(/^Message to /).fill(text);
  await page.getByLabel(/^Message to /).press('Enter');
}

/** The bubble whose text is `text` (exact body). */
export function bubble(page: Page, text: string) {
  return page.locator('[data-testid="message"]').filter({ has: page.locator('p.body', { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
}

export async function statusOf(page: Page, text: string): Promise<string | null> {
  return bubble(page, text).locator('[data-status]').getAttribute('data-status');
}

export async function bodies(page: Page): Promise<string[]> {
  return page.locator('[data-testid="message"] p.body').allTextContents();
}

/** Runs axe-core inside the page; returns serious and critical violations (id and a target each). */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; targets: string[] }[]> {
  const source = (await import('node:fs')).readFileSync(join(root, 'node_modules/axe-core/axe.min.js'), 'utf8');
  // Added through the DevTools protocol, not a <script> tag: the page's CSP stays as strict as users get it.
  await page.evaluate(source);
  // axe measures what is on screen now: let fades (e.g. message actions after the pointer leaves)
  // come to rest first, or a half-transparent control reads as low contrast. Endless animations
  // (a ringing call) never finish and are left running.
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect?.getTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => undefined)),
    ),
  );
  const result = (await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')) }));
  })) as { id: string; impact: string; targets: string[] }[];
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
