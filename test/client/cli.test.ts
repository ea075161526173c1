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
