/**
 * The narrow SQL seam the delivery code runs on. Two implementations: a node-postgres pool
 * (PostgreSQL, the fast path, with LISTEN/NOTIFY) and the app's Database (db.ts), used on
 * embedded PGlite, where it serialises transactions on the single connection.
 */
import pg from 'pg';

export interface SqlClient {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface SqlDatabase extends SqlClient {
  /** Runs fn in one transaction: committed when fn resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** PostgreSQL proper (several instances, LISTEN/NOTIFY) or an embedded single-process engine. */
  readonly kind: 'postgres' | 'embedded';
}

/** A pg.Pool owned by the delivery module: small, separate from the ORM's, closed on shutdown. */
export class PgSqlDatabase implements SqlDatabase {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;

  constructor(connectionString: string, max: number) {
    this.pool = new pg.Pool({ connectionString, max, application_name: 'gchat-delivery' });
    // An idle client that loses its connection must not crash the process; the pool replaces it.
    this.pool.on('error', () => undefined);
  }

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    const res = await this.pool.query(text, params as unknown[] | undefined);
    return res.rows as R[];
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const tx: SqlClient = {
        async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
          const res = await client.query(text, params as unknown[] | undefined);
          return res.rows as R[];
        },
      };
      const out = await fn(tx);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The app's database (db.ts), as far as this adapter needs it. */
export interface AppDatabaseLike {
  readonly kind: 'postgres' | 'pglite';
  transaction<T>(fn: (tx: { query<R>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[] }> }) => Promise<T>): Promise<T>;
}

/**
 * Adapter over the app's Database (db.ts). On PGlite every statement, even a lone read, runs in
 * the app's transaction helper, which hands the single connection to one caller at a time.
 */
export class AppSqlDatabase implements SqlDatabase {
  readonly kind: 'postgres' | 'embedded';

  constructor(private readonly db: AppDatabaseLike) {
    this.kind = db.kind === 'postgres' ? 'postgres' : 'embedded';
  }

  query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return this.db.transaction(async (tx) => (await tx.query<R>(text, params)).rows);
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn({
        async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
          return (await tx.query<R>(text, params)).rows;
        },
      }),
    );
  }
}
