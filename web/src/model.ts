/** What the screens show, derived from the SDK's stored message records (edits folded in, replies quoted). */
import type { MessageRecord, MessageStatus } from '../../src/client/state.js';

export interface ChatMessage {
  id: string;
  conversation: string;
  sender: string;
  outgoing: boolean;
  body: string;
  ts: number;
  status: MessageStatus;
  failure: string | null;
  edited: boolean;
  replyTo: { id: string; body: string; sender: string } | null;
}

export interface Conversation {
  userId: string;
  last: ChatMessage | null;
  unread: number;
  verified: boolean;
  keyChanged: boolean;
}

interface TextContent {
  kind: 'text';
  body: string;
  reply_to?: string;
  edit_of?: string;
}

function textOf(r: MessageRecord): TextContent | null {
  if (r.kind !== 'text') return null;
  try {
    const c = JSON.parse(r.content) as Partial<TextContent>;
    return typeof c.body === 'string' ? (c as TextContent) : null;
  } catch {
    return null;
  }
}

/** The conversation as the user reads it: an edit replaces its target's body (last edit wins), not a new bubble. */
export function chatMessages(records: MessageRecord[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  const byId = new Map<string, ChatMessage>();
  const replies: [ChatMessage, string][] = [];
  for (const r of records) {
    const c = textOf(r);
    if (!c) continue;
    if (c.edit_of) {
      const target = byId.get(c.edit_of);
      if (target && target.sender === r.sender) {
        target.body = c.body;
        target.edited = true;
      }
      continue;
    }
    const m: ChatMessage = {
      id: r.messageId,
      conversation: r.conversation,
      sender: r.sender,
      outgoing: r.outgoing,
      body: c.body,
      ts: r.ts,
      status: r.status,
      failure: r.failure,
      edited: false,
      replyTo: null,
    };
    if (c.reply_to) replies.push([m, c.reply_to]);
    byId.set(m.id, m);
    out.push(m);
  }
  for (const [m, ref] of replies) {
    const t = byId.get(ref);
    m.replyTo = t ? { id: t.id, body: t.body, sender: t.sender } : { id: ref, body: 'Original message not available', sender: '' };
  }
  return out;
}

export function formatTime(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const today = new Date(now);
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

/** A 60-digit safety number in 12 groups of five, for reading aloud. */
export function safetyGroups(n: string): string[] {
  const digits = n.replace(/\D/g, '');
  return digits.match(/.{1,5}/g) ?? [];
}
