/**
 * Offline sending, reloads, and a second device of one account: added from the recovery code in a
 * third browser profile, then removed from the device list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { bodies, bubble, openApp, openChat, send, signIn, signUp, startWebBench, statusOf, uniq, waitOnline, webTestsCanRun, type WebBench } from './harness.js';

const run = await webTestsCanRun();

describe.runIf(run)('web client: offline, reload, devices', () => {
  let bench: WebBench;
  let aliceCtx: BrowserContext;
  let alice: Page;
  let bob: Page;
  let recoveryCode: string;
  const aliceName = uniq('alice');
  const bobName = uniq('bob');

  beforeAll(async () => {
    bench = await startWebBench('gchat_web_dev');
    aliceCtx = await bench.person();
    alice = await openApp(aliceCtx, bench.url);
    bob = await openApp(await bench.person(), bench.url);
    [recoveryCode] = await Promise.all([signUp(alice, aliceName), signUp(bob, bobName)]);
    await openChat(alice, bobName);
    await send(alice, 'first');
    await openChat(bob, aliceName);
    await bubble(bob, 'first').waitFor();
  });

  afterAll(async () => {
    await bench?.close();
  });

  it('queues messages typed offline (pending), and sends them when the network returns', async () => {
    await aliceCtx.setOffline(true);
    await alice.locator('[data-testid="connection"][data-state="offline"]').waitFor();
    const offline = ['offline one', 'offline two', 'offline three'];
    for (const t of offline) await send(alice, t);
    for (const t of offline) expect(await statusOf(alice, t)).toBe('pending');
    // Still pending a while later: nothing got through.
    await new Promise((r) => setTimeout(r, 1500));
    for (const t of offline) expect(await statusOf(alice, t)).toBe('pending');
    expect(await bodies(bob)).toEqual(['first']);

    await aliceCtx.setOffline(false);
    await waitOnline(alice);
    await expect.poll(() => bodies(bob), { timeout: 90_000 }).toEqual(['first', ...offline]);
    await expect.poll(async () => Promise.all(offline.map((t) => statusOf(alice, t))), { timeout: 60_000 }).toEqual(offline.map(() => 'read'));
  });

  it('keeps history and sessions across a reload', async () => {
    await alice.reload();
    await waitOnline(alice);
    await openChat(alice, bobName);
    expect(await bodies(alice)).toEqual(['first', 'offline one', 'offline two', 'offline three']);
    await send(alice, 'after reload');
    await bubble(bob, 'after reload').waitFor({ timeout: 60_000 });
    await send(bob, 'got it');
    await bubble(alice, 'got it').waitFor({ timeout: 60_000 });
  });

  it('two tabs of one device: one holds the stream and the outbox, the other follows and sends through it', async () => {
    const tab2 = await openApp(aliceCtx, bench.url);
    await tab2.locator('[data-tab-role="follower"]').waitFor();
    expect(await alice.locator('[data-tab-role]').getAttribute('data-tab-role')).toBe('leader');
    await openChat(tab2, bobName);
    await send(tab2, 'from the second tab');
    await bubble(bob, 'from the second tab').waitFor({ timeout: 60_000 });
    await expect.poll(() => statusOf(tab2, 'from the second tab'), { timeout: 60_000 }).toBe('read');
    await send(bob, 'seen in both tabs');
    for (const p of [alice, tab2]) await bubble(p, 'seen in both tabs').waitFor({ timeout: 60_000 });
    // The holder closes: the follower takes the lock and the stream.
    await alice.close();
    await tab2.locator('[data-tab-role="leader"]').waitFor({ timeout: 60_000 });
    await waitOnline(tab2);
    await send(bob, 'after the handover');
    await bubble(tab2, 'after the handover').waitFor({ timeout: 60_000 });
    alice = tab2;
  });

  it('adds a device from the recovery code; removing it from the device list stops delivery to it', async () => {
    const second = await openApp(await bench.person({ width: 420, height: 800 }), bench.url);
    await signIn(second, aliceName, recoveryCode);
    await send(bob, 'hello both devices');
    const conv = second.locator(`.conv[data-user="${bobName}"]`);
    await conv.waitFor({ timeout: 60_000 });
    await conv.click();
    await bubble(second, 'hello both devices').waitFor({ timeout: 60_000 });
    // A new device starts without the history: end-to-end encryption is per device.
    expect(await bodies(second)).toEqual(['hello both devices']);
    // Alice's own message from her first browser reaches her second one too.
    await send(alice, 'from my laptop');
    await bubble(second, 'from my laptop').waitFor({ timeout: 60_000 });

    await alice.getByRole('button', { name: 'Devices', exact: true }).click();
    const panel = alice.getByTestId('devices');
    await panel.locator('li[data-device="2"]').waitFor();
    expect(await panel.locator('li[data-device="1"]').textContent()).toContain('This browser');
    await panel.locator('li[data-device="2"]').getByRole('button', { name: 'Remove…' }).click();
    await panel.getByRole('button', { name: 'Remove device 2' }).click();
    await expect.poll(() => panel.locator('li[data-device]').count(), { timeout: 60_000 }).toBe(1);
    await alice.getByRole('button', { name: 'Close', exact: true }).click();

    await send(bob, 'only the first device');
    await bubble(alice, 'only the first device').waitFor({ timeout: 60_000 });
    await expect.poll(() => statusOf(bob, 'only the first device'), { timeout: 60_000 }).toBe('read');
    expect(await bodies(second)).not.toContain('only the first device');
    await second.getByRole('heading', { name: 'This device was removed' }).waitFor({ timeout: 90_000 });
  });
});
