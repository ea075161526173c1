/**
 * Two people in two browser profiles chat through the real server: messages both ways, ticks up
 * to read, reply and edit on both sides, typing, and a closed page that catches up on reopen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { bodies, bubble, openApp, openChat, send, signUp, startWebBench, statusOf, uniq, webTestsCanRun, type WebBench } from './harness.js';

const run = await webTestsCanRun();

describe.runIf(run)('web client: two people chatting', () => {
  let bench: WebBench;
  let aliceCtx: BrowserContext;
  let bobCtx: BrowserContext;
  let alice: Page;
  let bob: Page;
  const aliceName = uniq('alice');
  const bobName = uniq('bob');
  /** Statuses of the page's fetches of ML-KEM's WebAssembly (web/src/kem.ts). */
  const kemModule: number[] = [];

  beforeAll(async () => {
    bench = await startWebBench('gchat_web_msg');
    aliceCtx = await bench.person();
    bobCtx = await bench.person();
    alice = await openApp(aliceCtx, bench.url);
    bob = await openApp(bobCtx, bench.url);
    alice.on('response', (r) => {
      if (/\/assets\/pqclean-[^/]+\.wasm$/.test(new URL(r.url()).pathname)) kemModule.push(r.status());
    });
    await Promise.all([signUp(alice, aliceName), signUp(bob, bobName)]);
  });

  afterAll(async () => {
    await bench?.close();
  });

  it('exchanges messages both ways; ticks go to read; unread counts and last message in the list', async () => {
    await openChat(alice, bobName);
    await send(alice, 'Hi Bob, it is Alice');
    await expect.poll(() => statusOf(alice, 'Hi Bob, it is Alice'), { timeout: 60_000 }).toMatch(/sent|delivered|read/);
    // Bob has not opened the chat: the list shows it unread, with the last message.
    const conv = bob.locator(`.conv[data-user="${aliceName}"]`);
    await expect.poll(() => conv.getByTestId('unread').textContent(), { timeout: 60_000 }).toBe('1');
    expect(await conv.locator('.conv-last').textContent()).toContain('Hi Bob, it is Alice');
    await expect.poll(() => statusOf(alice, 'Hi Bob, it is Alice'), { timeout: 60_000 }).toBe('delivered');
    await conv.click();
    await bubble(bob, 'Hi Bob, it is Alice').waitFor();
    await expect.poll(() => conv.getByTestId('unread').count()).toBe(0);
    await expect.poll(() => statusOf(alice, 'Hi Bob, it is Alice'), { timeout: 60_000 }).toBe('read');

    await send(bob, 'Hello Alice!');
    await bubble(alice, 'Hello Alice!').waitFor({ timeout: 60_000 });
    await expect.poll(() => statusOf(bob, 'Hello Alice!'), { timeout: 60_000 }).toBe('read');
  });

  it('runs ML-KEM in WebAssembly: signing up (its post-quantum prekeys) fetched the module', () => {
    expect(kemModule).toContain(200);
  });

  it('shows the typing indicator', async () => {
    await bob.getByLabel(/^Message to /).pressSequentially('typ', { delay: 50 });
    await expect.poll(() => alice.getByTestId('typing').textContent(), { timeout: 60_000 }).toContain('typing');
    await bob.getByLabel(/^Message to /).fill('');
  });

  it('shows a reply and an edit on both sides', async () => {
    await bubble(bob, 'Hi Bob, it is Alice').hover();
    await bubble(bob, 'Hi Bob, it is Alice').getByRole('button', { name: /^Reply to/ }).click();
    await send(bob, 'Replying to you');
    for (const p of [alice, bob]) {
      const b = bubble(p, 'Replying to you');
      await b.waitFor({ timeout: 60_000 });
      expect(await b.locator('.quote-body').textContent()).toBe('Hi Bob, it is Alice');
    }
    await bubble(alice, 'Hi Bob, it is Alice').hover();
    await bubble(alice, 'Hi Bob, it is Alice').getByRole('button', { name: /^Edit/ }).click();
    await alice.getByLabel(/^Message to /).fill('Hi Bob, it is Alice (edited)');
    await alice.getByLabel(/^Message to /).press('Enter');
    for (const p of [alice, bob]) {
      const b = bubble(p, 'Hi Bob, it is Alice (edited)');
      await b.waitFor({ timeout: 60_000 });
      expect(await b.locator('.edited').textContent()).toBe('edited');
      // The edit replaces the body in place: no second bubble, and the quote follows it.
      await expect.poll(() => bubble(p, 'Replying to you').locator('.quote-body').textContent()).toBe('Hi Bob, it is Alice (edited)');
    }
    expect(await bodies(bob)).toEqual(['Hi Bob, it is Alice (edited)', 'Hello Alice!', 'Replying to you']);
  });

  it('delivers what was sent while the page was closed: all 10, once, in order', async () => {
    await bob.close();
    const sent = Array.from({ length: 10 }, (_, i) => `while you were away ${i + 1}`);
    for (const t of sent) await send(alice, t);
    await expect.poll(async () => Promise.all(sent.map((t) => statusOf(alice, t))), { timeout: 90_000 }).toEqual(sent.map(() => 'sent'));
    bob = await openApp(bobCtx, bench.url);
    await openChat(bob, aliceName);
    await expect.poll(() => bodies(bob), { timeout: 120_000 }).toEqual(['Hi Bob, it is Alice (edited)', 'Hello Alice!', 'Replying to you', ...sent]);
    // Each once: still the same after the stream settles.
    await expect.poll(() => statusOf(alice, sent[9]!), { timeout: 60_000 }).toBe('read');
    expect(await bodies(bob)).toEqual(['Hi Bob, it is Alice (edited)', 'Hello Alice!', 'Replying to you', ...sent]);
  });
});
