/**
 * Loaded in Chromium by browser.test.ts: runs the protocol vectors with the browser's own WebCrypto
 * (the same src/protocol the Node tests run, unchanged), and exercises the IndexedDB store.
 */
import { IndexedDbKeyValueStore } from '../../src/client/stores/indexeddb.js';
import { defaultCrypto } from '../../src/protocol/primitives.js';
import type { CaseResult, TopicRunner, VectorFile } from '../../scripts/vectors/types.js';
import { run as backup } from '../../scripts/vectors/backup.js';
import { run as keys } from '../../scripts/vectors/keys.js';
import { run as padding } from '../../scripts/vectors/padding.js';
import { run as session } from '../../scripts/vectors/session.js';
import { run as x3dh } from '../../scripts/vectors/x3dh.js';

const runners: Record<string, TopicRunner> = { backup, keys, padding, session, x3dh };

async function runVectors(file: VectorFile): Promise<CaseResult[]> {
  const runner = runners[file.topic];
  if (!runner) throw new Error(`no runner for ${file.topic}`);
  return runner(file);
}

async function kvRoundTrip(name: string): Promise<unknown> {
  const kv = await IndexedDbKeyValueStore.open(name);
  const before = await kv.list('');
  await kv.write([
    ['sessions/bob/1', { n: 1 }],
    ['sessions/bob/2', [1, 'two', null]],
    ['sessions/carol/1', 'x'],
    ['outbox/a', true],
  ]);
  await kv.write([['outbox/a', undefined]]);
  const result = {
    before,
    bob: await kv.list('sessions/bob/'),
    all: (await kv.list('')).map(([k]) => k),
    one: await kv.get('sessions/carol/1'),
    gone: (await kv.get('outbox/a')) ?? null,
  };
  await kv.close();
  return result;
}

declare global {
  interface Window {
    gchatTest: { provider: string; runVectors: typeof runVectors; kvRoundTrip: typeof kvRoundTrip; hasNodeGlobals: boolean };
  }
}

window.gchatTest = {
  provider: defaultCrypto().name,
  runVectors,
  kvRoundTrip,
  hasNodeGlobals: typeof (globalThis as { process?: unknown }).process !== 'undefined' || typeof (globalThis as { Buffer?: unknown }).Buffer !== 'undefined',
};
