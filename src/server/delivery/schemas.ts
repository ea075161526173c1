/**
 * The delivery API's shapes, written once: the REST routes and the stream validate with them,
 * and the OpenAPI document is generated from them (routes/messages.ts declares the routes;
 * openapi.ts adds the stream frames).
 */
import { z } from 'zod';
import { API_ERROR_CODES, type ApiErrorCode } from '../errors.js';
import { base64url, deviceId, serverId, username } from '../routes/fields.js';
import { ErrorOut } from '../routes/schemas.js';
import { FETCH_PAGE, MAX_IDS_PER_ACK } from './limits.js';

/** RFC 9562 UUIDv7, lowercase or uppercase hex; stored and answered in lowercase. */
export const MessageId = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/, 'a UUIDv7')
  .transform((s) => s.toLowerCase())
  .meta({ description: 'RFC 9562 UUIDv7, chosen by the sender; written lowercase, read in either case' });

/** SPEC §2: device ids are u32, from 1. */
export const DeviceNumber = deviceId;
/** A server-assigned envelope id: a decimal string within PostgreSQL's bigint. */
export const ServerId = serverId;

export const DeviceAddress = z.object({ user: username, device: DeviceNumber }).meta({ id: 'DeviceAddress' });
export type DeviceAddress = z.infer<typeof DeviceAddress>;

export const SealedCopy = z
  .object({
    user: username.describe('the account this copy is for: the recipient, or the sender for its other devices'),
    device: DeviceNumber,
    key: base64url("the device's identity key (IK, Ed25519) as the sender knows it; a different current key makes the device stale", 32),
    type: z.number().int().min(1).max(2).describe('SPEC §5 message type: 1 prekey, 2 normal; must equal the type byte of body'),
    body: base64url(
      'the whole SPEC §5 message, version and type bytes included, as the receiving device will read it ' +
        '(at most GCHAT_MAX_MESSAGE_BYTES decoded, 256 KiB by default; 413 past it)',
    ).min(2),
  })
  .meta({ id: 'SealedCopy', description: 'One sealed copy of a message, for one device.' });
export type SealedCopy = z.infer<typeof SealedCopy>;

export const SendRequest = z
  .object({
    message_id: MessageId,
    recipient: username.describe('the account the message is for (may be the sender: note to self)'),
    copies: z
      .array(SealedCopy)
      .min(1)
      .describe('one per current device of the recipient and per other current device of the sender (at most GCHAT_MAX_COPIES, 413 past it)'),
    urgent: z
      .boolean()
      .optional()
      .describe('true for a call offer: offline devices get an immediate wake-up (an APNs VoIP push on iOS), never coalesced'),
  })
  .meta({ id: 'SendRequest' });
export type SendRequest = z.infer<typeof SendRequest>;

/** SPEC §7: an accepted message sent again, same message_id, to one device that could not read it. */
export const ResendRequest = z
  .object({
    message_id: MessageId.describe('the message_id of a message this device sent within the retention'),
    recipient: username.describe('the recipient account of the original send'),
    copy: SealedCopy.describe('the new sealed copy for the one device that sent a session-reset'),
  })
  .meta({ id: 'ResendRequest' });
export type ResendRequest = z.infer<typeof ResendRequest>;

export const QueuedCopy = DeviceAddress.extend({ id: ServerId }).meta({ id: 'QueuedCopy' });
export const SendAnswer = z
  .object({
    message_id: z.string(),
    server_ts: z.number().int().describe('ms since the epoch, when the server accepted the message'),
    envelopes: z.array(QueuedCopy).describe('one per copy: the server id each device will see'),
  })
  .meta({ id: 'SendAnswer' });
export type SendAnswer = z.infer<typeof SendAnswer>;

export const DeviceMismatchError = ErrorOut.extend({
  missing: z.array(DeviceAddress).describe('current devices the send has no copy for'),
  extra: z.array(DeviceAddress).describe('copies for devices that do not exist (or were removed, or are the sending device)'),
  stale: z.array(DeviceAddress).describe("devices whose identity key differs from the copy's `key`"),
}).meta({ id: 'DeviceMismatchError', description: 'device_mismatch: what to fix before sending again; nothing was queued.' });
export type DeviceMismatch = z.infer<typeof DeviceMismatchError>;

export const QueueFullError = ErrorOut.extend({
  devices: z.array(DeviceAddress).describe('the devices whose queue is full'),
}).meta({ id: 'QueueFullError', description: 'queue_full: nothing was queued.' });

export const Envelope = z.object({
  id: ServerId,
  message_id: z.string(),
  sender: z.string().describe("the sender's username"),
  sender_device: DeviceNumber,
  type: z.number().int().describe('the copy\'s type as the sender sent it'),
  body: z.string().describe('the whole SPEC §5 message (version and type bytes included), base64url'),
  server_ts: z.number().int(),
}).meta({ id: 'Envelope', description: 'One sealed copy as a device receives it; nothing else the server knows.' });
export type Envelope = z.infer<typeof Envelope>;

export const EnvelopeList = z
  .object({
    envelopes: z.array(Envelope),
    more: z.boolean().describe('true when the queue holds envelopes past this page'),
  })
  .meta({ id: 'EnvelopeList' });

/** `?limit=N`: a decimal number from 1; above the page size it is the page size. */
export const FetchQuery = z.object({
  limit: z
    .preprocess((v) => (typeof v === 'string' && /^[0-9]+$/.test(v) ? Math.min(Number(v), FETCH_PAGE) : v), z.number().int().min(1))
    .optional()
    .meta({ description: `at most this many envelopes (default and most: ${FETCH_PAGE})` }),
});

export const AckRequest = z.object({ ids: z.array(ServerId).min(1).max(MAX_IDS_PER_ACK) }).meta({ id: 'AckRequest' });
export const AckAnswer = z.object({ acked: z.number().int().describe('envelopes removed from the queue') }).meta({ id: 'AckAnswer' });

/** Stream frames, client to server. */
export const ClientFrame = z
  .discriminatedUnion('op', [
    z.object({ op: z.literal('ack'), ids: z.array(ServerId).min(1).max(MAX_IDS_PER_ACK) }).meta({ id: 'StreamAckFrame' }),
    SendRequest.extend({ op: z.literal('send'), rid: z.string().min(1).max(64).describe('echoed in the `sent` frame that answers') }).meta({
      id: 'StreamSendFrame',
    }),
  ])
  .meta({ id: 'StreamClientFrame', description: 'A frame the client sends on /v1/stream (JSON text).' });
export type ClientFrame = z.infer<typeof ClientFrame>;

/** Stream frames, server to client. */
export const ServerFrame = z
  .discriminatedUnion('op', [
    z.object({ op: z.literal('envelopes'), envelopes: z.array(Envelope) }).meta({ id: 'StreamEnvelopesFrame', description: 'queued envelopes, in id order' }),
    z.object({ op: z.literal('acked'), ids: z.array(ServerId) }).meta({ id: 'StreamAckedFrame', description: 'these acks are durable' }),
    z.object({ op: z.literal('drained') }).meta({ id: 'StreamDrainedFrame', description: 'the queue as it was at connection time has been sent' }),
    z
      .object({
        op: z.literal('sent'),
        rid: z.string(),
        status: z.number().int().describe('the HTTP status POST /v1/messages would have answered'),
        body: z.union([SendAnswer, DeviceMismatchError, QueueFullError, ErrorOut]).describe('the body POST /v1/messages would have answered'),
      })
      .meta({ id: 'StreamSentFrame', description: 'the answer to a send frame' }),
    z
      .object({ op: z.literal('error'), code: z.enum(API_ERROR_CODES as [ApiErrorCode, ...ApiErrorCode[]]), message: z.string() })
      .meta({ id: 'StreamErrorFrame', description: 'a frame the server could not take (bad_frame); the stream stays open' }),
  ])
  .meta({ id: 'StreamServerFrame', description: 'A frame the server sends on /v1/stream (JSON text).' });
export type ServerFrame = z.infer<typeof ServerFrame>;
