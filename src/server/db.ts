/**
 * The one TypeORM data source, on PostgreSQL (DATABASE_URL) or on embedded PGlite, and the
 * transaction helper every repository goes through.
 *
 * Rules for code that uses it (Server II included):
 * - all database work runs inside `db.transaction(tx => ...)`, with `tx.query` or `tx.manager`;
 * - never open a second transaction (or use `db.dataSource.manager`) inside one: on PGlite the
 *   single connection is held by the running transaction and the inner call would wait forever;
 * - on PGlite transactions run one at a time (see data/pglite-pool.ts); on PostgreSQL they run
 *   concurrently under READ COMMITTED, so claims use row locks (FOR UPDATE SKIP LOCKED).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { DataSource, type EntityManager } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';
import { pglitePoolDriver } from './data/pglite-pool.js';

export type DatabaseTarget =
  | { readonly kind: 'postgres'; readonly url: string; readonly poolSize?: number }
  | { readonly kind: 'pglite'; readonly dataDir: string }
  /** An instance the caller owns (tests: in memory); `close` leaves it open. */
  | { readonly kind: 'pglite'; readonly instance: PGlite };

export interface QueryResult<R> {
  readonly rows: R[];
  /** Rows changed by INSERT/UPDATE/DELETE, rows returned by SELECT. */
  readonly rowCount: number;
}

/** One transaction. Parameters are `$1, $2, ...`; bytea parameters are Uint8Array. */
export interface Tx {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  readonly manager: EntityManager;
}

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly dataSource: DataSource;
  /** The embedded instance (for PGlite's own listen/notify), undefined on PostgreSQL. */
  readonly pglite: PGlite | undefined;
  /** The PostgreSQL URL (for a dedicated LISTEN connection), undefined on PGlite. */
  readonly url: string | undefined;
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** One statement on its own (autocommit: no BEGIN/COMMIT round trips); never inside `transaction`. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

/** Any 64-bit number: the advisory lock that keeps two instances from migrating at once. */
const MIGRATION_LOCK = 0x6763686174; // "gchat"

function wrap(manager: EntityManager): Tx {
  return {
    manager,
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const runner = manager.queryRunner;
      if (!runner) throw new Error('Tx.query used outside a transaction');
      const r = await runner.query(sql, [...params], true);
      return { rows: (r.records ?? []) as R[], rowCount: r.affected ?? r.records?.length ?? 0 };
    },
  };
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  let pglite: PGlite | undefined;
  let ownsPglite = false;
  if (target.kind === 'pglite') {
    if ('instance' in target) {
      pglite = target.instance;
    } else {
      mkdirSync(path.dirname(path.resolve(target.dataDir)), { recursive: true });
      // Loaded only when used: PGlite's WebAssembly costs ~46 MB a server on PostgreSQL never needs.
      const { PGlite } = await import('@electric-sql/pglite');
      pglite = await PGlite.create(target.dataDir);
      ownsPglite = true;
    }
  }
  const dataSource = new DataSource({
    type: 'postgres',
    ...(pglite ? { driver: pglitePoolDriver(pglite) } : { url: (target as { url: string }).url }),
    poolSize: target.kind === 'postgres' ? (target.poolSize ?? 10) : 1,
    // The schema comes from migrations/ only; nothing is created behind our back.
    synchronize: false,
    migrationsRun: false,
    installExtensions: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    logging: false,
  });
  try {
    await dataSource.initialize();
  } catch (e) {
    if (ownsPglite) await pglite?.close();
    throw e;
  }

  const db: Database = {
    kind: target.kind,
    dataSource,
    pglite,
    url: target.kind === 'postgres' ? target.url : undefined,
    transaction: (fn) => dataSource.transaction((manager) => fn(wrap(manager))),
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const runner = dataSource.createQueryRunner();
      try {
        const r = await runner.query(sql, [...params], true);
        return { rows: (r.records ?? []) as R[], rowCount: r.affected ?? r.records?.length ?? 0 };
      } finally {
        await runner.release();
      }
    },
    async migrate() {
      if (target.kind === 'pglite') return (await dataSource.runMigrations({ transaction: 'each' })).map((m) => m.name);
      const lock = dataSource.createQueryRunner();
      try {
        await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
        return (await dataSource.runMigrations({ transaction: 'each' })).map((m) => m.name);
      } finally {
        await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
        await lock.release();
      }
    },
    async close() {
      if (dataSource.isInitialized) await dataSource.destroy();
      if (ownsPglite) await pglite?.close();
    },
  };
  return db;
}
