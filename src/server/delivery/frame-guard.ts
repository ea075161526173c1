/**
 * A cheap look at a send or ack before JSON.parse: counting its JSON punctuation bounds how many
 * members and elements the parse (and then the schema) would build. memchr-speed over the raw
 * bytes, and it stops at the first byte past the budget.
 */

/** `{` `[` `,` `:` and backslash (escapes are never needed in a legitimate send). */
const PUNCTUATION = [0x7b, 0x5b, 0x2c, 0x3a, 0x5c] as const;

/** True when `raw` holds more than `budget` punctuation bytes. */
export function tooManyMembers(raw: Uint8Array, budget: number): boolean {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let left = budget;
  for (const byte of PUNCTUATION) {
    for (let at = buf.indexOf(byte); at !== -1; at = buf.indexOf(byte, at + 1)) {
      if (--left < 0) return true;
    }
  }
  return false;
}
