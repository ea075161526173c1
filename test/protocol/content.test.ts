import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, utf8 } from '../../src/protocol/bytes.js';
import {
  type Content,
  type ContentInput,
  type MessageId,
  decodeContent,
  encodeContent,
  isMessageId,
  newMessageId,
  pad,
  parseContent,
  readMessageId,
  serialiseContent,
  unpad,
} from '../../src/protocol/content.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { codeOf } from '../helpers/protocol-errors.js';
import { MAX_TEXT_BODY_BYTES } from '../../src/protocol/limits.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/padding.json', import.meta.url), 'utf8')) as {
  cases: { name: string; expect: string; plaintext?: string; padded: string }[];
};

const ID = '0196f5a0-6d2f-7b4c-9d3e-5956670a8437' as MessageId;
const ID2 = '0196f5a0-5c1e-7a3b-8c2d-d35335e0a478' as MessageId;
const json = (o: unknown): Uint8Array => utf8(JSON.stringify(o));
const base = { v: 1, id: ID, ts: 1767225612345 };

describe('pad / unpad (SPEC §6)', () => {
  it.each(vectors.cases.filter((c) => c.expect === 'ok'))('vector $name: pad and unpad both ways', (c) => {
    const plaintext = fromHex(c.plaintext!);
    expect(pad(plaintext)).toEqual(fromHex(c.padded));
    expect(unpad(fromHex(c.padded))).toEqual(plaintext);
  });

  it.each(vectors.cases.filter((c) => c.expect === 'reject'))('vector $name: unpad refuses', (c) => {
    expect(codeOf(() => unpad(fromHex(c.padded)))).toBe('bad_padding');
  });

  it('pads a 160-byte JSON to 320 bytes and a 159-byte one to 160', () => {
    expect(pad(new Uint8Array(160)).length).toBe(320);
    expect(pad(new Uint8Array(159)).length).toBe(160);
  });

  it('round-trips any plaintext, to the least multiple of 160 above its length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), (pt) => {
        const padded = pad(pt);
        expect(padded.length % 160).toBe(0);
        expect(padded.length - pt.length).toBeGreaterThanOrEqual(1);
        expect(padded.length - pt.length).toBeLessThanOrEqual(160);
        expect(unpad(padded)).toEqual(pt);
      }),
    );
  });

  it('refuses any length that is not a positive multiple of 160', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2000 }).filter((n) => n === 0 || n % 160 !== 0),
        (n) => {
          const b = new Uint8Array(n);
          if (n > 0) b[0] = 0x80;
          expect(codeOf(() => unpad(b))).toBe('bad_padding');
        },
      ),
    );
  });

  it('refuses a marker followed by 160 zero bytes (k is at most 159)', () => {
    const b = new Uint8Array(320);
    b[159] = 0x80;
    expect(codeOf(() => unpad(b))).toBe('bad_padding');
    b[160] = 0x80;
    expect(unpad(b).length).toBe(160);
  });

  // Plaintexts biased to end in 0x80 / 0x00, the cases where a corrupted trailer can still parse.
  const plaintext = fc.tuple(fc.uint8Array({ maxLength: 400 }), fc.constantFrom([], [0x80], [0x80, 0], [0]))
    .map(([a, tail]) => Uint8Array.from([...a, ...tail]));
  const corruption = plaintext.chain((pt) =>
    fc.record({
      pt: fc.constant(pt),
      at: fc.integer({ min: pt.length, max: pad(pt).length - 1 }),
      value: fc.integer({ min: 0, max: 255 }),
    }),
  );

  it('refuses every single-byte change of the trailer to a value other than 0x00 or 0x80', () => {
    fc.assert(
      fc.property(corruption, ({ pt, at, value }) => {
        fc.pre(value !== 0 && value !== 0x80);
        const padded = pad(pt);
        padded[at] = value;
        expect(codeOf(() => unpad(padded))).toBe('bad_padding');
      }),
    );
  });

  it('never returns the original plaintext after any single-byte change of the trailer', () => {
    // Padding is no MAC (the AEAD is): a zero turned into 0x80, or a zeroed marker after a
    // plaintext ending in 0x80 0*, still parses, but always to a plaintext of another length.
    fc.assert(
      fc.property(corruption, ({ pt, at, value }) => {
        const padded = pad(pt);
        fc.pre(padded[at] !== value);
        padded[at] = value;
        let out: Uint8Array | undefined;
        try {
          out = unpad(padded);
        } catch (e) {
          expect((e as ProtocolError).code).toBe('bad_padding');
        }
        if (out) expect(out.length).not.toBe(pt.length);
      }),
    );
  });
});

describe('parseContent (SPEC §6)', () => {
  it('reads every kind of §6 as sent', () => {
    const cases: [unknown, Partial<Content>][] = [
      [{ ...base, kind: 'text', body: 'Hi Bob! 👋', reply_to: ID2 }, { kind: 'text', body: 'Hi Bob! 👋', reply_to: ID2 }],
      [{ ...base, kind: 'receipt', type: 'read', ids: [ID2, ID] }, { kind: 'receipt', type: 'read', ids: [ID2, ID] }],
      [{ ...base, kind: 'typing', state: 'stopped' }, { kind: 'typing', state: 'stopped' }],
      [{ ...base, kind: 'call-offer', call_id: 'c-1', sdp: 'v=0\r\n' }, { kind: 'call-offer', call_id: 'c-1', sdp: 'v=0\r\n' }],
      [{ ...base, kind: 'call-answer', call_id: 'c-1', sdp: 'v=0\r\n' }, { kind: 'call-answer', call_id: 'c-1', sdp: 'v=0\r\n' }],
      [
        { ...base, kind: 'call-ice', call_id: 'c-1', candidates: [{ candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host', sdpMid: '0', sdpMLineIndex: 0 }] },
        { kind: 'call-ice', candidates: [{ candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host', sdpMid: '0', sdpMLineIndex: 0 }] },
      ],
      [{ ...base, kind: 'call-hangup', call_id: 'c-1', reason: 'busy' }, { kind: 'call-hangup', reason: 'busy' }],
      [
        { ...base, kind: 'device-sync', type: 'verified', user_id: 'bob@x', verified: true },
        { kind: 'device-sync', type: 'verified', data: { user_id: 'bob@x', verified: true } },
      ],
      [{ ...base, kind: 'session-reset', ids: [ID2] }, { kind: 'session-reset', ids: [ID2] }],
    ];
    for (const [input, want] of cases) expect(parseContent(json(input))).toMatchObject({ v: 1, id: ID, ts: base.ts, ...want });
  });

  it('reads the JSON bytes as sent: key order, whitespace and escapes do not matter', () => {
    const raw = utf8(`{ "kind" : "text",\n "body":"caf\\u00e9 \\ud83d\\udd11", "ts": 5, "id": "${ID}", "v": 1 }`);
    expect(parseContent(raw)).toEqual({ v: 1, id: ID, ts: 5, kind: 'text', body: 'café 🔑' });
  });

  it('ignores members it does not know, so later versions can add fields', () => {
    const c = parseContent(json({ ...base, kind: 'typing', state: 'started', mood: 'happy', extra: { a: 1 } }));
    expect(c).toEqual({ ...base, kind: 'typing', state: 'started' });
  });

  it('keeps a device-sync "__proto__" member as data', () => {
    const c = parseContent(utf8(`{"v":1,"id":"${ID}","ts":1,"kind":"device-sync","type":"t","__proto__":{"polluted":true}}`));
    expect(c.kind === 'device-sync' && Object.getPrototypeOf(c.data)).toBe(Object.prototype);
    expect(c.kind === 'device-sync' && Object.keys(c.data)).toEqual(['__proto__']);
  });

  it('keeps `to` on the copy for the sender’s own devices', () => {
    expect(parseContent(json({ ...base, kind: 'text', body: 'x', to: 'bob@gchat.example' }))).toMatchObject({ to: 'bob@gchat.example' });
  });

  it('limits a text body to 64 KiB of UTF-8, not characters', () => {
    const at = (body: string) => () => parseContent(json({ ...base, kind: 'text', body }));
    expect(codeOf(at('a'.repeat(MAX_TEXT_BODY_BYTES)))).toBeUndefined();
    expect(codeOf(at('a'.repeat(MAX_TEXT_BODY_BYTES + 1)))).toBe('bad_content');
    // 21846 euro signs are 65538 bytes.
    expect(codeOf(at('€'.repeat(21846)))).toBe('bad_content');
    expect(codeOf(at('€'.repeat(21845)))).toBeUndefined();
  });

  it('reads message ids in either case and gives them lowercase, wherever they appear (revised SPEC §6)', () => {
    const up = (id: string) => id.toUpperCase();
    expect(parseContent(json({ ...base, id: up(ID), kind: 'text', body: 'x', reply_to: up(ID2), edit_of: up(ID2) }))).toMatchObject({ id: ID, reply_to: ID2, edit_of: ID2 });
    expect(parseContent(json({ ...base, id: up(ID), kind: 'receipt', type: 'delivered', ids: [up(ID2), ID] }))).toMatchObject({ id: ID, ids: [ID2, ID] });
    expect(parseContent(json({ ...base, kind: 'session-reset', ids: [up(ID2)] }))).toMatchObject({ ids: [ID2] });
    // Mixed case too: only the hex digits differ.
    const mixed = ID.replace(/[a-f]/, (c) => c.toUpperCase());
    expect(mixed).not.toBe(ID);
    expect(parseContent(json({ ...base, id: mixed, kind: 'typing', state: 'started' })).id).toBe(ID);
    expect(isMessageId(up(ID))).toBe(false);
    expect(readMessageId(up(ID))).toBe(ID);
    expect(readMessageId('3b241101-e2bb-4255-8caf-4136c566a962')).toBeNull();
  });

  it('reads a ts with a zero fraction, written as JSON text, as the integer (revised SPEC §6)', () => {
    const text = `{"v":1,"id":"${ID.toUpperCase()}","ts":1767225600000.0,"kind":"text","body":"hi"}`;
    const c = parseContent(utf8(text));
    expect(c.ts).toBe(1767225600000);
    expect(Number.isInteger(c.ts)).toBe(true);
    expect(parseContent(utf8(text.replace('1767225600000.0', '1.7672256e12'))).ts).toBe(1767225600000);
    expect(codeOf(() => parseContent(utf8(text.replace('1767225600000.0', '1767225600000.5'))))).toBe('bad_content');
  });

  it('refuses content of another version', () => {
    expect(codeOf(() => parseContent(json({ ...base, v: 2, kind: 'typing', state: 'started' })))).toBe('bad_version');
    expect(codeOf(() => parseContent(json({ id: ID, ts: 1, kind: 'typing', state: 'started' })))).toBe('bad_version');
  });

  it.each([
    ['an unknown kind', { ...base, kind: 'poke' }],
    ['no kind', { ...base, body: 'x' }],
    ['an id that is not a UUID', { ...base, id: 'msg-1', kind: 'typing', state: 'started' }],
    ['an id that is a UUIDv4', { ...base, id: '3b241101-e2bb-4255-8caf-4136c566a962', kind: 'typing', state: 'started' }],
    ['a fractional ts', { ...base, ts: 1.5, kind: 'typing', state: 'started' }],
    ['a negative ts', { ...base, ts: -1, kind: 'typing', state: 'started' }],
    ['a ts given as a string', { ...base, ts: '1767225612345', kind: 'typing', state: 'started' }],
    ['a text without body', { ...base, kind: 'text' }],
    ['a numeric body', { ...base, kind: 'text', body: 5 }],
    ['a reply_to that is no message_id', { ...base, kind: 'text', body: 'x', reply_to: 'abc' }],
    ['an edit_of that is no message_id', { ...base, kind: 'text', body: 'x', edit_of: null }],
    ['a receipt of another type', { ...base, kind: 'receipt', type: 'seen', ids: [ID] }],
    ['a receipt without ids', { ...base, kind: 'receipt', type: 'read', ids: [] }],
    ['a receipt with a bad id', { ...base, kind: 'receipt', type: 'read', ids: [ID, 'x'] }],
    ['a typing state outside the two', { ...base, kind: 'typing', state: 'paused' }],
    ['a call-offer without sdp', { ...base, kind: 'call-offer', call_id: 'c' }],
    ['a call-answer with an empty call_id', { ...base, kind: 'call-answer', call_id: '', sdp: '' }],
    ['call-ice candidates that are not an array', { ...base, kind: 'call-ice', call_id: 'c', candidates: {} }],
    ['a call-ice candidate with a bad sdpMLineIndex', { ...base, kind: 'call-ice', call_id: 'c', candidates: [{ sdpMLineIndex: -1 }] }],
    ['a call-ice candidate that is a string', { ...base, kind: 'call-ice', call_id: 'c', candidates: ['candidate:1'] }],
    ['a hangup reason outside the four', { ...base, kind: 'call-hangup', call_id: 'c', reason: 'bored' }],
    ['a device-sync without type', { ...base, kind: 'device-sync', contacts: [] }],
    ['a session-reset without ids', { ...base, kind: 'session-reset' }],
    ['an empty `to`', { ...base, kind: 'typing', state: 'started', to: '' }],
    ['a JSON array', [base]],
    ['a JSON string', 'text'],
  ])('refuses %s', (_, input) => {
    expect(codeOf(() => parseContent(json(input)))).toBe('bad_content');
  });

  it('refuses bytes that are not UTF-8 JSON, and a byte order mark', () => {
    expect(codeOf(() => parseContent(Uint8Array.of(0x7b, 0xff, 0x7d)))).toBe('bad_content');
    expect(codeOf(() => parseContent(utf8('{"v":1,')))).toBe('bad_content');
    expect(codeOf(() => parseContent(new Uint8Array(0)))).toBe('bad_content');
    const ok = json({ ...base, kind: 'typing', state: 'started' });
    expect(codeOf(() => parseContent(Uint8Array.from([0xef, 0xbb, 0xbf, ...ok])))).toBe('bad_content');
  });

  it('decodeContent refuses bad padding before reading the JSON', () => {
    const padded = encodeContent({ ...base, kind: 'typing', state: 'started' } as ContentInput);
    padded[padded.length - 1] = 1;
    expect(codeOf(() => decodeContent(padded))).toBe('bad_padding');
  });
});

describe('encodeContent', () => {
  const messageId = fc.tuple(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.uint8Array({ minLength: 10, maxLength: 10 })).map(([ms, r]) => newMessageId(ms, () => r));
  const textContent = fc.record(
    {
      id: messageId,
      ts: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      kind: fc.constant('text' as const),
      body: fc.string({ unit: 'grapheme', maxLength: 200 }),
      reply_to: messageId,
      edit_of: messageId,
      to: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    },
    { requiredKeys: ['id', 'ts', 'kind', 'body'] },
  );

  it('round-trips text content through pad, parse and unpad', () => {
    fc.assert(
      fc.property(textContent, (c) => {
        const padded = encodeContent(c);
        expect(padded.length % 160).toBe(0);
        expect(decodeContent(padded)).toEqual({ v: 1, ...c });
      }),
    );
  });

  it('round-trips the other kinds, device-sync members included', () => {
    const inputs: ContentInput[] = [
      { id: ID, ts: 1, kind: 'receipt', type: 'delivered', ids: [ID2] },
      { id: ID, ts: 1, kind: 'call-ice', call_id: 'c', candidates: [{ candidate: 'a', sdpMid: null, sdpMLineIndex: 1, usernameFragment: 'u' }, {}] },
      { id: ID, ts: 1, kind: 'call-hangup', call_id: 'c', reason: 'declined' },
      { id: ID, ts: 1, kind: 'device-sync', type: 'read-position', data: { conversation: 'bob@x', up_to: ID2 }, to: 'alice@x' },
      { id: ID, ts: 1, kind: 'session-reset', ids: [ID, ID2] },
    ];
    for (const c of inputs) expect(decodeContent(encodeContent(c))).toEqual({ v: 1, ...c });
  });

  it('writes §6 member order: v, id, ts, kind first', () => {
    const text = new TextDecoder().decode(serialiseContent({ kind: 'typing', state: 'started', ts: 7, id: ID }));
    expect(text).toBe(`{"v":1,"id":"${ID}","ts":7,"kind":"typing","state":"started"}`);
  });

  it('writes message ids lowercase even when given in uppercase (SPEC §6)', () => {
    const bytes = serialiseContent({ ...base, id: ID.toUpperCase() as MessageId, kind: 'text', body: 'x', reply_to: ID2.toUpperCase() as MessageId } as ContentInput);
    const text = new TextDecoder().decode(bytes);
    expect(text).toContain(ID);
    expect(text).toContain(ID2);
    expect(text).not.toMatch(/[A-F]/);
    const receipt = new TextDecoder().decode(serialiseContent({ ...base, kind: 'receipt', type: 'read', ids: [ID.toUpperCase() as MessageId] } as ContentInput));
    expect(receipt).not.toMatch(/[A-F]/);
  });

  it('refuses to send what a receiver would refuse', () => {
    expect(codeOf(() => encodeContent({ id: ID, ts: 1, kind: 'text', body: 'a'.repeat(MAX_TEXT_BODY_BYTES + 1) }))).toBe('bad_content');
    expect(codeOf(() => encodeContent({ id: 'nope' as never, ts: 1, kind: 'typing', state: 'started' }))).toBe('bad_content');
    // device-sync data may not smuggle in another kind.
    expect(codeOf(() => encodeContent({ id: ID, ts: 1, kind: 'device-sync', type: 't', data: { kind: 'text' } }))).toBe('bad_content');
  });
});

describe('newMessageId (RFC 9562 UUIDv7)', () => {
  it('puts the millisecond time in the first 48 bits and sets version 7 and variant 10', () => {
    const id = newMessageId(0x0196f5a06d2f, () => new Uint8Array(10).fill(0xff));
    expect(id).toBe('0196f5a0-6d2f-7fff-bfff-ffffffffffff');
    expect(newMessageId(0, () => new Uint8Array(10))).toBe('00000000-0000-7000-8000-000000000000');
  });

  it('always gives an id parseContent accepts, in canonical lowercase form', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.uint8Array({ minLength: 10, maxLength: 10 }), (ms, r) => {
        const id = newMessageId(ms, () => r.slice());
        expect(isMessageId(id)).toBe(true);
        expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
      }),
    );
  });

  it('sorts by creation time across milliseconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 48 - 2 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.uint8Array({ minLength: 10, maxLength: 10 }),
        fc.uint8Array({ minLength: 10, maxLength: 10 }),
        (ms, dt, r1, r2) => {
          fc.pre(ms + dt <= 2 ** 48 - 1);
          expect(newMessageId(ms, () => r1) < newMessageId(ms + dt, () => r2)).toBe(true);
        },
      ),
    );
  });

  it('refuses a time outside 48 bits and a short random source', () => {
    const r = () => new Uint8Array(10);
    for (const ms of [-1, 2 ** 48, 1.5, Number.NaN]) expect(codeOf(() => newMessageId(ms, r))).toBe('bad_format');
    expect(codeOf(() => newMessageId(1, () => new Uint8Array(9)))).toBe('bad_length');
  });
});
