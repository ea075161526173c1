/**
 * The server's one error class. A code is stable and says what went wrong; the table below is the
 * only place that turns a code into an HTTP status. Messages never carry a key, a token or a body.
 */
const STATUS = {
  invalid_request: 400,
  malformed_json: 400,
  bad_signature: 400,
  bad_key: 400,
  unauthorized: 401,
  bad_credentials: 401,
  forbidden: 403,
  not_found: 404,
  username_taken: 409,
  device_id_mismatch: 409,
  too_many_devices: 409,
  prekey_id_reused: 409,
  too_many_prekeys: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ApiErrorCode = keyof typeof STATUS;
export const API_ERROR_CODES = Object.keys(STATUS) as ApiErrorCode[];

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** Seconds after which a rate-limited request may be retried (sent as Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  get status(): number {
    return STATUS[this.code];
  }
}

export function statusOf(code: ApiErrorCode): number {
  return STATUS[code];
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ApiErrorCode; message: string };
}

export function errorBody(e: ApiError): ErrorBody {
  return { error: { code: e.code, message: e.message } };
}

/**
 * What may be logged of an unexpected error. A database error's message, detail, hint, stack
 * and query parameters can quote the client's input (`invalid input syntax for type bigint:
 * "…"`) or hold keys and token hashes, so of a database error (PostgreSQL's or PGlite's, bare
 * or wrapped by the ORM) only its SQLSTATE, severity, constraint, table and routine are kept.
 */
export function loggableError(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { type: typeof err };
  const driver = (err as { driverError?: unknown }).driverError;
  const db = databaseError(driver) ?? databaseError(err);
  if (db) return { name: err instanceof Error ? err.name : 'DatabaseError', ...db };
  if (!(err instanceof Error)) return { type: 'object' };
  return { name: err.name, message: err.message, stack: err.stack };
}

/** The harmless fields of a PostgreSQL-protocol error (a five-character SQLSTATE and a severity), or null. */
function databaseError(e: unknown): Record<string, unknown> | null {
  if (typeof e !== 'object' || e === null) return null;
  const d = e as { code?: unknown; severity?: unknown; constraint?: unknown; table?: unknown; routine?: unknown };
  if (typeof d.code !== 'string' || !/^[0-9A-Z]{5}$/.test(d.code) || typeof d.severity !== 'string') return null;
  const out: Record<string, unknown> = { sqlstate: d.code };
  for (const k of ['severity', 'constraint', 'table', 'routine'] as const) if (typeof d[k] === 'string') out[k] = d[k];
  return out;
}
