/** Conversions at the SQL edge: node-postgres and PGlite return bigint and bytea differently. */

/** A bigint column as a JS number (node-postgres gives a string, PGlite a number). */
export function num(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'bigint' || typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new Error('expected an integer column');
  return n;
}

/** A bytea column as a fresh plain Uint8Array (node-postgres gives a Buffer). */
export function bytes(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new Error('expected a bytea column');
  return new Uint8Array(v);
}

export function date(v: unknown): Date {
  if (v instanceof Date) return v;
  if (typeof v === 'string') return new Date(v);
  throw new Error('expected a timestamp column');
}

/**
 * The VALUES list of a multi-row INSERT: `shape` (e.g. `(?, ?, FALSE, ?)`) repeated `rows` times,
 * its `?` numbered `$1, $2, ...` across the rows.
 */
export function valuesList(rows: number, shape: string): string {
  let n = 0;
  return Array.from({ length: rows }, () => shape.replace(/\?/g, () => `$${++n}`)).join(', ');
}
