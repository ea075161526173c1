/**
 * Receiving: decrypt, deduplicate on (sender account, message_id), persist, and only then let the
 * envelope be acked. Applies what each kind means (SPEC §6), answers an undecryptable message with
 * a rate-limited session-reset (§7), and holds messages signed under a changed account key until
 * the user accepts the change (§8).
 */
import { fromBase64url, fromUtf8 } from '../protocol/bytes.js';
import { type Content, type MessageId, isMessageId, parseContent } from '../protocol/content.js';
import { ProtocolError } from '../protocol/errors.js';
import { SESSION_RESET_INTERVAL_MS } from '../protocol/limits.js';
import { decryptMessage, startSession } from '../protocol/session.js';
import type { CallSignal, ClientCore, IncomingMessage } from './core.js';
import type { Directory } from './directory.js';
import type { Outbox } from './outbox.js';
import { keys, type MessageRecord, type MessageStatus } from './state.js';
import { type Json, WriteBatch } from './storage.js';
import type { Envelope } from './transport/api.js';

/** Call offers older than this when they arrive are dropped (the caller has given up). */
export const CALL_OFFER_FRESH_MS = 60_000;
/** Typing notices older than this when they arrive are stale and dropped. */
const TYPING_FRESH_MS = 60_000;
const STATUS_ORDER: Record<MessageStatus, number> = { failed: -1, pending: 0, sent: 1, delivered: 2, read: 3 };

interface ResetState {
  sentAt: number | null;
  pending: string[];
}

type Effect = () => void;

type CallContent = Extract<Content, { kind: 'call-offer' | 'call-answer' | 'call-ice' | 'call-hangup' }>;

function callSignal(env: Envelope, c: CallContent, peer: string, own: boolean): CallSignal {
  const base = { peer, from: { user: env.sender, device: env.sender_device }, own, callId: c.call_id, messageId: c.id, ts: c.ts };
  switch (c.kind) {
    case 'call-offer':
      return { ...base, kind: 'offer', sdp: c.sdp };
    case 'call-answer':
      return { ...base, kind: 'answer', sdp: c.sdp };
    case 'call-ice':
      return { ...base, kind: 'ice', candidates: c.candidates };
    case 'call-hangup':
      return { ...base, kind: 'hangup', reason: c.reason };
  }
}

export class Inbox {
  constructor(
    private readonly core: ClientCore,
    private readonly directory: Directory,
    private readonly outbox: Outbox,
  ) {}

  /** Handles a batch in queue order; returns the envelope ids that may be acked (all, once persisted). */
  async handle(envelopes: Envelope[]): Promise<string[]> {
    const receipts = new Map<string, MessageId[]>();
    const acks: string[] = [];
    for (const env of envelopes) {
      const delivered = await this.handleOne(env);
      if (delivered) receipts.set(env.sender, [...(receipts.get(env.sender) ?? []), delivered]);
      acks.push(env.id);
    }
    // Automatic delivery receipts, one message per sender.
    for (const [sender, ids] of receipts) await this.outbox.enqueue(sender, { kind: 'receipt', type: 'delivered', ids }, true);
    return acks;
  }

  /** Returns the message_id to send a delivery receipt for, if any. */
  private async handleOne(env: Envelope): Promise<MessageId | null> {
    const { kv, ctx, self, events } = this.core;
    if (await kv.get(keys.seen(env.sender, env.message_id))) return null;
    const effects: Effect[] = [];
    const receipt = await this.core.lock.run(async () => {
      const batch = new WriteBatch(kv);
      let plaintext: Uint8Array;
      try {
        const wire = fromBase64url(env.body);
        plaintext = (await decryptMessage(ctx, this.directory.protocolStore(batch), self, { userId: env.sender, deviceId: env.sender_device }, wire)).plaintext;
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        await this.undecryptable(env, e, effects);
        return null;
      }
      let content: Content;
      try {
        content = parseContent(plaintext);
      } catch {
        effects.push(() => events.fire('suspicious', { from: env.sender, device: env.sender_device, reason: 'malformed content' }));
        await batch.flush();
        return null;
      }
      if (content.id !== env.message_id) {
        effects.push(() => events.fire('suspicious', { from: env.sender, device: env.sender_device, reason: 'message_id differs from the envelope' }));
        await batch.flush();
        return null;
      }
      if (await kv.get(keys.seen(env.sender, content.id))) {
        await batch.flush();
        return null;
      }
      batch.put(keys.seen(env.sender, content.id), { at: ctx.now() });
      const r = await this.apply(env, content, batch, effects);
      await batch.flush();
      return r;
    });
    for (const f of effects) f();
    return receipt;
  }

  private suspicious(env: Envelope, reason: string, effects: Effect[]): null {
    effects.push(() => this.core.events.fire('suspicious', { from: env.sender, device: env.sender_device, reason }));
    return null;
  }

  private async apply(env: Envelope, c: Content, batch: WriteBatch, effects: Effect[]): Promise<MessageId | null> {
    const { self, events } = this.core;
    const own = env.sender === self.userId;
    // `to` and device-sync only from our own devices (SPEC §6).
    if (c.to !== undefined && !own) return this.suspicious(env, '`to` from another account', effects);
    switch (c.kind) {
      case 'text': {
        const conversation = own ? (c.to ?? self.userId) : env.sender;
        for (const ref of [c.edit_of].filter((x): x is NonNullable<typeof x> => !!x)) {
          const target = (await batch.get(keys.message(conversation, ref))) as MessageRecord | undefined;
          if (!target || target.sender !== env.sender) return this.suspicious(env, 'edit of a message from another sender', effects);
        }
        const record: MessageRecord = {
          messageId: c.id,
          conversation,
          sender: env.sender,
          senderDevice: env.sender_device,
          outgoing: own,
          kind: 'text',
          content: fromUtf8(new TextEncoder().encode(JSON.stringify(c))),
          ts: c.ts,
          serverTs: env.server_ts,
          status: own ? 'sent' : 'delivered',
          failure: null,
        };
        batch.put(keys.message(conversation, c.id), record as unknown as Json);
        const m: IncomingMessage = {
          messageId: c.id,
          conversation,
          sender: env.sender,
          senderDevice: env.sender_device,
          outgoing: own,
          body: c.body,
          ts: c.ts,
          replyTo: c.reply_to ?? null,
          editOf: c.edit_of ?? null,
        };
        effects.push(() => events.fire('message', m));
        return own ? null : c.id;
      }
      case 'receipt': {
        if (own) return null;
        const status: MessageStatus = c.type === 'read' ? 'read' : 'delivered';
        for (const id of c.ids) {
          const idx = (await batch.get(keys.sentIndex(id))) as { conversation: string } | undefined;
          if (!idx || idx.conversation !== env.sender) continue;
          const key = keys.message(idx.conversation, id);
          const rec = (await batch.get(key)) as MessageRecord | undefined;
          if (!rec || STATUS_ORDER[rec.status] >= STATUS_ORDER[status]) continue;
          batch.put(key, { ...rec, status, failure: null } as unknown as Json);
          effects.push(() => events.fire('status', { messageId: id, conversation: idx.conversation, status, failure: null }));
        }
        return null;
      }
      case 'typing':
        if (!own && this.core.ctx.now() - c.ts < TYPING_FRESH_MS) effects.push(() => events.fire('typing', { from: env.sender, state: c.state }));
        return null;
      case 'device-sync':
        if (!own) return this.suspicious(env, 'device-sync from another account', effects);
        return null;
      case 'session-reset': {
        if (own && c.to !== undefined) return null;
        // The peer could not read these: send each of ours again, under the same id, to that device.
        for (const id of c.ids) {
          const idx = (await batch.get(keys.sentIndex(id))) as { conversation: string } | undefined;
          if (idx) effects.push(() => this.core.background.run(() => this.outbox.resend(id, idx.conversation, { user: env.sender, device: env.sender_device })));
        }
        return null;
      }
      case 'call-offer':
      case 'call-answer':
      case 'call-ice':
      case 'call-hangup': {
        const signal = callSignal(env, c, own ? (c.to ?? self.userId) : env.sender, own);
        // A ringing phone for a call that ended long ago helps nobody.
        if (c.kind === 'call-offer' && this.core.ctx.now() - c.ts > CALL_OFFER_FRESH_MS) return null;
        effects.push(() => events.fire('call', signal));
        return null;
      }
    }
  }

  private async undecryptable(env: Envelope, e: ProtocolError, effects: Effect[]): Promise<void> {
    const { kv } = this.core;
    if (e.code === 'replayed_prekey') return; // SPEC §7: a refused replay is not answered
    if (e.code === 'untrusted_identity') {
      // Signed under an account key we do not trust (yet): keep it until the user decides.
      await kv.write([[`held/${encodeURIComponent(env.sender)}/${env.id}`, env as unknown as Json]]);
      // Refreshing flags a changed AK (and tells the UI); a network failure is retried on the next message.
      effects.push(() => this.core.background.run(() => this.directory.refreshDevices(env.sender)));
      return;
    }
    const key = keys.resetSentAt(env.sender, env.sender_device);
    const state = ((await kv.get(key)) as ResetState | undefined) ?? { sentAt: null, pending: [] };
    const next: ResetState = { ...state, pending: [...new Set([...state.pending, env.message_id])] };
    await kv.write([[key, next as unknown as Json]]);
    effects.push(() => this.core.background.run(() => this.sendResets()));
  }

  /**
   * Sends the pending session-resets whose hour has passed: a new session with that device, then a
   * `session-reset` listing the ids it could not read (SPEC §7). Called again by the upkeep timer.
   */
  async sendResets(): Promise<void> {
    const { kv, ctx, api } = this.core;
    for (const [key, value] of await kv.list('resets/')) {
      const state = value as unknown as ResetState;
      if (!state.pending.length) continue;
      if (state.sentAt !== null && ctx.now() - state.sentAt < SESSION_RESET_INTERVAL_MS) continue;
      const [, userEnc, dev] = key.split('/');
      const user = decodeURIComponent(userEnc!);
      const device = Number(dev);
      const { bundles } = await api.bundles(user, [device]);
      await this.core.lock.run(async () => {
        const batch = new WriteBatch(kv);
        const store = this.directory.protocolStore(batch);
        for (const b of bundles) await startSession(ctx, store, this.core.self, b);
        batch.put(key, { sentAt: ctx.now(), pending: [] });
        await batch.flush();
      });
      await this.outbox.enqueue(user, { kind: 'session-reset', ids: state.pending.filter(isMessageId) }, true);
    }
  }

  /** After the user accepted a key change: the held messages are tried again. */
  async releaseHeld(userId: string): Promise<void> {
    const prefix = `held/${encodeURIComponent(userId)}/`;
    const held = await this.core.kv.list(prefix);
    if (!held.length) return;
    await this.handle(held.map(([, v]) => v as unknown as Envelope));
    await this.core.kv.write(held.map(([k]) => [k, undefined] as const));
  }
}
