/**
 * The narrow SQL seam the delivery code runs on: single statements only (each batch of sends is
 * one read and one write statement, so no multi-statement transaction is needed). Two
 * implementations: a node-postgres pool (PostgreSQL, the fast path; LISTEN/NOTIFY has its own
 * connection in wake-bus.ts) and the app's Database (db.ts), used on embedded PGlite, where it
 * hands the single connection to one statement at a time.
 */
import pg from 'pg';

export interface SqlDatabase {
  /**
   * `prepared`: a name to keep this statement prepared under on each connection (planned once, not
   * on every batch); only for a fixed text, since each name holds one prepared statement.
   */
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[], prepared?: string): Promise<R[]>;
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

  async query<R extends object>(text: string, params?: readonly unknown[], prepared?: string): Promise<R[]> {
    const values = params as unknown[] | undefined;
    const res = prepared ? await this.pool.query({ name: prepared, text, ...(values ? { values } : {}) }) : await this.pool.query(text, values);
    return res.rows as R[];
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

/** Adapter over the app's Database (db.ts): every statement runs through its transaction helper. */
export class AppSqlDatabase implements SqlDatabase {
  readonly kind: 'postgres' | 'embedded';

  constructor(private readonly db: AppDatabaseLike) {
    this.kind = db.kind === 'postgres' ? 'postgres' : 'embedded';
  }

  query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return this.db.transaction(async (tx) => (await tx.query<R>(text, params)).rows);
  }
}
