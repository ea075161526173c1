/**
 * A send's result as an answer: the REST routes return the answer or throw the ApiError; the
 * stream's `sent` frame carries the same status and body (HttpOutcome). Codes and statuses are
 * errors.ts's table.
 */
import { ApiError, errorBody, type ErrorBody } from '../errors.js';
import { BacklogFullError } from './group-commit.js';
import type { SendAnswer } from './schemas.js';
import type { SendResult } from './send-service.js';

export interface HttpOutcome {
  readonly status: number;
  readonly body: SendAnswer | ErrorBody;
}

/** The answer of an accepted send, or the refusal to throw. */
export function sendAnswer(r: SendResult): SendAnswer {
  switch (r.kind) {
    case 'accepted':
      return r.answer;
    case 'mismatch':
      throw new ApiError('device_mismatch', 'the copies do not match the current devices', undefined, {
        missing: r.missing,
        extra: r.extra,
        stale: r.stale,
      });
    case 'conflict':
      throw new ApiError('message_id_conflict', 'this message_id was already sent with different content');
    case 'unknown_recipient':
      throw new ApiError('not_found', 'no such account');
    case 'queue_full':
      throw new ApiError(
        'queue_full',
        r.share ? "this sender's share of a recipient device's queue is full; other senders still get through" : "a recipient device's queue is full",
        undefined,
        { devices: r.devices },
      );
    case 'invalid':
      throw new ApiError('inconsistent_request', r.reason);
    case 'too_large':
      throw new ApiError('payload_too_large', r.reason);
    case 'not_sent':
      throw new ApiError('not_found', 'this device sent no message with this message_id within the retention');
  }
}

/** A send that threw: the backlog bound (429), or the database failing (503; retry is safe). */
export function sendFailure(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof BacklogFullError) return new ApiError('rate_limited', 'too many sends waiting; retry shortly', Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
  return new ApiError('unavailable', 'the message could not be stored; retrying with the same message_id is safe');
}

/** The REST answer to a send as the stream carries it. */
export function sendOutcome(r: SendResult): HttpOutcome {
  try {
    return { status: 200, body: sendAnswer(r) };
  } catch (e) {
    return errorOutcome(sendFailure(e));
  }
}

export function errorOutcome(e: ApiError): HttpOutcome {
  return { status: e.status, body: errorBody(e) };
}
