/**
 * Trust and presentation: safety numbers equal on both sides (with the QR code and the verified
 * mark), the blocking warning when a contact's account key changes, the notification setting,
 * axe-core on every screen, the CSP the server sends, the offline app shell, and the screenshots
 * (test-results/) of sign-up, chat (phone and desktop, light and dark) and safety number.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { RESULTS, axeViolations, bubble, openApp, openChat, send, signUp, startWebBench, statusOf, uniq, waitOnline, webTestsCanRun, type WebBench } from './harness.js';

const run = await webTestsCanRun();

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(RESULTS, `web-${name}.png`) });
}

describe.runIf(run)('web client: safety numbers, key change, accessibility, screenshots', () => {
  let bench: WebBench;
  let alice: Page;
  let bob: Page;
  const aliceName = uniq('alice');
  const bobName = uniq('bob');

  beforeAll(async () => {
    bench = await startWebBench('gchat_web_safety');
    alice = await openApp(await bench.person(), bench.url);
    bob = await openApp(await bench.person(), bench.url);
  });

  afterAll(async () => {
    await bench?.close();
  });

  it('serves the app with a strict Content Security Policy and no inline script or style', async () => {
    const res = await fetch(bench.url);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style=/);
    const manifest = (await (await fetch(new URL('/manifest.webmanifest', bench.url))).json()) as { icons: { sizes: string }[]; start_url: string };
    expect(manifest.icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
    expect((await fetch(new URL('/icons/icon-512.png', bench.url))).headers.get('content-type')).toBe('image/png');
  });

  it('sign-up screen: accessible, screenshot; nothing secret in localStorage after sign-up', async () => {
    await alice.getByRole('button', { name: 'Create account' }).waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    await shot(alice, 'signup');
    await Promise.all([signUp(alice, aliceName), signUp(bob, bobName)]);
    expect(await alice.evaluate(() => localStorage.length)).toBe(0);
    expect(await alice.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it('chat screen at desktop and phone widths, light and dark: accessible, screenshots', async () => {
    await openChat(alice, bobName);
    await send(alice, 'Hey Bob! Are we still on for lunch tomorrow?');
    await openChat(bob, aliceName);
    await bubble(bob, 'Hey Bob! Are we still on for lunch tomorrow?').waitFor();
    await send(bob, 'Yes! 12:30 at the usual place?');
    await bubble(alice, 'Yes! 12:30 at the usual place?').hover();
    await bubble(alice, 'Yes! 12:30 at the usual place?').getByRole('button', { name: /^Reply to/ }).click();
    await send(alice, 'Perfect, see you there');
    await send(alice, 'I will bring the report');
    await bubble(alice, 'I will bring the report').hover();
    await bubble(alice, 'I will bring the report').getByRole('button', { name: /^Edit/ }).click();
    await alice.getByLabel(/^Message to /).fill('I will bring the printed report');
    await alice.getByLabel(/^Message to /).press('Enter');
    await bubble(bob, 'I will bring the printed report').waitFor();
    await expect.poll(() => statusOf(alice, 'I will bring the printed report'), { timeout: 60_000 }).toBe('read');
    await bob.getByLabel(/^Message to /).pressSequentially('See', { delay: 30 });
    await expect.poll(() => alice.getByTestId('typing').textContent(), { timeout: 60_000 }).toContain('typing');
    await alice.mouse.move(0, 0);
    await alice.getByLabel(/^Message to /).blur();

    expect(await axeViolations(alice)).toEqual([]);
    await shot(alice, 'chat-desktop-light');
    await alice.emulateMedia({ colorScheme: 'dark' });
    expect(await axeViolations(alice)).toEqual([]);
    await shot(alice, 'chat-desktop-dark');
    await alice.setViewportSize({ width: 390, height: 844 });
    expect(await axeViolations(alice)).toEqual([]);
    await shot(alice, 'chat-phone-dark');
    await alice.emulateMedia({ colorScheme: 'light' });
    await shot(alice, 'chat-phone-light');
    // At phone width the list and the chat take turns: back shows the list with its last message.
    await alice.getByRole('button', { name: 'Back to conversations' }).click();
    await alice.locator(`.conv[data-user="${bobName}"]`).waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    await shot(alice, 'list-phone-light');
    await alice.setViewportSize({ width: 1100, height: 720 });
    await openChat(alice, bobName);
    await bob.getByLabel(/^Message to /).fill('');
  });

  it('shows equal 60-digit safety numbers and a QR code on both sides; "verified" marks the contact', async () => {
    const numbers: string[] = [];
    for (const p of [alice, bob]) {
      await p.getByRole('button', { name: 'Safety number' }).click();
      const panel = p.getByTestId('safety');
      await panel.locator('svg.qr path').waitFor();
      numbers.push((await panel.getByTestId('safety-number').textContent())!);
    }
    expect(numbers[0]).toMatch(/^\d{60}$/);
    expect(numbers[0]).toBe(numbers[1]);
    expect(await alice.getByTestId('safety-number').locator('span').count()).toBe(12);
    expect(await axeViolations(alice)).toEqual([]);
    await alice.getByRole('button', { name: 'Mark as verified' }).click();
    await alice.getByText(`You verified ${bobName}`).waitFor();
    await shot(alice, 'safety');
    await alice.getByRole('button', { name: 'Close', exact: true }).click();
    await bob.getByRole('button', { name: 'Close', exact: true }).click();
    await alice.getByTestId('verified').waitFor();
    expect(await alice.locator(`.conv[data-user="${bobName}"] .verified-mark`).count()).toBe(1);
  });

  it('devices and settings panels are accessible; notifications can be turned on (the server offers push)', async () => {
    await alice.getByRole('button', { name: 'Devices', exact: true }).click();
    await alice.getByTestId('devices').locator('li[data-device="1"]').waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    await alice.keyboard.press('Escape');
    await alice.getByRole('button', { name: 'Settings', exact: true }).click();
    // Permission not asked yet: the setting is off with a button to turn it on.
    await expect.poll(() => alice.getByTestId('notification-state').getAttribute('data-state')).toBe('off');
    await alice.getByRole('button', { name: 'Turn on notifications' }).waitFor();
    expect(await axeViolations(alice)).toEqual([]);
    await alice.keyboard.press('Escape');
  });

  it("blocks the chat with a warning when the contact's account key changed (Bob registered again)", async () => {
    // Bob's account goes away on the server and he signs up again under the same name: a new account key.
    const c = new pg.Client({ connectionString: bench.database.url });
    await c.connect();
    await c.query('DELETE FROM accounts WHERE username = $1', [bobName]);
    await c.end();
    const newBob = await openApp(await bench.person(), bench.url);
    await signUp(newBob, bobName);

    await send(alice, 'Is this still you?');
    const warning = alice.getByRole('alertdialog');
    await warning.waitFor({ timeout: 90_000 });
    expect(await warning.textContent()).toContain(`${bobName}’s safety number changed`);
    // Blocking: no composer, the message is held (pending), the new Bob got nothing.
    expect(await alice.getByLabel(/^Message to /).count()).toBe(0);
    expect(await statusOf(alice, 'Is this still you?')).toBe('pending');
    expect(await alice.locator(`.conv[data-user="${bobName}"] .key-warn`).textContent()).toBe('Safety number changed');
    expect(await axeViolations(alice)).toEqual([]);
    await shot(alice, 'key-change');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await newBob.locator(`.conv[data-user="${aliceName}"]`).count()).toBe(0);

    // Accepting releases the held message; the contact is no longer verified.
    await warning.getByRole('button', { name: 'Accept the new key' }).click();
    await alice.getByLabel(/^Message to /).waitFor();
    expect(await alice.getByTestId('verified').count()).toBe(0);
    await newBob.locator(`.conv[data-user="${aliceName}"]`).click({ timeout: 90_000 });
    await bubble(newBob, 'Is this still you?').waitFor({ timeout: 60_000 });
  });

  it('serves the app shell from the service worker when offline', async () => {
    await alice.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await expect.poll(() => alice.evaluate(() => !!navigator.serviceWorker.controller), { timeout: 30_000 }).toBe(true);
    await alice.context().setOffline(true);
    await alice.reload();
    await alice.locator(`.conv[data-user="${bobName}"]`).waitFor();
    await alice.locator('[data-testid="connection"][data-state="offline"]').waitFor();
    await alice.context().setOffline(false);
    await waitOnline(alice);
  });
});
