/**
 * The databases the server tests run against: PGlite always (in memory, from a cached empty
 * template so each file starts in well under a second), and the real PostgreSQL at DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/test), in a fresh database per test file so files
 * run in parallel. An unreachable PostgreSQL skips its variant with a loud warning, except under
 * CI=true, where it fails.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { describe } from 'vitest';
import { openDatabase, type Database } from '../../src/server/db.js';

export type DatabaseKind = 'pglite' | 'postgres';

export const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  readonly kind: DatabaseKind;
  /** Migrated and empty. */
  readonly db: Database;
  /** Closes the database and, on PostgreSQL, drops it. */
  close(): Promise<void>;
}

let reachable: Promise<string | null> | undefined;

/** Null when PostgreSQL answers, else why not. */
function postgresProblem(): Promise<string | null> {
  return (reachable ??= (async () => {
    const c = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return null;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    } finally {
      await c.end().catch(() => undefined);
    }
  })());
}

/** The kinds to run, with a warning (or, under CI, an error) when PostgreSQL is not there. */
export async function databaseKinds(): Promise<DatabaseKind[]> {
  const problem = await postgresProblem();
  if (problem === null) return ['pglite', 'postgres'];
  if (process.env.CI === 'true') throw new Error(`CI=true and PostgreSQL at ${POSTGRES_URL} is unreachable: ${problem}`);
  console.warn(`\n!!!!! PostgreSQL at ${POSTGRES_URL} is unreachable (${problem}): SKIPPING the PostgreSQL variant of the server tests !!!!!\n`);
  return ['pglite'];
}

function pgliteVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require('@electric-sql/pglite/package.json') as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A fresh in-memory PGlite, restored from an empty cluster made once per machine (initdb is slow). */
export async function freshPglite(): Promise<PGlite> {
  const template = path.join(tmpdir(), `gchat-pglite-template-${pgliteVersion()}.tar`);
  if (existsSync(template)) {
    try {
      return await PGlite.create({ loadDataDir: new Blob([readFileSync(template)]) });
    } catch {
      // A damaged template: make a new one below.
    }
  }
  const db = await PGlite.create();
  const dump = await db.dumpDataDir('none');
  const tmp = `${template}.${randomUUID()}`;
  writeFileSync(tmp, new Uint8Array(await dump.arrayBuffer()));
  renameSync(tmp, template);
  return db;
}

export async function openTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const instance = await freshPglite();
    const db = await openDatabase({ kind: 'pglite', instance });
    await db.migrate();
    return {
      kind,
      db,
      async close() {
        await db.close();
        await instance.close();
      },
    };
  }
  const name = `gchat_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const db = await openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 10 });
  await db.migrate();
  return {
    kind,
    db,
    async close() {
      await db.close();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** `describe(title [kind])` once per database kind; `body` gets the kind. */
export async function describeEachDatabase(title: string, body: (kind: DatabaseKind) => void): Promise<void> {
  for (const kind of await databaseKinds()) describe(`${title} [${kind}]`, () => body(kind));
}

/** Server I's tables, every row, in a stable order, bytes as hex: to assert that nothing changed. */
export async function snapshotTables(db: Database): Promise<string> {
  const tables: [string, string][] = [
    ['accounts', 'username'],
    ['devices', 'account_id, device_id'],
    ['signed_prekeys', 'account_id, device_id, spk_id'],
    ['one_time_prekeys', 'account_id, device_id, opk_id'],
    ['pq_prekeys', 'account_id, device_id, pqpk_id'],
  ];
  const out: Record<string, unknown[]> = {};
  await db.transaction(async (tx) => {
    for (const [t, order] of tables) out[t] = (await tx.query(`SELECT * FROM ${t} ORDER BY ${order}`)).rows;
  });
  return JSON.stringify(out, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'bigint' || typeof v === 'number' ? String(v) : v,
  );
}
