/** One mapping from a send's result to an HTTP status and body, shared by REST and the stream. */
import type { SendResult } from './send-service.js';
import { BacklogFullError } from './group-commit.js';

export interface HttpOutcome {
  readonly status: number;
  readonly body: unknown;
}

/** Status of each delivery error code (the REST routes and stream frames use the same). */
export const DELIVERY_ERROR_STATUS = {
  invalid_request: 400,
  not_found: 404,
  device_mismatch: 409,
  message_id_conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  queue_full: 507,
  unavailable: 503,
} as const;
export type DeliveryErrorCode = keyof typeof DELIVERY_ERROR_STATUS;

export function errorBody(code: DeliveryErrorCode, message: string, extra: Record<string, unknown> = {}): HttpOutcome {
  // The server's error body (errors.ts: `{ error: { code, message } }`), details beside it.
  return { status: DELIVERY_ERROR_STATUS[code], body: { error: { code, message }, ...extra } };
}

export function sendOutcome(r: SendResult): HttpOutcome {
  switch (r.kind) {
    case 'accepted':
      return { status: 200, body: r.answer };
    case 'mismatch':
      return errorBody('device_mismatch', 'the copies do not match the current devices', {
        missing: r.missing,
        extra: r.extra,
        stale: r.stale,
      });
    case 'conflict':
      return errorBody('message_id_conflict', 'this message_id was already sent with different content');
    case 'unknown_recipient':
      return errorBody('not_found', 'no such account');
    case 'queue_full':
      return errorBody(
        'queue_full',
        r.share ? "this sender's share of a recipient device's queue is full; other senders still get through" : "a recipient device's queue is full",
        { devices: r.devices },
      );
    case 'invalid':
      return errorBody('invalid_request', r.reason);
    case 'too_large':
      return errorBody('payload_too_large', r.reason);
    case 'not_sent':
      return errorBody('not_found', 'this device sent no message with this message_id within the retention');
  }
}

/** A send that threw: the backlog bound (429), or the database failing (503; retry is safe). */
export function sendFailure(err: unknown): HttpOutcome {
  if (err instanceof BacklogFullError) return errorBody('rate_limited', 'too many sends waiting; retry shortly', { retry_after_ms: err.retryAfterMs });
  return errorBody('unavailable', 'the message could not be stored; retrying with the same message_id is safe');
}
