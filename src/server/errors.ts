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
 * What may be logged of an unexpected error. A database error's parameters and detail can hold
 * keys, token hashes or user input, so only its SQLSTATE, constraint and SQL text are kept.
 */
export function loggableError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const driver = (err as { driverError?: unknown }).driverError;
  if (driver && typeof driver === 'object') {
    const d = driver as { code?: unknown; constraint?: unknown; table?: unknown };
    return { name: err.name, sqlstate: d.code, constraint: d.constraint, table: d.table, query: (err as { query?: unknown }).query };
  }
  return { name: err.name, message: err.message, stack: err.stack };
}
