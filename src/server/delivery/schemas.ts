/**
 * The delivery API's shapes, written once: the REST routes and the stream validate with them,
 * and the OpenAPI document is generated from them (routes/messages.ts registers them).
 */
import { z } from 'zod';
import { MAX_IDS_PER_ACK } from './limits.js';

/** RFC 9562 UUIDv7, lowercase or uppercase hex; stored and answered in lowercase. */
export const MessageId = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/, 'a UUIDv7')
  .transform((s) => s.toLowerCase());

const Base64Url = z.string().regex(/^[A-Za-z0-9_-]*$/, 'base64url without padding');
/** SPEC §2: device ids are u32. */
export const DeviceNumber = z.number().int().min(0).max(0xffffffff);
/** A server-assigned envelope id: a decimal string (a 63-bit integer). */
export const ServerId = z.string().regex(/^[1-9][0-9]{0,18}$/, 'a server envelope id');

export const DeviceAddress = z.object({
  user: z.string().min(1).max(256),
  device: DeviceNumber,
});
export type DeviceAddress = z.infer<typeof DeviceAddress>;

export const SealedCopy = z.object({
  user: z.string().min(1).max(256).describe('the account this copy is for: the recipient, or the sender for its other devices'),
  device: DeviceNumber,
  key: Base64Url.min(43)
    .max(43)
    .describe("the device's identity key (IK, Ed25519, base64url) as the sender knows it; a different current key makes the device stale"),
  type: z.number().int().min(0).max(255).describe('SPEC §5 message type: 1 prekey, 2 normal; relayed as is'),
  body: Base64Url.describe('the sealed message bytes, base64url'),
});
export type SealedCopy = z.infer<typeof SealedCopy>;

export const SendRequest = z.object({
  message_id: MessageId,
  recipient: z.string().min(1).max(256).describe('the account the message is for (may be the sender: note to self)'),
  copies: z.array(SealedCopy).min(1),
  urgent: z
    .boolean()
    .optional()
    .describe('true for a call offer: offline devices get an immediate wake-up (an APNs VoIP push on iOS), never coalesced'),
}).meta({ id: 'SendRequest' });
export type SendRequest = z.infer<typeof SendRequest>;

/** SPEC §7: an accepted message sent again, same message_id, to one device that could not read it. */
export const ResendRequest = z.object({
  message_id: MessageId,
  recipient: z.string().min(1).max(256).describe('the recipient account of the original send'),
  copy: SealedCopy.describe('the new sealed copy for the one device that sent a session-reset'),
});
export type ResendRequest = z.infer<typeof ResendRequest>;

export const QueuedCopy = DeviceAddress.extend({ id: ServerId });
export const SendAnswer = z.object({
  message_id: z.string(),
  server_ts: z.number().int().describe('ms since the epoch, when the server accepted the message'),
  envelopes: z.array(QueuedCopy).describe('one per copy: the server id each device will see'),
}).meta({ id: 'SendAnswer' });
export type SendAnswer = z.infer<typeof SendAnswer>;

export const ErrorInfo = z.object({ code: z.string(), message: z.string() });
export const DeviceMismatch = z.object({
  error: ErrorInfo,
  missing: z.array(DeviceAddress).describe('current devices the send has no copy for'),
  extra: z.array(DeviceAddress).describe('copies for devices that do not exist (or were removed, or are the sending device)'),
  stale: z.array(DeviceAddress).describe('devices whose identity key differs from the copy\'s `key`'),
}).meta({ id: 'DeviceMismatch' });
export type DeviceMismatch = z.infer<typeof DeviceMismatch>;

export const Envelope = z.object({
  id: ServerId,
  message_id: z.string(),
  sender: z.string().describe("the sender's username"),
  sender_device: DeviceNumber,
  type: z.number().int(),
  body: z.string().describe('sealed bytes, base64url'),
  server_ts: z.number().int(),
}).meta({ id: 'Envelope', description: 'One sealed copy as a device receives it; nothing else the server knows.' });
export type Envelope = z.infer<typeof Envelope>;

export const EnvelopeList = z.object({
  envelopes: z.array(Envelope),
  more: z.boolean().describe('true when the queue holds envelopes past this page'),
});

export const AckRequest = z.object({ ids: z.array(ServerId).min(1).max(MAX_IDS_PER_ACK) });
export const AckAnswer = z.object({ acked: z.number().int().describe('envelopes removed from the queue') });

/** Stream frames, client to server. */
export const ClientFrame = z.discriminatedUnion('op', [
  z.object({ op: z.literal('ack'), ids: z.array(ServerId).min(1).max(MAX_IDS_PER_ACK) }),
  SendRequest.extend({ op: z.literal('send'), rid: z.string().min(1).max(64) }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;

/** Stream frames, server to client. */
export const ServerFrame = z.discriminatedUnion('op', [
  z.object({ op: z.literal('envelopes'), envelopes: z.array(Envelope) }),
  z.object({ op: z.literal('acked'), ids: z.array(ServerId) }),
  z.object({ op: z.literal('drained').describe('the queue as it was at connection time has been sent') }),
  z.object({ op: z.literal('sent'), rid: z.string(), status: z.number().int(), body: z.unknown() }),
  z.object({ op: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
