/** Every bound of the delivery model, in one place. Config may override the first group. */

export interface DeliveryLimits {
  /** Undelivered envelopes and dedup entries live this long (ms). */
  readonly retentionMs: number;
  /** Most decoded bytes in one copy's body (413 past it). */
  readonly maxBodyBytes: number;
  /** Most copies in one send (413 past it). */
  readonly maxCopies: number;
  /** Most envelopes waiting in one device's queue (507 past it). */
  readonly maxQueuePerDevice: number;
  /** Most decoded body bytes waiting in one device's queue (507 past it). */
  readonly maxQueueBytesPerDevice: number;
  /** Most envelopes one sending account may have waiting in one device's queue (507 past it). */
  readonly maxQueuePerSender: number;
  /** Most decoded body bytes one sending account may have waiting in one device's queue (507 past it). */
  readonly maxQueueBytesPerSender: number;
  /** Most sends waiting for a commit on one instance (429 past it). */
  readonly maxPendingSends: number;
}

export const DEFAULT_LIMITS: DeliveryLimits = {
  retentionMs: 30 * 24 * 3600 * 1000,
  maxBodyBytes: 256 * 1024,
  maxCopies: 64,
  maxQueuePerDevice: 20_000,
  maxQueueBytesPerDevice: 256 * 1024 * 1024,
  maxQueuePerSender: 5_000,
  maxQueueBytesPerSender: 64 * 1024 * 1024,
  maxPendingSends: 20_000,
};

/** Most sends written by one statement (one commit). */
export const MAX_SENDS_PER_BATCH = 512;
/** Most acks deleted by one statement. */
export const MAX_ACKS_PER_BATCH = 4096;
/** Most ids in one ack frame or REST ack request. */
export const MAX_IDS_PER_ACK = 1024;
/** Envelopes sent on one stream and not yet acked; the stream waits for acks past it. */
export const STREAM_WINDOW = 512;
/** Envelopes fetched from the queue in one query (stream page, REST list page). */
export const FETCH_PAGE = 256;
/** A stream whose queue read failed reads again after this long (ms). */
export const PUMP_RETRY_MS = 1000;
/** Most rows one GC statement deletes. */
export const GC_BATCH = 2000;
/** Most GC statements one run issues per kind before yielding to the next tick. */
export const GC_MAX_BATCHES_PER_RUN = 50;
/** After each full GC step, a pause of this many times the step's duration (the sends' share of the database). */
export const GC_PAUSE_RATIO = 1;
/**
 * A removed device stays listed for GC this long after its queue is empty (ms): a send that read
 * the device list just before the removal may still be writing to that queue.
 */
export const REMOVED_QUEUE_GRACE_MS = 10 * 60_000;
/** How often each instance runs GC (ms). */
export const GC_INTERVAL_MS = 60_000;
/** An upgrade to the stream whose token check takes longer is answered 503 and closed (ms). */
export const STREAM_AUTH_TIMEOUT_MS = 10_000;
/** Ping interval on streams; a stream that misses one pong is closed (ms). */
export const STREAM_PING_MS = 30_000;
/** Most device ids carried by one NOTIFY payload (PostgreSQL caps payloads at 8000 bytes). */
export const NOTIFY_DEVICES_PER_PAYLOAD = 150;
/**
 * Most bytes of the largest legitimate send, as a REST body (POST /v1/messages, /resend) or a
 * stream frame: maxCopies copies with base64url bodies of maxBodyBytes, 1 KiB of JSON per copy
 * (names, key, whitespace) and 64 KiB for the rest. Past it REST answers 413 and the stream
 * closes with 1009, both while reading, before any parsing.
 */
export function maxFrameBytes(l: DeliveryLimits): number {
  return Math.min(l.maxCopies * (Math.ceil((l.maxBodyBytes * 4) / 3) + 1024) + 64 * 1024, 512 * 1024 * 1024);
}
/**
 * Most JSON punctuation bytes (`{ [ , :` and backslash) in a send or ack: a copy needs about a
 * dozen, an ack one per id; the rest is slack for whitespace-free but odd clients and the rid.
 * A body or frame with more is refused before JSON.parse (413), so a frame of many tiny copies
 * under the byte cap cannot hold the event loop while it is parsed.
 */
export function maxSendPunctuation(l: DeliveryLimits): number {
  return 16 * l.maxCopies + 2 * MAX_IDS_PER_ACK + 256;
}
