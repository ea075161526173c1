/**
 * The delivery routes and stream frames in the OpenAPI document, generated from the zod schemas
 * the routes and the stream validate with (schemas.ts), and merged into the app's document.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { AckAnswer, AckRequest, ClientFrame, DeviceMismatch, EnvelopeList, ErrorInfo, ResendRequest, SendAnswer, SendRequest, ServerFrame } from './schemas.js';
import { DELIVERY_ERROR_STATUS } from './outcome.js';
import { STREAM_PATH, STREAM_SUBPROTOCOL } from './stream-socket.js';

const ErrorOut = z.object({ error: ErrorInfo });
const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });

function errors(codes: (keyof typeof DELIVERY_ERROR_STATUS)[]): RouteConfig['responses'] {
  const out: RouteConfig['responses'] = { 401: json(ErrorOut, 'error codes: unauthorized') };
  const byStatus = new Map<number, string[]>();
  for (const c of codes) byStatus.set(DELIVERY_ERROR_STATUS[c], [...(byStatus.get(DELIVERY_ERROR_STATUS[c]) ?? []), c]);
  for (const [status, cs] of byStatus) out[status] = json(status === 409 ? z.union([DeviceMismatch, ErrorOut]) : ErrorOut, `error codes: ${cs.join(', ')}`);
  return out;
}

export function deliveryOpenApi(): { paths: Record<string, unknown>; schemas: Record<string, unknown> } {
  const r = new OpenAPIRegistry();
  const security = [{ deviceToken: [] }];
  r.registerPath({
    method: 'post',
    path: '/v1/messages',
    tags: ['messages'],
    summary: 'Send one message: one sealed copy per device of the recipient and per other device of the sender',
    description:
      'Idempotent on (sending device, message_id) for the retention period: a retry with the same content answers the same ids; ' +
      'with other content, 409 message_id_conflict. 409 device_mismatch lists missing, extra and stale devices and queues nothing. ' +
      'The answer comes once every copy is stored.',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: SendRequest } } } },
    responses: {
      200: json(SendAnswer, 'stored (or stored before: same answer)'),
      ...errors(['invalid_request', 'not_found', 'device_mismatch', 'message_id_conflict', 'payload_too_large', 'rate_limited', 'queue_full', 'unavailable']),
    },
  });
  r.registerPath({
    method: 'post',
    path: '/v1/messages/resend',
    tags: ['messages'],
    summary: 'Send an accepted message again, same message_id, to one device that could not read it (SPEC §7 session-reset)',
    description:
      'Only for a message_id this device sent within the retention, to a current device of the original recipient account or of ' +
      "the sender's own account, under that device's current key (409 device_mismatch otherwise; 404 if no such send). " +
      'The receiver deduplicates on (sender, message_id).',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: ResendRequest } } } },
    responses: {
      200: json(SendAnswer, 'queued for that device'),
      ...errors(['invalid_request', 'not_found', 'device_mismatch', 'payload_too_large', 'rate_limited', 'queue_full', 'unavailable']),
    },
  });
  r.registerPath({
    method: 'get',
    path: '/v1/messages',
    tags: ['messages'],
    summary: "The oldest envelopes of this device's queue (the stream's fallback)",
    security,
    request: { query: z.object({ limit: z.string().optional().describe('at most this many (1..256, default 256)') }) },
    responses: { 200: json(EnvelopeList, 'a page, oldest first'), ...errors([]) },
  });
  r.registerPath({
    method: 'post',
    path: '/v1/messages/ack',
    tags: ['messages'],
    summary: "Remove received envelopes from this device's queue",
    security,
    request: { body: { required: true, content: { 'application/json': { schema: AckRequest } } } },
    responses: { 200: json(AckAnswer, 'removed'), ...errors(['invalid_request']) },
  });
  r.registerPath({
    method: 'get',
    path: STREAM_PATH,
    tags: ['messages'],
    summary: 'WebSocket: the device queue pushed in order, sends, acks',
    description:
      `Upgrade with subprotocol "${STREAM_SUBPROTOCOL}" and the device token as "Authorization: Bearer <token>" or, from a browser, ` +
      `as a second subprotocol "bearer.<token>". Frames are JSON text: the client sends StreamClientFrame, the server StreamServerFrame. ` +
      'Envelopes not acked are sent again on the next connection; "acked" confirms an ack is durable. ' +
      'Close codes: 4001 replaced by a newer connection of the device, 4003 device removed, 1012 server restarting.',
    security,
    responses: { 101: { description: 'switching protocols' }, 401: { description: 'no valid device token' } },
  });
  // The stream's frames have no HTTP path to hang from: their JSON Schemas as components.
  r.registerComponent('schemas', 'StreamClientFrame', z.toJSONSchema(ClientFrame, { io: 'input', unrepresentable: 'any' }) as never);
  r.registerComponent('schemas', 'StreamServerFrame', z.toJSONSchema(ServerFrame, { unrepresentable: 'any' }) as never);
  const doc = new OpenApiGeneratorV31(r.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'delivery', version: '1' },
  });
  return { paths: (doc.paths ?? {}) as Record<string, unknown>, schemas: (doc.components?.schemas ?? {}) as Record<string, unknown> };
}

/** Adds the delivery paths and schemas to the app's served document (in place). */
export function mergeDeliveryOpenApi(doc: { paths?: unknown; components?: unknown }): void {
  const frag = deliveryOpenApi();
  const d = doc as { paths?: Record<string, unknown>; components?: { schemas?: Record<string, unknown> } };
  d.paths = { ...(d.paths ?? {}), ...frag.paths };
  d.components ??= {};
  d.components.schemas = { ...(d.components.schemas ?? {}), ...frag.schemas };
}
