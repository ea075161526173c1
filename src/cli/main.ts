/**
 * `gchat`: the command-line client. Every command works against any server URL; errors are one
 * line on stderr and a non-zero exit. Passwords and recovery secrets come from the environment
 * (GCHAT_PASSWORD, GCHAT_SECRET) or, when absent, one line each from standard input.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fromBase64url, toBase64url } from '../protocol/bytes.js';
import { GChatClient } from '../client/client.js';
import type { IncomingMessage, UnreadableMessage } from '../client/core.js';
import type { MessageRecord } from '../client/state.js';
import { nodeClientOptions } from '../client/node.js';
import { ApiRequestError, GChatApi, NetworkError } from '../client/transport/api.js';

const USAGE = `usage: gchat [--data DIR] [--server URL] COMMAND

  register USERNAME            create an account and this device; prints the recovery code once
                               (--passphrase: protect the key backup with a passphrase instead)
  add-device USERNAME          add this machine as a new device (password + recovery code/passphrase)
  login                        check this device's credentials with the server, print who you are
  send USER TEXT               send TEXT to USER; waits until the server accepted it (--timeout SECONDS,
                               default 60; a message not accepted by then stays queued for the next
                               gchat command). Messages that arrive meanwhile are kept for listen/chat
  listen [--json]              print the messages not shown yet, then each as it arrives (JSON lines with --json)
  chat USER                    interactive: incoming messages printed, each line you type is sent
  contacts                     your contacts, their key state and devices
  safety-number USER           the 60-digit safety number to compare with USER
  verify USER                  mark USER verified (after comparing safety numbers)
  accept-key USER              accept USER's changed account key
  backup export FILE           write the encrypted key backup blob to FILE
  backup import FILE           upload the backup blob in FILE (checked with your secret first)
  backup new [--passphrase]    seal a new backup under a new recovery code (printed) or passphrase

  --data DIR     where this device's state lives (default ~/.gchat/default; env GCHAT_DATA)
  --server URL   server for register/add-device (default http://127.0.0.1:8080; env GCHAT_SERVER)
  GCHAT_PASSWORD, GCHAT_SECRET, GCHAT_PASSPHRASE: read instead of prompting on stdin`;

class UsageError extends Error {}

let stdinLines: AsyncIterableIterator<string> | null = null;
async function ask(envName: string, prompt: string): Promise<string> {
  const v = process.env[envName];
  if (v !== undefined) return v;
  if (process.stdin.isTTY) process.stderr.write(prompt);
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { value, done } = await stdinLines.next();
  if (done) throw new UsageError(`${prompt.trim()} needed (set ${envName} or pipe it on stdin)`);
  return value;
}

function printMessage(m: IncomingMessage, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ id: m.messageId, conversation: m.conversation, from: m.sender, device: m.senderDevice, outgoing: m.outgoing, text: m.body, ts: m.ts, reply_to: m.replyTo, edit_of: m.editOf }) + '\n');
  } else {
    const who = m.outgoing ? `you -> ${m.conversation}` : m.sender;
    process.stdout.write(`[${new Date(m.ts).toISOString()}] ${who}: ${m.body}\n`);
  }
}

function printUnreadable(m: UnreadableMessage, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ id: m.messageId, conversation: m.conversation, from: m.sender, device: m.senderDevice, outgoing: m.outgoing, unreadable: m.reason, unsupported: m.unsupported, ts: m.serverTs }) + '\n');
  } else {
    const who = m.outgoing ? `you -> ${m.conversation}` : m.sender;
    const hint = m.unsupported ? ' (a newer gchat may show it)' : '';
    process.stdout.write(`[${new Date(m.serverTs).toISOString()}] ${who}: [a message that cannot be shown: ${m.reason}${hint}]\n`);
  }
}

/** A stored message as the live events carry it, to print what arrived while nobody listened. */
function printRecord(r: MessageRecord, json: boolean): void {
  if (r.kind === 'unreadable') {
    const u = r.unreadable ?? { reason: 'unknown', unsupported: false };
    printUnreadable({ messageId: r.messageId, conversation: r.conversation, sender: r.sender, senderDevice: r.senderDevice, outgoing: r.outgoing, ...u, serverTs: r.serverTs ?? r.ts }, json);
    return;
  }
  const c = JSON.parse(r.content) as { body?: unknown; reply_to?: string; edit_of?: string };
  printMessage(
    { messageId: r.messageId, conversation: r.conversation, sender: r.sender, senderDevice: r.senderDevice, outgoing: r.outgoing, body: String(c.body ?? ''), ts: r.ts, replyTo: c.reply_to ?? null, editOf: c.edit_of ?? null },
    json,
  );
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      server: { type: 'string' },
      json: { type: 'boolean', default: false },
      passphrase: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      timeout: { type: 'string' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE + '\n');
    return command || values.help ? 0 : 2;
  }
  const dataDir = values.data ?? process.env.GCHAT_DATA ?? join(homedir(), '.gchat', 'default');
  const serverUrl = values.server ?? process.env.GCHAT_SERVER ?? 'http://127.0.0.1:8080';
  const need = (n: number, what: string): string[] => {
    if (args.length < n) throw new UsageError(`${command} needs ${what}`);
    return args;
  };
  const options = () => nodeClientOptions(dataDir);

  switch (command) {
    case 'register': {
      const [username] = need(1, 'USERNAME');
      const password = await ask('GCHAT_PASSWORD', 'password: ');
      const passphrase = values.passphrase ? await ask('GCHAT_PASSPHRASE', 'backup passphrase: ') : undefined;
      const o = options();
      const { client, recoveryCode } = await GChatClient.register(o, { serverUrl, username: username!, password, ...(passphrase !== undefined ? { passphrase } : {}) });
      process.stdout.write(`registered ${client.userId}, device ${client.deviceId}, on ${serverUrl}\n`);
      if (recoveryCode) process.stdout.write(`recovery code (shown once; you need it to add a device): ${recoveryCode}\n`);
      else process.stdout.write('key backup sealed with your passphrase: the server holds the backup and could try to guess a weak passphrase\n');
      await o.store.close();
      return 0;
    }
    case 'add-device': {
      const [username] = need(1, 'USERNAME');
      const password = await ask('GCHAT_PASSWORD', 'password: ');
      const secret = await ask('GCHAT_SECRET', 'recovery code or passphrase: ');
      const o = options();
      const client = await GChatClient.addDevice(o, { serverUrl, username: username!, password, secret });
      process.stdout.write(`added device ${client.deviceId} to ${client.userId}\n`);
      await o.store.close();
      return 0;
    }
    case 'login': {
      const o = options();
      const client = await GChatClient.open(o);
      // A removed device's token no longer works: the server answers 401.
      await client.checkCredentials();
      process.stdout.write(`${client.userId}, device ${client.deviceId}, on ${client.serverUrl}: credentials valid\n`);
      await o.store.close();
      return 0;
    }
    case 'send': {
      const [to, ...words] = need(2, 'USER and TEXT');
      const o = options();
      const client = await GChatClient.open(o);
      const timeoutSeconds = Number(values.timeout ?? 60);
      if (!(timeoutSeconds > 0)) throw new UsageError('--timeout needs a positive number of seconds');
      let id: string | null = null;
      let told = false;
      // Messages that arrive while sending are stored by the SDK and stay unseen: listen shows them.
      const outcome = new Promise<{ status: string; failure: string | null }>((resolve) => {
        client.on('status', (s) => {
          if (s.messageId !== id) return;
          if (s.status !== 'pending') return resolve(s);
          if (s.failure && !told) {
            // At once, not after the timeout: the user must know the message waits and will go.
            told = true;
            const why = /^queued: ([^;]*)/.exec(s.failure)?.[1] ?? s.failure;
            process.stderr.write(`gchat: ${s.messageId} queued: ${why}; it goes out when the server is back (waiting up to ${timeoutSeconds} s; after that the next gchat command sends it)\n`);
          }
        });
        setTimeout(() => resolve({ status: 'pending', failure: 'not accepted yet; it stays in the outbox and is sent by the next gchat command' }), timeoutSeconds * 1000).unref();
      });
      await client.start();
      id = await client.sendText(to!, words.join(' '));
      const r = await outcome;
      await client.stop();
      await o.store.close();
      if (r.status === 'failed') throw new Error(`message ${id} failed: ${r.failure}`);
      process.stdout.write(r.status === 'pending' ? `${id} pending: ${r.failure}\n` : `${id} ${r.status}\n`);
      return r.status === 'pending' ? 3 : 0;
    }
    case 'listen':
    case 'chat': {
      const peer = command === 'chat' ? need(1, 'USER')[0]! : null;
      const o = options();
      const client = await GChatClient.open(o);
      const mine = (conversation: string): boolean => !peer || conversation === peer;
      // First what arrived while nobody listened (e.g. during a `gchat send`), then live messages.
      const waiting = (await client.unseen()).filter((r) => mine(r.conversation));
      for (const r of waiting) printRecord(r, values.json);
      await client.markSeen(waiting.map((r) => r.messageId));
      for (const r of waiting) if (!r.outgoing && r.kind === 'text') await client.markRead(r.conversation, [r.messageId]);
      client.on('message', (m) => {
        if (!mine(m.conversation)) return;
        printMessage(m, values.json);
        void client.markSeen([m.messageId]);
        if (!m.outgoing) void client.markRead(m.conversation, [m.messageId]);
      });
      client.on('unreadable', (m) => {
        if (!mine(m.conversation)) return;
        printUnreadable(m, values.json);
        void client.markSeen([m.messageId]);
      });
      client.on('keyChange', ({ userId }) => process.stderr.write(`gchat: ${userId}'s account key changed: compare safety numbers, then 'gchat accept-key ${userId}'\n`));
      client.on('connection', (s) => {
        if (!values.json) process.stderr.write(`(${s})\n`);
      });
      if (peer) client.on('status', (s) => s.status === 'failed' && process.stderr.write(`gchat: message ${s.messageId} failed: ${s.failure}\n`));
      await client.start();
      const done = new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        if (peer) {
          const rl = createInterface({ input: process.stdin });
          rl.on('line', (line) => {
            if (line.trim()) void client.sendText(peer, line);
          });
          rl.on('close', () => setTimeout(resolve, 2000));
        }
      });
      await done;
      await client.stop();
      await o.store.close();
      return 0;
    }
    case 'contacts': {
      const o = options();
      const client = await GChatClient.open(o);
      for (const c of await client.contacts()) {
        const state = c.changedAk ? 'KEY CHANGED (accept-key to continue)' : c.verified ? 'verified' : 'unverified';
        process.stdout.write(`${c.userId}\t${state}\tdevices: ${(c.devices ?? []).map((d) => d.id).join(',') || '-'}\n`);
      }
      await o.store.close();
      return 0;
    }
    case 'safety-number': {
      const [user] = need(1, 'USER');
      const o = options();
      const client = await GChatClient.open(o);
      await client.lookup(user!);
      process.stdout.write(`${await client.safetyNumber(user!)}\n`);
      await o.store.close();
      return 0;
    }
    case 'verify':
    case 'accept-key': {
      const [user] = need(1, 'USER');
      const o = options();
      const client = await GChatClient.open(o);
      if (command === 'verify') await client.markVerified(user!);
      else await client.acceptKeyChange(user!);
      process.stdout.write(`${user}: ${command === 'verify' ? 'verified' : 'new account key accepted (unverified)'}\n`);
      await o.store.close();
      return 0;
    }
    case 'backup': {
      const [sub, file] = need(1, 'export FILE, import FILE or new');
      const o = options();
      const client = await GChatClient.open(o);
      const api = new GChatApi(client.serverUrl, ((await o.store.get('identity')) as { token: string }).token);
      if (sub === 'export') {
        if (!file) throw new UsageError('backup export needs FILE');
        writeFileSync(file, toBase64url(await api.getBackup(client.userId)) + '\n', { mode: 0o600 });
        process.stdout.write(`backup written to ${file}\n`);
      } else if (sub === 'import') {
        if (!file) throw new UsageError('backup import needs FILE');
        const blob = fromBase64url(readFileSync(file, 'utf8').trim());
        const secret = await ask('GCHAT_SECRET', 'recovery code or passphrase of that backup: ');
        const { openBackup } = await import('../protocol/backup.js');
        const seed = await openBackup(blob, secret);
        if (toBase64url(seed) !== ((await o.store.get('identity')) as { akSeed: string }).akSeed) throw new Error("that backup does not hold this account's key");
        await api.putBackup(client.userId, blob);
        process.stdout.write('backup uploaded\n');
      } else if (sub === 'new') {
        const passphrase = values.passphrase ? await ask('GCHAT_PASSPHRASE', 'new backup passphrase: ') : undefined;
        const code = await client.replaceBackup(passphrase);
        process.stdout.write(code ? `new recovery code (shown once; the old one no longer works): ${code}\n` : 'backup sealed with your new passphrase\n');
      } else throw new UsageError(`unknown backup command: ${sub}`);
      await o.store.close();
      return 0;
    }
    default:
      throw new UsageError(`unknown command: ${command} (gchat --help)`);
  }
}

function describe(e: unknown): string {
  if (e instanceof ApiRequestError) return `server refused (${e.status} ${e.code}): ${e.message}`;
  if (e instanceof NetworkError) return `cannot reach the server: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`gchat: ${describe(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
