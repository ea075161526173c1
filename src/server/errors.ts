/**
 * The server's one error table and error class. Every refusal the server makes, over REST or on
 * the stream, carries a code from ERRORS; the table is the only place that turns a code into an
 * HTTP status, and the OpenAPI document lists these codes, per route and status, from it.
 * 400 means the request does not match the published schema; 422, that it does but is refused on
 * what no schema can say (a signature, a key, parts that disagree).
 * Messages never carry a key, a token or a body.
 */
export const ERRORS = {
  invalid_request: { status: 400, about: 'the request does not match the schema (path, query or body)' },
  malformed_json: { status: 400, about: 'the body is not JSON' },
  bad_frame: { status: 400, about: 'stream only: a frame that is not JSON text or not a known, well-formed frame' },
  unauthorized: { status: 401, about: 'no valid device token (or the device was removed)' },
  bad_credentials: { status: 401, about: 'wrong username or password' },
  forbidden: { status: 403, about: "the token's device may not act on this account or device" },
  not_found: { status: 404, about: 'no such route, account, device, backup or sent message' },
  username_taken: { status: 409, about: 'the username is taken' },
  device_id_mismatch: { status: 409, about: "device_id is not the account's next_device_id" },
  too_many_devices: { status: 409, about: 'the account has as many devices as it may have' },
  prekey_id_reused: { status: 409, about: 'a prekey id is not above every id of its kind the device used before' },
  too_many_prekeys: { status: 409, about: 'the device would hold more prekeys than it may' },
  device_mismatch: { status: 409, about: 'the copies do not match the current devices (missing, extra, stale listed beside); nothing was queued' },
  message_id_conflict: { status: 409, about: 'this device already sent this message_id with other content' },
  payload_too_large: { status: 413, about: 'the body, a copy, the number of copies or a backup is over its limit' },
  unsupported_media_type: { status: 415, about: 'a body that is not application/json' },
  bad_signature: { status: 422, about: 'a DeviceCert, SPK or PQPK signature does not verify' },
  bad_key: { status: 422, about: 'a public key is not a valid key of its kind' },
  bad_endpoint: { status: 422, about: 'a Web Push endpoint that is not an https URL (http only where allowed) or that carries credentials' },
  inconsistent_request: {
    status: 422,
    about: 'the request matches the schema but its parts disagree (e.g. two copies for one device, a copy for neither party, ids repeated, no last-resort PQPK)',
  },
  upgrade_required: { status: 426, about: 'a WebSocket endpoint asked without Upgrade: websocket' },
  rate_limited: { status: 429, about: 'too many requests; retry after Retry-After seconds' },
  internal: { status: 500, about: 'a fault of the server; never caused by the request' },
  unavailable: { status: 503, about: 'the database is unavailable; the request may be retried (a send with the same message_id)' },
  queue_full: { status: 507, about: "a recipient device's queue is full (devices listed beside); nothing was queued" },
} as const satisfies Record<string, { status: number; about: string }>;

export type ApiErrorCode = keyof typeof ERRORS;
export const API_ERROR_CODES = Object.keys(ERRORS) as ApiErrorCode[];

/** Fields some codes carry beside `error` (device_mismatch: missing, extra, stale; queue_full: devices). */
export type ErrorDetails = Readonly<Record<string, unknown>>;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** Seconds after which a rate-limited request may be retried (sent as Retry-After). */
    readonly retryAfterSeconds?: number,
    readonly details?: ErrorDetails,
  ) {
    super(message);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

export function statusOf(code: ApiErrorCode): number {
  return ERRORS[code].status;
}

/** The JSON body of every error response: `{ error: { code, message } }`, details beside `error`. */
export interface ErrorBody {
  readonly error: { readonly code: ApiErrorCode; readonly message: string };
  readonly [detail: string]: unknown;
}

export function errorBody(e: ApiError): ErrorBody {
  return { ...e.details, error: { code: e.code, message: e.message } };
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
