/**
 * Real coturn on loopback for the TURN tests: `turnserver` with the shared-secret REST scheme
 * (use-auth-secret), `turnutils_peer` as the far end, and `turnutils_uclient` to allocate a relay
 * and send through it. Missing binaries skip loudly, except under CI=true (where .ci/run installs
 * them).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './server-process.js';

export const TURNSERVER = '/usr/bin/turnserver';
export const UCLIENT = '/usr/bin/turnutils_uclient';
export const PEER = '/usr/bin/turnutils_peer';

/** Null when coturn is here; else why not (a failure under CI). */
export function coturnMissing(): string | null {
  const missing = [TURNSERVER, UCLIENT, PEER].filter((p) => !existsSync(p));
  if (missing.length === 0) return null;
  const why = `coturn is not installed (${missing.join(', ')} missing): apt-get install -y coturn`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${why}`);
  console.warn(`\n!!!!! ${why}: SKIPPING the coturn tests !!!!!\n`);
  return why;
}

export interface Coturn {
  readonly port: number;
  readonly peerPort: number;
  readonly log: () => string;
  close(): Promise<void>;
}

function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    c.once('exit', () => r());
    c.kill('SIGTERM');
  });
}

export async function startCoturn(secret: string): Promise<Coturn> {
  const port = await freePort();
  const peerPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gchat-coturn-'));
  const relayBase = 40_000 + Math.floor(Math.random() * 20_000);
  let out = '';
  const turn = spawn(
    TURNSERVER,
    [
      '-n',
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      '--realm=gchat.test',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      `--min-port=${relayBase}`,
      `--max-port=${relayBase + 200}`,
      // The test's peer is on loopback too; coturn refuses loopback peers unless told.
      '--allow-loopback-peers',
      `--pidfile=${join(dir, 'turn.pid')}`,
      `--userdb=${join(dir, 'turndb')}`,
      '--log-file=stdout',
      '--simple-log',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  turn.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-50_000)));
  turn.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-50_000)));
  const peer = spawn(PEER, ['-p', String(peerPort), '-L', '127.0.0.1'], { stdio: 'ignore' });
  return {
    port,
    peerPort,
    log: () => out,
    async close() {
      await stop(turn);
      await stop(peer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Allocation {
  /** A relay was allocated and every packet came back through it from the peer. */
  readonly relayed: boolean;
  readonly refused: boolean;
  readonly output: string;
}

/** turnutils_uclient: allocate a relay with these credentials and send 4 packets to the peer through it. */
export function allocate(turn: Coturn, username: string, credential: string): Promise<Allocation> {
  return new Promise((resolve) => {
    execFile(
      UCLIENT,
      ['-p', String(turn.port), '-r', String(turn.peerPort), '-u', username, '-w', credential, '-n', '2', '-m', '1', '-e', '127.0.0.1', '-X', '-g', '127.0.0.1'],
      { timeout: 60_000 },
      (_err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        resolve({
          relayed: /tot_recv_msgs=4\b/.test(output) && /Total lost packets 0 /.test(output),
          refused: /Cannot complete Allocation/.test(output),
          output,
        });
      },
    );
  });
}
