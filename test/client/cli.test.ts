/** The `gchat` CLI end to end: two processes talk through a real server. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProcess } from '../helpers/server-process.js';
import { waitFor } from '../helpers/clients.js';

const bin = join(import.meta.dirname, '../../bin/gchat');
let server: ServerProcess;
let home: string;

beforeAll(async () => {
  server = await ServerProcess.create({ prefix: 'gchat_cli' });
  home = mkdtempSync(join(tmpdir(), 'gchat-cli-'));
}, 300_000);
afterAll(async () => {
  await server?.close();
  rmSync(home, { recursive: true, force: true });
});

function gchat(user: string, args: string[], env: Record<string, string> = {}) {
  return promisify(execFile)(bin, ['--data', join(home, user), '--server', server.url, ...args], {
    env: { ...process.env, GCHAT_PASSWORD: 'a long enough password', ...env },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

interface Line {
  id: string;
  from: string;
  text: string;
  outgoing: boolean;
}

/** Runs `gchat listen --json` as USER until `done` holds for the lines printed so far, then stops it. */
async function listenUntil(user: string, done: (lines: Line[]) => boolean): Promise<Line[]> {
  const listener = spawn(bin, ['--data', join(home, user), 'listen', '--json'], { env: process.env });
  let out = '';
  listener.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const lines = (): Line[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  try {
    await waitFor(`${user}'s listen prints the message`, () => done(lines()), 120_000);
    return lines();
  } finally {
    listener.kill('SIGINT');
    await new Promise((r) => (listener.exitCode !== null ? r(null) : listener.once('exit', r)));
  }
}

describe('gchat CLI', () => {
  it('two terminals: register, send, listen, safety numbers', async () => {
    const tag = Date.now() % 100000;
    const [alice, bob] = [`alice${tag}`, `bob${tag}`];
    const reg = await gchat(alice, ['register', alice]);
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(/recovery code \(shown once.*\): [a-z2-7]{5}(-[a-z2-7]{5,6}){4}/);
    expect((await gchat(bob, ['register', bob])).code).toBe(0);

    const listener: ChildProcess = spawn(bin, ['--data', join(home, bob), 'listen', '--json'], { env: process.env });
    let out = '';
    listener.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const sent = await gchat(alice, ['send', bob, 'hello', 'from', 'the', 'cli']);
      expect(sent.stderr).toBe('');
      expect(sent.code).toBe(0);
      const [id, status] = sent.stdout.trim().split(' ');
      expect(status).toBe('sent');
      await waitFor('bob prints it', () => out.includes('\n'), 120_000);
      const line = JSON.parse(out.split('\n')[0]!);
      expect(line).toMatchObject({ id, from: alice, text: 'hello from the cli', outgoing: false });
    } finally {
      listener.kill('SIGINT');
      await new Promise((r) => listener.once('exit', r));
    }
    const a = await gchat(alice, ['safety-number', bob]);
    const b = await gchat(bob, ['safety-number', alice]);
    expect(a.stdout).toMatch(/^(\d{5} ){11}\d{5}\n$/);
    expect(b.stdout).toBe(a.stdout);
    const contacts = await gchat(alice, ['contacts']);
    expect(contacts.stdout).toContain(`${bob}\tunverified`);
    // Alice's own account is known to her device (for her other devices), but it is not a contact.
    expect(contacts.stdout.trim().split('\n').map((l) => l.split('\t')[0])).toEqual([bob]);
  }, 600_000);

  it('a message that arrived during `gchat send` is shown by the next `gchat listen`, once', async () => {
    const tag = Date.now() % 100000;
    const [alice, bob] = [`qalice${tag}`, `qbob${tag}`];
    expect((await gchat(alice, ['register', alice])).code).toBe(0);
    expect((await gchat(bob, ['register', bob])).code).toBe(0);
    // Bob writes while Alice is not listening: it waits in her device's queue.
    const fromBob = await gchat(bob, ['send', alice, 'waiting', 'in', 'your', 'queue']);
    expect(fromBob.code).toBe(0);
    const waitingId = fromBob.stdout.split(' ')[0]!;
    // Alice sends: her client opens the stream and receives Bob's message without printing it.
    const reply = await gchat(alice, ['send', bob, 'a', 'reply']);
    expect(reply.code).toBe(0);
    expect(reply.stdout).not.toContain('waiting in your queue');

    const first = await listenUntil(alice, (lines) => lines.some((l) => l.id === waitingId));
    expect(first.filter((l) => l.id === waitingId)).toEqual([expect.objectContaining({ from: bob, text: 'waiting in your queue', outgoing: false })]);
    // Shown once: a second listen prints the next message but not the one already shown.
    const next = await gchat(bob, ['send', alice, 'the', 'next', 'one']);
    const nextId = next.stdout.split(' ')[0]!;
    const second = await listenUntil(alice, (lines) => lines.some((l) => l.id === nextId));
    expect(second.map((l) => l.id)).not.toContain(waitingId);
  }, 600_000);

  it('with the server down, `gchat send` says at once that the message is queued, and sends it when the server is back', async () => {
    const tag = Date.now() % 100000;
    const [alice, bob] = [`dalice${tag}`, `dbob${tag}`];
    expect((await gchat(alice, ['register', alice])).code).toBe(0);
    expect((await gchat(bob, ['register', bob])).code).toBe(0);
    expect((await gchat(alice, ['safety-number', bob])).code).toBe(0);
    await server.kill();
    let restarted = false;
    try {
      const send = spawn(bin, ['--data', join(home, alice), 'send', bob, 'sent', 'while', 'the', 'server', 'was', 'down', '--timeout', '600'], { env: process.env });
      let out = '';
      let err = '';
      send.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      send.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => send.once('exit', (code) => r(code)));
      // Told while the server is still down, long before the 600 s the command would wait.
      await waitFor('the queued notice', () => /queued/.test(err), 120_000);
      expect(send.exitCode).toBeNull();
      expect(err).toMatch(/^gchat: [0-9a-f-]{36} queued: the server cannot be reached; it goes out when the server is back/);
      expect(out).toBe('');
      await server.start();
      restarted = true;
      expect(await exited).toBe(0);
      const [id, status] = out.trim().split(' ');
      expect(status).toMatch(/^(sent|delivered)$/);
      const lines = await listenUntil(bob, (ls) => ls.some((l) => l.id === id));
      expect(lines.find((l) => l.id === id)).toMatchObject({ from: alice, text: 'sent while the server was down' });
    } finally {
      if (!restarted) await server.start();
    }
  }, 600_000);

  it('errors are one clear line and a non-zero exit', async () => {
    const nobody = await gchat('nobody', ['send', 'someone', 'hi']);
    expect(nobody.code).not.toBe(0);
    expect(nobody.stderr.trim().split('\n')).toHaveLength(1);
    expect(nobody.stderr).toMatch(/^gchat: no GChat device in this store/);
    const bad = await gchat('x', ['register', 'NO SPACES']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^gchat: server refused \(400 invalid_request\)/);
    const usage = await gchat('x', ['frobnicate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^gchat: unknown command: frobnicate/);
  }, 300_000);
});
