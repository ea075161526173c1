/**
 * The delivery API's shapes, written once: the REST routes and the stream validate with them,
 * and the OpenAPI document is generated from them (routes/messages.ts registers them).
 */
import { z } from 'zod';
import { MAX_IDS_PER_ACK } from './limits.js';
import { username } from '../routes/schemas.js';

/** RFC 9562 UUIDv7, lowercase or uppercase hex; stored and answered in lowercase. */
export const MessageId = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/, 'a UUIDv7')
  .transform((s) => s.toLowerCase());

const Base64Url = z.string().regex(/^[A-Za-z0-9_-]*$/, 'base64url without padding');
/** SPEC §2: device ids are u32. */
export const DeviceNumber = z.number().int().min(0).max(0xffffffff);
/**
 * A server-assigned envelope id: a decimal string in PostgreSQL's bigint range (1..2^63-1).
 * The pattern itself says so (no refinement), so the OpenAPI document and the validator agree
 * and an id past the range is refused here, before it reaches a batch.
 */
export const ServerId = z.string().regex(decimalUpTo(9223372036854775807n), 'a server envelope id (1 to 9223372036854775807)');

/**
 * An account name as the server knows it (Server I's username rule). Anything else can name no
 * account, and a character PostgreSQL refuses in text (NUL) must never reach a shared batch.
 */
const AccountName = username;

export const DeviceAddress = z.object({
  user: AccountName,
  device: DeviceNumber,
});
export type DeviceAddress = z.infer<typeof DeviceAddress>;

export const SealedCopy = z.object({
  user: AccountName.describe('the account this copy is for: the recipient, or the sender for its other devices'),
  device: DeviceNumber,
  key: Base64Url.min(43)
    .max(43)
    .describe("the device's identity key (IK, Ed25519, base64url) as the sender knows it; a different current key makes the device stale"),
  type: z.number().int().min(1).max(2).describe('SPEC §5 message type: 1 prekey, 2 normal; must equal the type byte of `body`'),
  body: Base64Url.describe('the whole SPEC §5 message (version byte 0x01, type byte, then its body), base64url'),
});
export type SealedCopy = z.infer<typeof SealedCopy>;

export const SendRequest = z.object({
  message_id: MessageId,
  recipient: AccountName.describe('the account the message is for (may be the sender: note to self)'),
  copies: z.array(SealedCopy).min(1),
}).meta({ id: 'SendRequest' });
export type SendRequest = z.infer<typeof SendRequest>;

/** SPEC §7: an accepted message sent again, same message_id, to one device that could not read it. */
export const ResendRequest = z.object({
  message_id: MessageId,
  recipient: AccountName.describe('the recipient account of the original send'),
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

/**
 * A regular expression for the decimal integers 1..max (no leading zero): shorter numbers, and
 * numbers of max's length that are at most max, digit by digit.
 */
export function decimalUpTo(max: bigint): RegExp {
  const m = max.toString();
  const n = m.length;
  const alts: string[] = [];
  if (n > 1) alts.push(`[1-9][0-9]{0,${n - 2}}`);
  for (let i = 0; i < n; i++) {
    const d = Number(m[i]);
    const lowest = i === 0 ? 1 : 0;
    if (d > lowest) alts.push(`${m.slice(0, i)}[${lowest}-${d - 1}][0-9]{${n - 1 - i}}`);
  }
  alts.push(m);
  return new RegExp(`^(?:${alts.join('|')})$`);
}
