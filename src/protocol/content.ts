/**
 * SPEC §6: the plaintext of every message: padding, the content kinds, and message ids (UUIDv7).
 * Parsing reads the JSON bytes exactly as sent; nothing is re-serialised to be checked.
 */
import { fromUtf8, toHex, utf8, wipe } from './bytes.js';
import { fail } from './errors.js';
import { MAX_TEXT_BODY_BYTES, MAX_USER_ID_BYTES, PAD_BLOCK } from './limits.js';
import type { RandomSource } from './primitives.js';

// ---- padding ---------------------------------------------------------------------------------

/** json || 0x80 || k zero bytes, with the least k >= 0 that makes the length a multiple of 160. */
export function pad(json: Uint8Array): Uint8Array {
  if (!(json instanceof Uint8Array)) fail('bad_format', 'plaintext must be a Uint8Array');
  const out = new Uint8Array((Math.floor(json.length / PAD_BLOCK) + 1) * PAD_BLOCK);
  out.set(json);
  out[json.length] = 0x80;
  return out;
}

/** Inverse of pad(); refuses anything pad() cannot have produced. Returns a view into `padded`. */
export function unpad(padded: Uint8Array): Uint8Array {
  if (!(padded instanceof Uint8Array)) fail('bad_format', 'padded plaintext must be a Uint8Array');
  if (padded.length === 0 || padded.length % PAD_BLOCK !== 0) fail('bad_padding', 'padded length is not a positive multiple of 160');
  let i = padded.length - 1;
  const stop = padded.length - PAD_BLOCK;
  while (i >= stop && padded[i] === 0) i--;
  if (i < stop || padded[i] !== 0x80) fail('bad_padding', 'padding does not end in 0x80 followed by 0 to 159 zero bytes');
  return padded.subarray(0, i);
}

// ---- message ids -----------------------------------------------------------------------------

/** A message_id: a UUIDv7 in its canonical lowercase form (RFC 9562). */
export type MessageId = string & { readonly __brand: 'MessageId' };

const MESSAGE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MAX_UUIDV7_MS = 2 ** 48 - 1;

/** True for a message_id as written (SPEC §6: lowercase). */
export function isMessageId(value: unknown): value is MessageId {
  return typeof value === 'string' && MESSAGE_ID.test(value);
}

/**
 * A message_id as read (SPEC §6): uppercase hex digits are accepted and lowercased before any
 * comparison or storage, so a client whose UUID type prints uppercase loses nothing. Null if the
 * value is not a UUIDv7 in either case.
 */
export function readMessageId(value: unknown): MessageId | null {
  if (typeof value !== 'string') return null;
  const lower = value.toLowerCase();
  return isMessageId(lower) ? lower : null;
}

/** RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, 74 random bits, variant 0b10. */
export function newMessageId(nowMs: number, random: RandomSource): MessageId {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs > MAX_UUIDV7_MS) fail('bad_format', 'nowMs must be an integer in 0..2^48-1');
  const r = random(10);
  if (!(r instanceof Uint8Array) || r.length !== 10) fail('bad_length', 'random source must return 10 bytes');
  const b = new Uint8Array(16);
  let ms = nowMs;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b.set(r, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  wipe(r);
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as MessageId;
}

// ---- content kinds ---------------------------------------------------------------------------

/** Fields every kind carries. `to` is set only on the copy sent to the sender's own other devices. */
interface ContentBase {
  readonly v: 1;
  readonly id: MessageId;
  readonly ts: number;
  readonly to?: string;
}

export interface TextContent extends ContentBase {
  readonly kind: 'text';
  readonly body: string;
  readonly reply_to?: MessageId;
  readonly edit_of?: MessageId;
}
export interface ReceiptContent extends ContentBase {
  readonly kind: 'receipt';
  readonly type: 'delivered' | 'read';
  readonly ids: readonly MessageId[];
}
export interface TypingContent extends ContentBase {
  readonly kind: 'typing';
  readonly state: 'started' | 'stopped';
}
export interface CallSdpContent extends ContentBase {
  readonly kind: 'call-offer' | 'call-answer';
  readonly call_id: string;
  readonly sdp: string;
}
/** The fields of WebRTC's RTCIceCandidateInit, checked for type only. */
export interface IceCandidate {
  readonly candidate?: string;
  readonly sdpMid?: string | null;
  readonly sdpMLineIndex?: number | null;
  readonly usernameFragment?: string | null;
}
export interface CallIceContent extends ContentBase {
  readonly kind: 'call-ice';
  readonly call_id: string;
  readonly candidates: readonly IceCandidate[];
}
export interface CallHangupContent extends ContentBase {
  readonly kind: 'call-hangup';
  readonly call_id: string;
  readonly reason: 'hangup' | 'declined' | 'busy' | 'failed';
}
/** What the sender's other devices need: `type` names it, `data` holds its other members as sent. */
export interface DeviceSyncContent extends ContentBase {
  readonly kind: 'device-sync';
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}
export interface SessionResetContent extends ContentBase {
  readonly kind: 'session-reset';
  readonly ids: readonly MessageId[];
}

export type Content =
  | TextContent
  | ReceiptContent
  | TypingContent
  | CallSdpContent
  | CallIceContent
  | CallHangupContent
  | DeviceSyncContent
  | SessionResetContent;
export type ContentKind = Content['kind'];

/** A content object as a sender builds it: `v` may be left out. */
export type ContentInput = DistributiveOmit<Content, 'v'> & { readonly v?: 1 };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A content without the fields its sender fills in when the message enters the outbox (v, id, ts). */
export type ContentBody = DistributiveOmit<Content, 'v' | 'id' | 'ts'>;
type KindFields = DistributiveOmit<Content, keyof ContentBase>;

const COMMON_KEYS = new Set(['v', 'id', 'ts', 'kind', 'to']);
const UTF8_BOM = [0xef, 0xbb, 0xbf];

type Json = Record<string, unknown>;

function isObject(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function bad(message: string): never {
  return fail('bad_content', message);
}

function str(o: Json, key: string): string {
  const x = o[key];
  if (typeof x !== 'string') bad(`${key} must be a string`);
  return x;
}

function nonEmptyStr(o: Json, key: string): string {
  const x = str(o, key);
  if (x.length === 0) bad(`${key} must not be empty`);
  return x;
}

function oneOf<T extends string>(o: Json, key: string, allowed: readonly T[]): T {
  const x = o[key];
  if (!allowed.includes(x as T)) bad(`${key} must be one of ${allowed.join(', ')}`);
  return x as T;
}

function messageId(o: Json, key: string): MessageId {
  const x = readMessageId(o[key]);
  if (x === null) bad(`${key} must be a UUIDv7 message_id`);
  return x;
}

function optionalMessageId(o: Json, key: string): MessageId | undefined {
  return o[key] === undefined ? undefined : messageId(o, key);
}

function messageIds(o: Json, key: string): MessageId[] {
  const x = o[key];
  if (!Array.isArray(x) || x.length === 0) bad(`${key} must be a non-empty array of message_ids`);
  const ids = x.map(readMessageId);
  if (ids.some((id) => id === null)) bad(`${key} must hold only UUIDv7 message_ids`);
  return ids as MessageId[];
}

function optionalNullable(c: Json, key: string, type: 'string' | 'number'): void {
  const x = c[key];
  if (x !== undefined && x !== null && typeof x !== type) bad(`candidates[].${key} must be a ${type} or null`);
}

function iceCandidate(c: unknown): IceCandidate {
  if (!isObject(c)) bad('candidates must hold objects');
  if (c['candidate'] !== undefined && typeof c['candidate'] !== 'string') bad('candidates[].candidate must be a string');
  optionalNullable(c, 'sdpMid', 'string');
  optionalNullable(c, 'usernameFragment', 'string');
  optionalNullable(c, 'sdpMLineIndex', 'number');
  const i = c['sdpMLineIndex'];
  if (typeof i === 'number' && !(Number.isInteger(i) && i >= 0 && i <= 0xffff)) bad('candidates[].sdpMLineIndex must be an integer in 0..65535');
  const out: { -readonly [K in keyof IceCandidate]: IceCandidate[K] } = {};
  for (const k of ['candidate', 'sdpMid', 'sdpMLineIndex', 'usernameFragment'] as const) if (c[k] !== undefined) (out as Json)[k] = c[k];
  return out;
}

function kindFields(o: Json, kind: unknown): KindFields {
  switch (kind) {
    case 'text': {
      const body = str(o, 'body');
      if (utf8(body).length > MAX_TEXT_BODY_BYTES) bad('body longer than 64 KiB');
      const reply_to = optionalMessageId(o, 'reply_to');
      const edit_of = optionalMessageId(o, 'edit_of');
      return { kind, body, ...(reply_to && { reply_to }), ...(edit_of && { edit_of }) };
    }
    case 'receipt':
      return { kind, type: oneOf(o, 'type', ['delivered', 'read'] as const), ids: messageIds(o, 'ids') };
    case 'typing':
      return { kind, state: oneOf(o, 'state', ['started', 'stopped'] as const) };
    case 'call-offer':
    case 'call-answer':
      return { kind, call_id: nonEmptyStr(o, 'call_id'), sdp: str(o, 'sdp') };
    case 'call-ice': {
      const call_id = nonEmptyStr(o, 'call_id');
      const candidates = o['candidates'];
      if (!Array.isArray(candidates)) bad('candidates must be an array');
      return { kind, call_id, candidates: candidates.map(iceCandidate) };
    }
    case 'call-hangup':
      return { kind, call_id: nonEmptyStr(o, 'call_id'), reason: oneOf(o, 'reason', ['hangup', 'declined', 'busy', 'failed'] as const) };
    case 'device-sync': {
      const type = nonEmptyStr(o, 'type');
      // fromEntries defines own properties: a "__proto__" member stays data, never a prototype.
      const data: Json = Object.fromEntries(Object.entries(o).filter(([k]) => !COMMON_KEYS.has(k) && k !== 'type'));
      return { kind, type, data };
    }
    case 'session-reset':
      return { kind, ids: messageIds(o, 'ids') };
    default:
      return bad('unknown content kind');
  }
}

/** Checks a parsed JSON value against §6; members not named there are ignored. */
function toContent(o: unknown): Content {
  if (!isObject(o)) bad('content must be a JSON object');
  if (o['v'] !== 1) fail('bad_version', 'content version must be 1');
  const id = messageId(o, 'id');
  // JSON.parse already reads 1767225600000.0 as the integer, as SPEC §6 asks; a real fraction is refused.
  const ts = o['ts'];
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) bad('ts must be a non-negative integer (ms since epoch)');
  let to: string | undefined;
  if (o['to'] !== undefined) {
    to = nonEmptyStr(o, 'to');
    if (utf8(to).length > MAX_USER_ID_BYTES) bad('to is longer than a user_id may be');
  }
  return { v: 1, id, ts, ...(to !== undefined && { to }), ...kindFields(o, o['kind']) } as Content;
}

/** Parses the content JSON bytes (already unpadded) as they were sent. */
export function parseContent(json: Uint8Array): Content {
  if (!(json instanceof Uint8Array)) fail('bad_format', 'content must be a Uint8Array');
  if (UTF8_BOM.every((x, i) => json[i] === x)) bad('content must not start with a byte order mark');
  let text: string;
  try {
    text = fromUtf8(json);
  } catch {
    return bad('content is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('content is not valid JSON');
  }
  return toContent(value);
}

/** unpad() then parseContent(): what a receiver applies to a decrypted plaintext. */
export function decodeContent(padded: Uint8Array): Content {
  return parseContent(unpad(padded));
}

/** A message_id field as written: lowercase (SPEC §6), whatever case the caller passed. */
function lowerId(x: unknown): unknown {
  return typeof x === 'string' && readMessageId(x) !== null ? x.toLowerCase() : x;
}

/** The JSON bytes of a content object, members in §6's order; refuses what parseContent would. */
export function serialiseContent(content: ContentInput): Uint8Array {
  if (!isObject(content)) fail('bad_content', 'content must be an object');
  const { v: _v, id: rawId, ts, kind, to, ...rest } = content as Json;
  const id = lowerId(rawId);
  let fields: Json = rest;
  if (content.kind === 'text') {
    for (const k of ['reply_to', 'edit_of'] as const) if (rest[k] !== undefined) fields = { ...fields, [k]: lowerId(rest[k]) };
  } else if ((content.kind === 'receipt' || content.kind === 'session-reset') && Array.isArray(rest['ids'])) {
    fields = { ...fields, ids: rest['ids'].map(lowerId) };
  } else if (content.kind === 'device-sync') {
    if (!isObject(content.data)) bad('device-sync data must be an object');
    if (Object.keys(content.data).some((k) => COMMON_KEYS.has(k) || k === 'type')) bad('device-sync data must not hold v, id, ts, kind, to or type');
    fields = { type: content.type, ...content.data };
  }
  const json = utf8(JSON.stringify({ v: 1, id, ts, kind, ...fields, ...(to !== undefined && { to }) }));
  parseContent(json);
  return json;
}

/** serialiseContent() then pad(): the plaintext a sender encrypts. */
export function encodeContent(content: ContentInput): Uint8Array {
  return pad(serialiseContent(content));
}
