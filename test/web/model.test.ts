/** How the web client folds stored records into what the chat shows: edits in place, replies quoted. */
import { describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../src/client/state.js';
import { chatMessages, safetyGroups } from '../../web/src/model.js';

let ts = 1_000;
function rec(id: string, sender: string, content: object, extra: Partial<MessageRecord> = {}): MessageRecord {
  return { messageId: id, conversation: 'bob', sender, senderDevice: 1, outgoing: sender === 'alice', kind: 'text', content: JSON.stringify({ kind: 'text', ...content }), ts: ts++, serverTs: null, status: 'sent', failure: null, ...extra };
}

describe('chat model', () => {
  it('applies the last edit to its target in place and quotes the edited text in replies', () => {
    const out = chatMessages([
      rec('m1', 'alice', { body: 'helo' }),
      rec('m2', 'bob', { body: 'what?', reply_to: 'm1' }),
      rec('m3', 'alice', { body: 'hello', edit_of: 'm1' }),
      rec('m4', 'alice', { body: 'hello!', edit_of: 'm1' }),
    ]);
    expect(out.map((m) => [m.id, m.body, m.edited])).toEqual([
      ['m1', 'hello!', true],
      ['m2', 'what?', false],
    ]);
    expect(out[1]!.replyTo).toEqual({ id: 'm1', body: 'hello!', sender: 'alice' });
  });

  it("ignores an edit of someone else's message, other kinds, and unreadable content", () => {
    const out = chatMessages([
      rec('m1', 'alice', { body: 'mine' }),
      rec('m2', 'bob', { body: 'hijacked', edit_of: 'm1' }),
      { ...rec('m3', 'bob', { body: 'x' }), kind: 'receipt' },
      { ...rec('m4', 'bob', { body: 'x' }), content: '{not json' },
    ]);
    expect(out.map((m) => [m.id, m.body, m.edited])).toEqual([['m1', 'mine', false]]);
  });

  it('says so when a reply quotes a message this device does not have', () => {
    const [m] = chatMessages([rec('m9', 'bob', { body: 're', reply_to: 'gone' })]);
    expect(m!.replyTo).toEqual({ id: 'gone', body: 'Original message not available', sender: '' });
  });

  it('groups a 60-digit safety number in twelve fives', () => {
    const g = safetyGroups('12345 67890 '.repeat(6));
    expect(g).toHaveLength(12);
    expect(g.every((x) => /^\d{5}$/.test(x))).toBe(true);
  });
});
