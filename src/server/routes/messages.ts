/**
 * REST side of the delivery model: send and resend (the stream carries the same send), the
 * fallback that lists and acks a device's queue, and the stream's answer to plain HTTP. HTTP
 * only: the declarations validate, the delivery services decide (outcome.ts maps their results).
 */
import type { Delivery } from '../delivery/index.js';
import { ApiError } from '../errors.js';
import { AckAnswer, AckRequest, EnvelopeList, FetchQuery, ResendRequest, SendAnswer, SendRequest } from '../delivery/schemas.js';
import { sendAnswer, sendFailure } from '../delivery/outcome.js';
import { FETCH_PAGE, maxFrameBytes, maxSendPunctuation } from '../delivery/limits.js';
import { tooManyMembers } from '../delivery/frame-guard.js';
import type { Sender, SendResult } from '../delivery/send-service.js';
import { STREAM_PATH, STREAM_SUBPROTOCOL } from '../delivery/stream-socket.js';
import type { AuthContext } from '../services/deps.js';
import { defineRoute, type AnyRoute } from './route.js';

export interface MessagesRoutesDeps {
  readonly delivery: Delivery;
  /** The delivery's view of an authenticated device. */
  readonly sender: (auth: AuthContext) => Sender;
  readonly log?: (msg: string, err?: unknown) => void;
}

export function messageRoutes(deps: MessagesRoutesDeps): AnyRoute[] {
  const { delivery } = deps;
  // A send holds up to maxCopies bodies: its own bound (413 past it).
  const maxBodyBytes = maxFrameBytes(delivery.limits);
  // 413 before JSON.parse for a body with more members than any send can hold (a parse of
  // hundreds of thousands of copies would hold the event loop).
  const punctuation = maxSendPunctuation(delivery.limits);
  const tooBig = (raw: Buffer): boolean => tooManyMembers(raw, punctuation);
  /** Runs a send-like request; a database failure is 503 (retrying with the same message_id is safe). */
  const answer = async (what: string, run: () => Promise<SendResult>) => {
    let r: SendResult;
    try {
      r = await run();
    } catch (err) {
      const e = sendFailure(err);
      if (e.status >= 500) deps.log?.(`${what} failed`, err);
      throw e;
    }
    return sendAnswer(r);
  };

  return [
    defineRoute({
      method: 'post',
      path: '/v1/messages',
      tag: 'messages',
      summary: 'Send one message: one sealed copy per device of the recipient and per other device of the sender',
      description:
        'Idempotent on (sending device, message_id) for the retention period: a retry with the same content answers the same ids; ' +
        'with other content, 409 message_id_conflict. 409 device_mismatch lists missing, extra and stale devices and queues nothing; ' +
        '507 queue_full lists the full devices and queues nothing. The answer comes once every copy is stored.',
      auth: true,
      body: SendRequest,
      maxBodyBytes,
      tooBig,
      success: { status: 200, description: 'stored (or stored before: the same answer)', schema: SendAnswer },
      errors: ['inconsistent_request', 'not_found', 'device_mismatch', 'message_id_conflict', 'rate_limited', 'unavailable', 'queue_full'],
      handler: ({ body, auth }) => answer('send', () => delivery.sends.send(deps.sender(auth), body)),
    }),
    defineRoute({
      method: 'post',
      path: '/v1/messages/resend',
      tag: 'messages',
      summary: 'Send an accepted message again, same message_id, to one device that could not read it (SPEC §7 session-reset)',
      description:
        'Only for a message_id this device sent within the retention, to a current device of the original recipient account or of ' +
        "the sender's own account (not the sending device), under that device's current key: otherwise 409 device_mismatch " +
        '(the device in extra or stale); 404 not_found if this device sent no such message. The copy is queued for that one device; ' +
        'the receiver deduplicates on (sender, message_id).',
      auth: true,
      body: ResendRequest,
      maxBodyBytes,
      tooBig,
      success: { status: 200, description: 'queued for that device', schema: SendAnswer },
      errors: ['inconsistent_request', 'not_found', 'device_mismatch', 'rate_limited', 'unavailable', 'queue_full'],
      handler: ({ body, auth }) => answer('resend', () => delivery.sends.resend(deps.sender(auth), body)),
    }),
    defineRoute({
      method: 'get',
      path: '/v1/messages',
      tag: 'messages',
      summary: "The oldest envelopes of this device's queue (the stream's fallback)",
      auth: true,
      query: FetchQuery,
      success: { status: 200, description: 'a page, oldest first', schema: EnvelopeList },
      errors: [],
      handler: async ({ auth, query }) => {
        const limit = query.limit ?? FETCH_PAGE;
        const rows = await delivery.repo.fetch(deps.sender(auth).deviceRef, [], limit + 1);
        delivery.observer.delivered(Math.min(rows.length, limit));
        return { envelopes: rows.slice(0, limit), more: rows.length > limit };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/messages/ack',
      tag: 'messages',
      summary: "Remove received envelopes from this device's queue",
      description: 'Ids not in this device\'s queue (acked before, or another device\'s) are ignored: `acked` counts the ones removed.',
      auth: true,
      body: AckRequest,
      success: { status: 200, description: 'removed', schema: AckAnswer },
      errors: [],
      handler: async ({ body, auth }) => ({ acked: await delivery.acks.count(deps.sender(auth).deviceRef, body.ids) }),
    }),
    defineRoute({
      method: 'get',
      path: STREAM_PATH,
      tag: 'messages',
      summary: 'WebSocket: the device queue pushed in order, sends, acks',
      description:
        `Upgrade with subprotocol "${STREAM_SUBPROTOCOL}" and the device token as "Authorization: Bearer <token>" or, from a browser, ` +
        `as a second subprotocol "bearer.<token>". Frames are JSON text: the client sends StreamClientFrame, the server StreamServerFrame ` +
        '(see components). Envelopes not acked are sent again on the next connection; "acked" confirms an ack is durable. ' +
        'Close codes: 4001 replaced by a newer connection of the device, 4003 device removed, 1012 server restarting, 1011 ack not stored. ' +
        'A plain GET (no Upgrade) is answered 401 without a valid token, else 426.',
      auth: true,
      success: { status: 101, description: 'switching protocols: the stream is open' },
      errors: ['upgrade_required', 'unavailable'],
      handler: async ({ res }) => {
        res.set('Upgrade', 'websocket');
        throw new ApiError('upgrade_required', `this is a WebSocket endpoint: send Upgrade: websocket with subprotocol ${STREAM_SUBPROTOCOL}`);
      },
    }),
  ];
}
