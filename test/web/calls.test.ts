/**
 * Audio calls between two browser profiles with fake microphones, through the real server and a
 * real coturn on loopback: the app is told to use the relay only (`?relay=1`, its documented test
 * switch), so the call can only connect through coturn with credentials from GET /v1/turn. The
 * in-call screen reports the selected candidate pair's type and the audio byte counters from
 * RTCPeerConnection.getStats(); the test reads those as a user would read the screen.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { type Coturn, coturnMissing, startCoturn } from '../helpers/coturn.js';
import { RESULTS, axeViolations, openApp, openChat, signUp, startWebBench, uniq, webTestsCanRun, type WebBench } from './harness.js';

const run = (await webTestsCanRun()) && coturnMissing() === null;
const FAKE_MEDIA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required'];

describe.runIf(run)('web client: audio calls through coturn', () => {
  let turn: Coturn;
  let bench: WebBench;
  let aliceCtx: BrowserContext;
  let bobCtx: BrowserContext;
  let alice: Page;
  let bob: Page;
  const aliceName = uniq('alice');
  const bobName = uniq('bob');

  const card = (p: Page) => p.locator('.call-card');
  const stateOf = (p: Page) => card(p).getAttribute('data-state', { timeout: 5000 }).catch(() => null);
  const route = async (p: Page) => {
    const el = p.getByTestId('call-route');
    if (!(await el.count())) return null;
    return { route: await el.getAttribute('data-route'), sent: Number(await el.getAttribute('data-bytes-sent')), received: Number(await el.getAttribute('data-bytes-received')) };
  };

  beforeAll(async () => {
    const secret = randomBytes(24).toString('base64url');
    turn = await startCoturn(secret);
    bench = await startWebBench('gchat_web_calls', {
      env: { GCHAT_TURN_SECRET: secret, GCHAT_TURN_URLS: `turn:127.0.0.1:${turn.port}?transport=udp` },
      args: FAKE_MEDIA,
    });
    aliceCtx = await bench.person();
    bobCtx = await bench.person();
    await aliceCtx.grantPermissions(['microphone']);
    await bobCtx.grantPermissions(['microphone']);
    alice = await openApp(aliceCtx, `${bench.url}?relay=1`);
    bob = await openApp(bobCtx, `${bench.url}?relay=1`);
    await Promise.all([signUp(alice, aliceName), signUp(bob, bobName)]);
    await openChat(alice, bobName);
  });

  afterAll(async () => {
    await bench?.close();
    await turn?.close();
  });

  it('rings, connects through the TURN relay, carries audio both ways, and hang-up ends it on both sides', async () => {
    await alice.getByRole('button', { name: `Call ${bobName}` }).click();
    const incoming = bob.getByRole('alertdialog', { name: aliceName });
    await incoming.waitFor({ timeout: 60_000 });
    expect(await stateOf(bob)).toBe('ringing');
    expect(await bob.getByTestId('call-status').textContent()).toBe('Incoming audio call');
    expect(await stateOf(alice)).toBe('ringing');
    expect(await alice.getByTestId('call-status').textContent()).toBe('Ringing…');
    await bob.screenshot({ path: join(RESULTS, 'web-call-incoming.png') });
    expect(await axeViolations(bob)).toEqual([]);

    await incoming.getByRole('button', { name: 'Accept' }).click();
    for (const p of [alice, bob]) await expect.poll(() => stateOf(p), { timeout: 60_000 }).toBe('connected');

    // The selected pair is a relay candidate on both sides, and audio flows both ways.
    for (const p of [alice, bob]) {
      await expect.poll(async () => (await route(p))?.route, { timeout: 30_000 }).toBe('relay');
      await expect.poll(async () => { const r = await route(p); return !!r && r.sent > 2000 && r.received > 2000; }, { timeout: 30_000 }).toBe(true);
    }
    const before = await Promise.all([route(alice), route(bob)]);
    for (const [i, p] of [alice, bob].entries()) {
      await expect.poll(async () => { const r = (await route(p))!; return r.sent > before[i]!.sent && r.received > before[i]!.received; }, { timeout: 30_000 }).toBe(true);
    }
    expect(await alice.getByTestId('call-route').textContent()).toContain('Relayed (TURN)');
    await expect.poll(() => alice.getByTestId('call-status').textContent(), { timeout: 10_000 }).toMatch(/^0:0[1-9]/);
    await bob.screenshot({ path: join(RESULTS, 'web-call-in-call.png') });
    expect(await axeViolations(alice)).toEqual([]);

    await alice.getByRole('button', { name: 'Hang up' }).click();
    for (const p of [alice, bob]) {
      await expect.poll(() => stateOf(p), { timeout: 60_000 }).toBe('ended');
    }
    expect(await bob.getByTestId('call-status').textContent()).toBe('Call ended');
    // The ended card goes away by itself; the chat is back.
    for (const p of [alice, bob]) await card(p).waitFor({ state: 'detached', timeout: 30_000 });
  });

  it('a declined call ends on both sides and says so to the caller', async () => {
    await alice.getByRole('button', { name: `Call ${bobName}` }).click();
    const incoming = bob.getByRole('alertdialog', { name: aliceName });
    await incoming.waitFor({ timeout: 60_000 });
    await incoming.getByRole('button', { name: 'Decline' }).click();
    await expect.poll(() => alice.getByTestId('call-status').textContent(), { timeout: 60_000 }).toBe('Call declined');
    expect(await stateOf(alice)).toBe('ended');
    for (const p of [alice, bob]) await card(p).waitFor({ state: 'detached', timeout: 30_000 });
  });

  it('retries relay-only when the direct connection does not come up in time, and connects through the relay', async () => {
    // No forced relay this time; Alice's app gives the direct attempt 1 ms, so it never comes up
    // in time and the caller starts over relay-only, on both sides.
    await alice.goto(`${bench.url}?directTimeoutMs=1`);
    await bob.goto(bench.url);
    await openChat(alice, bobName);
    await alice.getByRole('button', { name: `Call ${bobName}` }).click();
    const incoming = bob.getByRole('alertdialog', { name: aliceName });
    await incoming.waitFor({ timeout: 60_000 });
    await incoming.getByRole('button', { name: 'Accept' }).click();
    for (const p of [alice, bob]) await expect.poll(() => stateOf(p), { timeout: 60_000 }).toBe('connected');
    for (const p of [alice, bob]) {
      await expect.poll(async () => (await route(p))?.route, { timeout: 30_000 }).toBe('relay');
      await expect.poll(async () => { const r = await route(p); return !!r && r.sent > 2000 && r.received > 2000; }, { timeout: 30_000 }).toBe(true);
    }
    await alice.getByRole('button', { name: 'Hang up' }).click();
    for (const p of [alice, bob]) await expect.poll(() => stateOf(p), { timeout: 60_000 }).toBe('ended');
  });
});
