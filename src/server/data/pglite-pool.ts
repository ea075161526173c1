/**
 * A node-postgres-shaped pool over one PGlite instance, for TypeORM's postgres driver.
 *
 * PGlite is a single connection: two transactions interleaved on it are not isolated (a ROLLBACK
 * of one undoes the other's work). This pool therefore hands its one client to one holder at a
 * time: `connect` waits until the previous holder released it. A TypeORM query runner holds the
 * client from its first query to its release, so every transaction (and every lone query) runs
 * alone, in arrival order. Code holding a transaction must not open another one (it would wait
 * for itself); use the transaction's own manager inside it.
 *
 * Unlike typeorm-pglite, each pool is bound to the instance it is given (no process-wide
 * singleton), so tests and tools can open several databases in one process.
 */
import { EventEmitter } from 'node:events';
import type { PGlite, Results } from '@electric-sql/pglite';

/** What TypeORM reads from a node-postgres result. */
interface PgResult {
  rows: unknown[];
  rowCount: number;
  command: string | undefined;
  fields: { name: string; dataTypeID: number }[];
}

type Release = (err?: unknown) => void;
type ConnectCallback = (err: Error | null, client: PGliteClient | null, release: Release) => void;

/** First-come first-served lock. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let unlock!: () => void;
    const held = new Promise<void>((resolve) => (unlock = resolve));
    const acquired = this.tail.then(() => unlock);
    this.tail = this.tail.then(() => held);
    return acquired;
  }
}

function toPgResult(r: Results): PgResult {
  const command = (r as { command?: string }).command;
  const affected = r.affectedRows ?? 0;
  const changes = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
  return { rows: r.rows, rowCount: changes ? affected : r.rows.length, command, fields: [...r.fields] };
}

class PGliteClient extends EventEmitter {
  constructor(private readonly db: PGlite) {
    super();
  }

  async query(text: string, params?: unknown[]): Promise<PgResult> {
    if (params && params.length > 0) return toPgResult(await this.db.query(text, params));
    // Without parameters the simple protocol is used, which also runs multi-statement strings;
    // like node-postgres, the last statement's result is returned.
    const results = await this.db.exec(text);
    const last = results[results.length - 1];
    return last ? toPgResult(last) : { rows: [], rowCount: 0, command: undefined, fields: [] };
  }
}

/** The `driver` option for TypeORM's postgres data source: `{ Pool }` bound to `db`. */
export function pglitePoolDriver(db: PGlite): { Pool: new (options?: unknown) => EventEmitter } {
  const mutex = new Mutex();
  const client = new PGliteClient(db);

  class Pool extends EventEmitter {
    /** TypeORM passes connection options; there is nothing to connect to. */
    constructor(_options?: unknown) {
      super();
    }

    /** The callback form TypeORM uses; the client is this caller's until it calls `release`. */
    connect(callback: ConnectCallback): void {
      mutex.lock().then((unlock) => {
        let released = false;
        const release: Release = () => {
          if (released) return;
          released = true;
          unlock();
        };
        callback(null, client, release);
      }, (e: unknown) => callback(e instanceof Error ? e : new Error(String(e)), null, () => undefined));
    }

    async query(text: string, params?: unknown[]): Promise<PgResult> {
      const unlock = await mutex.lock();
      try {
        return await client.query(text, params);
      } finally {
        unlock();
      }
    }

    /** The PGlite instance is closed by its owner (see db.ts), not by TypeORM. */
    end(callback?: (err: Error | null) => void): void {
      callback?.(null);
    }
  }

  return { Pool };
}
