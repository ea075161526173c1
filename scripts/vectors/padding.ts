/** SPEC §6 padding vectors: pad and unpad for expect=ok, unpad refusing (any ProtocolError) for expect=reject. */
import { equalBytes, fromHex, toHex, utf8 } from '../../src/protocol/bytes.js';
import { pad, parseContent, unpad } from '../../src/protocol/content.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import type { CaseResult, TopicRunner } from './types.js';

interface PaddingCase {
  name: string;
  expect: 'ok' | 'reject';
  plaintext?: string;
  plaintext_json?: string;
  padded: string;
}

function runCase(c: PaddingCase): CaseResult {
  const padded = fromHex(c.padded);
  if (c.expect === 'reject') {
    const copy = padded.slice();
    try {
      unpad(padded);
      return { name: c.name, ok: false, detail: 'unpad accepted a malformed padding' };
    } catch (e) {
      // Which error is the implementation's choice; a crash is not a refusal.
      if (!(e instanceof ProtocolError)) return { name: c.name, ok: false, detail: `unpad crashed: ${String(e)}` };
      if (!equalBytes(padded, copy)) return { name: c.name, ok: false, detail: 'unpad changed the input it refused' };
      return { name: c.name, ok: true };
    }
  }
  const plaintext = fromHex(c.plaintext ?? '');
  if (c.plaintext_json !== undefined && !equalBytes(utf8(c.plaintext_json), plaintext)) {
    return { name: c.name, ok: false, detail: 'plaintext_json is not the UTF-8 of plaintext (vector inconsistent)' };
  }
  // A content example must also be content this implementation accepts.
  if (c.plaintext_json !== undefined && parseContent(plaintext).kind !== (JSON.parse(c.plaintext_json) as { kind: unknown }).kind) {
    return { name: c.name, ok: false, detail: 'parseContent read another kind' };
  }
  const mine = pad(plaintext);
  if (!equalBytes(mine, padded)) return { name: c.name, ok: false, detail: `pad gave ${mine.length} bytes differing from padded (${padded.length})` };
  const back = unpad(padded);
  if (!equalBytes(back, plaintext)) return { name: c.name, ok: false, detail: `unpad gave ${toHex(back).slice(0, 32)}..., not plaintext` };
  return { name: c.name, ok: true };
}

export const run: TopicRunner = async (file) =>
  (file.cases as unknown as PaddingCase[]).map((c) => {
    try {
      return runCase(c);
    } catch (e) {
      return { name: c.name, ok: false, detail: `threw ${e instanceof ProtocolError ? e.code : String(e)}` };
    }
  });
