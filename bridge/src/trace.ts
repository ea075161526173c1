/**
 * Per-message timestamps for `npm run bench:bridge`: with GCHAT_BRIDGE_TRACE set to a file, each
 * stage a message passes in the bridge appends one JSON line (ids and wall-clock ms, never a body).
 * Off (a no-op) otherwise.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

const file = process.env.GCHAT_BRIDGE_TRACE;
const out: WriteStream | null = file ? createWriteStream(file, { flags: 'a' }) : null;

export const tracing = out !== null;

/** Records that message `id` reached `stage` now (wall clock, sub-millisecond). */
export function trace(id: string, stage: string, extra: Record<string, string | number> = {}): void {
  out?.write(`${JSON.stringify({ id, stage, t: performance.timeOrigin + performance.now(), ...extra })}\n`);
}
