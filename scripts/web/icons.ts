/**
 * The app icons (PNG, for the web app manifest), drawn per pixel: a white speech bubble on the
 * brand blue. A tiny PNG writer (zlib from Node) instead of an image library for two flat shapes.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** RGBA pixels (row-major, 4 bytes each) to a PNG file. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0; // filter: none
    Buffer.from(rgba.buffer, rgba.byteOffset + y * width * 4, width * 4).copy(raw, y * (width * 4 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** Signed distance to a rounded rectangle centred at (cx, cy). */
function roundedRect(x: number, y: number, cx: number, cy: number, hw: number, hh: number, r: number): number {
  const qx = Math.abs(x - cx) - hw + r;
  const qy = Math.abs(y - cy) - hh + r;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
}

/** The icon at `size` px; `maskable` keeps the drawing inside the 80% safe zone and fills the square. */
export function drawIcon(size: number, maskable: boolean): Buffer {
  const px = new Uint8Array(size * size * 4);
  const s = size / 100;
  const scale = maskable ? 0.72 : 0.9;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x + 0.5) / s;
      const v = (y + 0.5) / s;
      // Background: the full square (maskable) or a rounded tile.
      const bg = maskable ? -1 : roundedRect(u, v, 50, 50, 48, 48, 22);
      // The bubble and its tail, in a 100-unit box scaled around the centre.
      const bu = 50 + (u - 50) / scale;
      const bv = 50 + (v - 50) / scale;
      const bubble = roundedRect(bu, bv, 50, 45, 30, 22, 14);
      const tail = bu > 30 && bu < 46 && bv > 60 && bv < 82 && bv - 60 < (46 - bu) * 1.4;
      const dot = [38, 50, 62].some((cx) => Math.hypot(bu - cx, bv - 45) < 4.2);
      const i = (y * size + x) * 4;
      const inBg = bg < 0;
      const white = (bubble < 0 || tail) && !dot;
      px[i] = white ? 255 : 29;
      px[i + 1] = white ? 255 : 91;
      px[i + 2] = white ? 255 : 216;
      px[i + 3] = inBg ? 255 : Math.max(0, Math.min(255, Math.round((0.5 - bg * s) * 255)));
    }
  }
  return encodePng(size, size, px);
}
