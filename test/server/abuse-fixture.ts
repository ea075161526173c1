/**
 * Shared by the abuse suites: a tally of hostile requests, a snapshot of every table (to assert
 * that refused input changed nothing), raw HTTP over a socket (for what fetch will not send), and
 * an honest pair of real clients whose send -> receive round trip is measured while the abuse runs.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { expect } from 'vitest';
import { toBase64url } from '../../src/protocol/bytes.js';
import { TYPE_MESSAGE, WIRE_VERSION } from '../../src/protocol/wire.js';
import { loadConfig } from '../../src/server/config.js';
import type { Database } from '../../src/server/db.js';
import { CHECK_BUCKET_MS } from '../../src/server/push/dispatcher.js';
import { registered, waitFor } from '../helpers/clients.js';
import type { CallOptions, CallResult, TestServer } from '../helpers/server.js';

/** Counts what the hostile side sent and how the server answered. */
export class AbuseTally {
  requests = 0;
  client4xx = 0;
  server5xx = 0;
  /** Connections the server closed without an HTTP answer (what Node's parser refuses, idle sockets). */
  closed = 0;
  readonly fiveHundreds: string[] = [];
  readonly roundTrips: number[] = [];

  /** Records one answer; a 5xx is remembered with `what` for the failure message. */
  record(status: number | null, what: string): void {
    this.requests++;
    if (status === null) this.closed++;
    else if (status >= 500) {
      this.server5xx++;
      this.fiveHundreds.push(`${what} -> ${status}`);
    } else if (status >= 400) this.client4xx++;
  }

  /**
   * `call` through the tally. A connection reset before any answer is tried once more: fetch may
   * reuse a kept-alive connection the server is just closing (a client-side race, not an answer).
   */
  async call(server: TestServer, method: string, path: string, opts: CallOptions = {}, what = `${method} ${path}`): Promise<CallResult> {
    let r: CallResult;
    try {
      r = await server.call(method, path, opts);
    } catch {
      r = await server.call(method, path, opts);
    }
    this.record(r.status, what);
    return r;
  }

  p50(): number {
    const s = [...this.roundTrips].sort((a, b) => a - b);
    return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
  }

  figure(name: string, when: 'during' | 'between' = 'during'): string {
    return `abuse(${name}): ${this.requests} requests, ${this.client4xx} 4xx, ${this.server5xx} 5xx, ${this.closed} closed without an answer, honest client round-trip p50 ${this.p50().toFixed(0)} ms ${when} abuse (${this.roundTrips.length} round trips)`;
  }
}

/** Tables whose rows change with every request by design (counters), left out of snapshots. */
const VOLATILE = /rate|migration|lock/i;

const tableNames = new WeakMap<Database, string[]>();

/**
 * A digest of every row of every table of the public schema (counters aside), per table, in one
 * statement: equal digests, equal contents.
 */
export async function snapshotAll(db: Database): Promise<Record<string, string>> {
  let names = tableNames.get(db);
  if (!names) {
    const rows = (await db.transaction((tx) => tx.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`))).rows as { table_name: string }[];
    names = rows.map((r) => r.table_name).filter((t) => !VOLATILE.test(t));
    tableNames.set(db, names);
  }
  const sql = names
    .map((t) => `SELECT '${t}' AS t, count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS d FROM "${t}" x`)
    .join(' UNION ALL ');
  const rows = (await db.transaction((tx) => tx.query(sql))).rows as { t: string; d: string }[];
  return Object.fromEntries(rows.map((r) => [r.t, r.d]));
}

export interface RawAnswer {
  /** The HTTP status, or null when the server closed (or we gave up) without one. */
  readonly status: number | null;
  readonly head: string;
  readonly body: string;
  /** The server closed the connection. */
  readonly closed: boolean;
}

/**
 * Writes `bytes` to the server on a fresh TCP connection and reads until the server closes it or
 * `timeoutMs` passes. Send `Connection: close` to have the answer end the connection.
 */
export function rawRequest(url: string, bytes: Buffer | string | (Buffer | string)[], timeoutMs = 30_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: hostname, port: Number(port) });
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : null, head: split >= 0 ? text.slice(0, split) : text, body: split >= 0 ? text.slice(split + 4) : '', closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => {
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) socket.write(b);
    });
  });
}

/** A body's JSON, if it parses. */
export function jsonOf(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** The error answer every refusal carries: `{ error: { code, message } }`. */
export function expectErrorJson(json: unknown, what: string): void {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  expect(typeof e?.code, `${what}: an error JSON body, got ${JSON.stringify(json)?.slice(0, 200)}`).toBe('string');
}

/** A §5-shaped sealed body (version and type bytes, then noise): what a copy's `body` looks like on the wire. */
export function sealedBody(bytes = 64): string {
  return toBase64url(new Uint8Array([WIRE_VERSION, TYPE_MESSAGE, ...randomBytes(bytes - 2)]));
}

/** Two real SDK clients that exchange messages; each round trip is timed into the tally. */
export class HonestPair {
  private n = 0;
  private constructor(
    readonly alice: Awaited<ReturnType<typeof registered>>,
    readonly bob: Awaited<ReturnType<typeof registered>>,
    readonly bobName: string,
  ) {}

  static async start(serverUrl: string, prefix: string): Promise<HonestPair> {
    const alice = await registered(serverUrl, `${prefix}alice`);
    const bob = await registered(serverUrl, `${prefix}bob`);
    await alice.client.start();
    await bob.client.start();
    return new HonestPair(alice, bob, `${prefix}bob`);
  }

  /** Alice sends bob a text and waits until bob's app shows it; returns the milliseconds it took. */
  async roundTrip(tally?: AbuseTally, timeoutMs = 60_000): Promise<number> {
    const text = `honest ${++this.n} ${Date.now()}`;
    const t0 = performance.now();
    await this.alice.client.sendText(this.bobName, text);
    await waitFor(`bob to receive "${text}"`, () => this.bob.seen.messages.some((m) => m.body === text), timeoutMs);
    const ms = performance.now() - t0;
    tally?.roundTrips.push(ms);
    return ms;
  }

  /** Round trips, one after another, until `stop()` resolves; for "keeps serving during the abuse". */
  async during<T>(tally: AbuseTally, abuse: () => Promise<T>): Promise<T> {
    let running = true;
    const loop = (async () => {
      let count = 0;
      while (running || count === 0) {
        await this.roundTrip(tally);
        count++;
      }
      return count;
    })();
    try {
      return await abuse();
    } finally {
      running = false;
      await loop;
    }
  }

  async stop(): Promise<void> {
    await this.alice.client.stop();
    await this.bob.client.stop();
  }
}

/** The server still answers a plain request (it did not crash or wedge). */
export async function expectServing(server: TestServer): Promise<void> {
  const r = await fetch(`${server.url}/live`);
  expect(r.status).toBe(200);
}

/**
 * How long the tables must stay unchanged to count as settled: longer than the work a commit
 * defers in the server (the push check after its grace, which stamps push_registrations), or a
 * wake-up due to an earlier send lands in the middle of the next comparison.
 */
const QUIET_MS = loadConfig({}).push.graceMs + CHECK_BUCKET_MS + 500;

/**
 * Waits until the tables stop changing (equal digests for QUIET_MS, read every 500 ms): the honest
 * pair's receipts and acks trail its round trip, and would otherwise show in the next comparison.
 */
export async function settle(db: Database, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = JSON.stringify(await snapshotAll(db));
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const now = JSON.stringify(await snapshotAll(db));
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= QUIET_MS) return;
    if (Date.now() > deadline) throw new Error('the tables kept changing');
  }
}

/** The tables whose digests differ. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]);
}
