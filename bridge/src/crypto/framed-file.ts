/**
 * Length-and-checksum framed records in a file: each record is `u32 length | u32 crc32 | payload`
 * (little-endian). A reader stops at the first frame that is short or fails its checksum: that is
 * the tail of a write a crash cut short, which was never reported as done.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

const HEADER = 8;
/** A frame larger than this is taken as garbage, not as a record (no record here comes close). */
export const MAX_FRAME = 1 << 30;

export function frame(payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME) throw new RangeError(`record of ${payload.length} bytes exceeds ${MAX_FRAME}`);
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  out.set(payload, HEADER);
  return out;
}

/** The intact records at the start of `buf`, and how many bytes they span. */
export function readFrames(buf: Buffer): { records: Buffer[]; validBytes: number } {
  const records: Buffer[] = [];
  let at = 0;
  while (buf.length - at >= HEADER) {
    const len = buf.readUInt32LE(at);
    if (len > MAX_FRAME || buf.length - at - HEADER < len) break;
    const payload = buf.subarray(at + HEADER, at + HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(at + 4)) break;
    records.push(payload);
    at += HEADER + len;
  }
  return { records, validBytes: at };
}

export function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with `data` so that a crash leaves either the old file or the new one, whole. */
export function writeFileAtomic(path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeAll(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}
