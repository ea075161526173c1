/**
 * The outbox: a message is stored with its message_id before any network call, encrypted once per
 * device (the sealed copies are stored, so every retry sends the same bytes), and retried with
 * backoff until the server accepts it, the user cancels, or the retention passes. A 409 device
 * mismatch refreshes the device lists and seals only the copies that changed. The id never changes.
 */
import { toBase64url } from '../protocol/bytes.js';
import { type ContentBody, type ContentInput, type MessageId, newMessageId, serialiseContent } from '../protocol/content.js';
import { encryptMessage } from '../protocol/session.js';
import { utf8 } from '../protocol/bytes.js';
import { retryDelay } from './backoff.js';
import type { ClientCore } from './core.js';
import { type Directory, KeyChangedError, UnknownUserError } from './directory.js';
import { keys, type MessageRecord, type MessageStatus, type OutboxEntry, type SealedCopyRecord } from './state.js';
import { type Json, WriteBatch } from './storage.js';
import { ApiRequestError, NetworkError, deviceMismatchOf, type SendAnswer } from './transport/api.js';

/** Reconcile-and-resend rounds for one attempt before backing off. */
const MAX_MISMATCH_ROUNDS = 3;
/** While a contact's key change waits for the user, its messages are looked at again this often. */
const BLOCKED_RECHECK_MS = 60_000;
/** Retry timing runs on the real clock (timers do); the injected clock is the app's time (retention). */
const wallClock = (): number => Date.now();

type Entry = OutboxEntry & {
  silent: boolean;
  /** A re-send of an accepted message to one device that could not read it (SPEC §7). */
  resendTo?: Addr;
};

const entryKey = (e: Entry): string => (e.resendTo ? `${keys.outbox(e.messageId)}/${encodeURIComponent(e.resendTo.user)}/${e.resendTo.device}` : keys.outbox(e.messageId));

interface Target {
  user: string;
  device: number;
  ik: string;
}

export class Outbox {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  /** The next run ignores retry backoff (the connection came back). */
  private ignoreBackoff = false;
  private stopped = true;
  /** Entries go out in createdAt order: two enqueued in the same millisecond must not tie (a tie sorted by random id reorders them). */
  private lastCreatedAt = 0;

  constructor(
    private readonly core: ClientCore,
    private readonly directory: Directory,
  ) {}

  start(): void {
    this.stopped = false;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Stores a message for `recipient` and schedules its delivery. `silent`: no status (receipts). */
  async enqueue(recipient: string, body: ContentBody, silent = false, givenId?: MessageId): Promise<string> {
    const { ctx, kv } = this.core;
    const now = ctx.now();
    // Strictly increasing per device, also as the content's ts: a receiver that lists stored
    // messages (the bridge's catch-up after a crash) can put one sender's messages in send order.
    const createdAt = (this.lastCreatedAt = Math.max(now, this.lastCreatedAt + 1));
    // A caller-chosen id (the bridge derives one from the Matrix event id) makes a repeated enqueue a no-op.
    if (givenId !== undefined && (await Promise.all([kv.get(keys.outbox(givenId)), kv.get(keys.message(recipient, givenId))])).some((v) => v !== undefined)) return givenId;
    const messageId = givenId ?? newMessageId(now, ctx.random);
    const content = new TextDecoder().decode(serialiseContent({ ...body, id: messageId, ts: createdAt } as ContentInput));
    const entry: Entry = { messageId, recipient, content, createdAt, copies: [], attempts: 0, nextAttemptAt: 0, silent, ...(body.kind === 'call-offer' ? { urgent: true } : {}) };
    const ops: [string, Json][] = [[keys.outbox(messageId), entry as unknown as Json]];
    if (!silent) {
      const record: MessageRecord = {
        messageId,
        conversation: recipient,
        sender: this.core.self.userId,
        senderDevice: this.core.self.deviceId,
        outgoing: true,
        kind: body.kind,
        content,
        ts: createdAt,
        serverTs: null,
        status: 'pending',
        failure: null,
      };
      ops.push([keys.message(recipient, messageId), record as unknown as Json], [keys.sentIndex(messageId), { conversation: recipient }]);
    }
    await kv.write(ops);
    if (!silent) this.core.events.fire('status', { messageId, conversation: recipient, status: 'pending', failure: null });
    this.kick();
    return messageId;
  }

  /** Sends an accepted message again, same id and content, to one device that could not read it. */
  async resend(messageId: string, conversation: string, to: Addr): Promise<void> {
    const record = (await this.core.kv.get(keys.message(conversation, messageId))) as MessageRecord | undefined;
    if (!record?.outgoing || record.sender !== this.core.self.userId) return;
    const now = this.core.ctx.now();
    const createdAt = (this.lastCreatedAt = Math.max(now, this.lastCreatedAt + 1));
    const entry: Entry = { messageId, recipient: conversation, content: record.content, createdAt, copies: [], attempts: 0, nextAttemptAt: 0, silent: true, resendTo: to };
    await this.core.kv.write([[entryKey(entry), entry as unknown as Json]]);
    this.kick();
  }

  /** Gives up on a message not yet accepted by the server. */
  async cancel(messageId: string): Promise<boolean> {
    const entry = (await this.core.kv.get(keys.outbox(messageId))) as (Entry) | undefined;
    if (!entry) return false;
    await this.fail(entry, 'cancelled');
    return true;
  }

  /** Runs every waiting entry now, backoff or not: the server answers again. */
  retryNow(): void {
    this.ignoreBackoff = true;
    this.kick();
  }

  /** Runs the outbox soon (after a new message, a reconnect, an accepted key change). */
  kick(delayMs = 0): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      let next = Infinity;
      this.running = this.runDue()
        .then((n) => {
          next = n;
        })
        .finally(() => {
          this.running = null;
          if (this.again) {
            this.again = false;
            this.kick();
          } else if (next !== Infinity) this.kick(Math.max(0, next - wallClock()));
        });
    }, delayMs);
  }

  /** Pending entries, oldest first. */
  async pending(): Promise<Entry[]> {
    return (await this.core.kv.list(keys.outboxPrefix)).map(([, v]) => v as unknown as Entry).sort((a, b) => a.createdAt - b.createdAt || (a.messageId < b.messageId ? -1 : 1));
  }

  /** Attempts every due entry in order; returns when the next one is due (Infinity: none). */
  private async runDue(): Promise<number> {
    const entries = await this.pending();
    const force = this.ignoreBackoff;
    this.ignoreBackoff = false;
    let next = Infinity;
    for (const entry of entries) {
      if (this.stopped) return Infinity;
      if (!force && entry.nextAttemptAt > wallClock()) {
        next = Math.min(next, entry.nextAttemptAt);
        continue;
      }
      const retryAt = await this.attempt(entry);
      if (retryAt !== null) next = Math.min(next, retryAt);
    }
    return next;
  }

  /** One attempt; returns when to try again, or null when the entry is done. */
  private async attempt(entry: Entry): Promise<number | null> {
    const { ctx } = this.core;
    if (ctx.now() > entry.createdAt + this.core.retentionMs) {
      await this.fail(entry, 'expired: not accepted by the server within the retention');
      return null;
    }
    try {
      if (entry.resendTo) return await this.attemptResend(entry, entry.resendTo);
      if (!entry.copies.length) entry = await this.seal(entry, await this.targets(entry.recipient));
      for (let round = 0; ; round++) {
        try {
          const answer = await this.core.api.send(entry.messageId, entry.recipient, entry.copies, entry.urgent === true);
          await this.finish(entry, answer);
          return null;
        } catch (e) {
          const mismatch = deviceMismatchOf(e);
          if (!mismatch || round >= MAX_MISMATCH_ROUNDS) throw e;
          entry = await this.reconcile(entry, mismatch);
        }
      }
    } catch (e) {
      if (e instanceof KeyChangedError) return wallClock() + BLOCKED_RECHECK_MS;
      if (e instanceof UnknownUserError || e instanceof NoDevicesError) {
        await this.fail(entry, e.message);
        return null;
      }
      if (e instanceof NetworkError || (e instanceof ApiRequestError && (e.retryable || deviceMismatchOf(e)))) {
        const retryAt = wallClock() + retryDelay(entry.attempts);
        const next = { ...entry, attempts: entry.attempts + 1, nextAttemptAt: retryAt };
        await this.core.kv.write([[entryKey(entry), next as unknown as Json]]);
        // Still pending, but the user learns why it has not gone yet (and that it will be retried).
        if (!entry.silent && !entry.resendTo) {
          const why = e instanceof NetworkError ? 'the server cannot be reached' : `the server is busy (${(e as ApiRequestError).code})`;
          this.core.events.fire('status', { messageId: entry.messageId, conversation: entry.recipient, status: 'pending', failure: `queued: ${why}; retrying until it accepts the message` });
        }
        return retryAt;
      }
      if (e instanceof ApiRequestError) {
        await this.fail(entry, `refused by the server: ${e.code}`);
        return null;
      }
      throw e;
    }
  }

  private async attemptResend(entry: Entry, to: Addr): Promise<null> {
    const device = (await this.directory.refreshDevices(to.user)).find((d) => d.id === to.device);
    if (!device) {
      await this.settle(entry, 'failed', 'device gone', null);
      return null;
    }
    if (!entry.copies.length) entry = await this.seal(entry, [{ user: to.user, device: to.device, ik: device.ik }]);
    const copy = entry.copies[0];
    if (copy) await this.core.api.resend(entry.messageId, entry.recipient, copy);
    await this.settle(entry, 'sent', null, null);
    return null;
  }

  /** Every device that gets a copy: the recipient's, and our own other devices. */
  private async targets(recipient: string): Promise<Target[]> {
    const self = this.core.self.userId;
    let theirs = await this.directory.devices(recipient);
    // An empty cached list may be stale: ask the server before concluding there is nobody to send to.
    if (!theirs.length && recipient !== self) theirs = await this.directory.refreshDevices(recipient);
    if (!theirs.length && recipient !== self) throw new NoDevicesError(recipient);
    const ours = recipient === self ? theirs : await this.directory.devices(self);
    return [...(recipient === self ? [] : theirs.map((d) => ({ user: recipient, device: d.id, ik: d.ik }))), ...ours.map((d) => ({ user: self, device: d.id, ik: d.ik }))];
  }

  /** Encrypts a copy for each target (sessions made where missing) and stores them with the session changes. */
  private async seal(entry: Entry, targets: Target[]): Promise<Entry> {
    const { ctx, self } = this.core;
    return this.core.lock.run(async () => {
      const batch = new WriteBatch(this.core.kv);
      for (const user of new Set(targets.map((t) => t.user)))
        await this.directory.ensureSessions(
          user,
          targets.filter((t) => t.user === user).map((t) => t.device),
          batch,
        );
      const store = this.directory.protocolStore(batch);
      const copies: SealedCopyRecord[] = [...entry.copies];
      // Our own other devices learn which conversation the copy belongs to (SPEC §6 `to`).
      const toOwn = entry.recipient === self.userId ? entry.content : JSON.stringify({ ...(JSON.parse(entry.content) as object), to: entry.recipient });
      for (const t of targets) {
        const peer = { userId: t.user, deviceId: t.device };
        if (!(await store.loadSessions(peer)).length) continue;
        const plaintext = utf8(t.user === self.userId && entry.recipient !== self.userId ? toOwn : entry.content);
        const m = await encryptMessage(ctx, store, peer, plaintext);
        copies.push({ user: t.user, device: t.device, key: t.ik, type: m.type, body: toBase64url(m.wire) });
      }
      const next = { ...entry, copies };
      batch.put(entryKey(entry), next as unknown as Json);
      await batch.flush();
      return next;
    });
  }

  private async reconcile(entry: Entry, m: { missing: Addr[]; extra: Addr[]; stale: Addr[] }): Promise<Entry> {
    const users = new Set([...m.missing, ...m.extra, ...m.stale].map((a) => a.user));
    const fresh: Target[] = [];
    for (const user of users) for (const d of await this.directory.refreshDevices(user)) fresh.push({ user, device: d.id, ik: d.ik });
    const drop = (a: Addr) => [...m.extra, ...m.stale].some((x) => x.user === a.user && x.device === a.device);
    const current = (c: SealedCopyRecord) => !users.has(c.user) || fresh.some((f) => f.user === c.user && f.device === c.device);
    const kept = entry.copies.filter((c) => !drop(c) && current(c));
    const need = fresh.filter((f) => !kept.some((c) => c.user === f.user && c.device === f.device));
    return this.seal({ ...entry, copies: kept }, need);
  }

  private async finish(entry: Entry, answer: SendAnswer): Promise<void> {
    await this.settle(entry, 'sent', null, answer.server_ts);
  }

  private async fail(entry: Entry, reason: string): Promise<void> {
    await this.settle(entry, 'failed', reason, null);
  }

  private async settle(entry: Entry, status: MessageStatus, failure: string | null, serverTs: number | null): Promise<void> {
    const { kv, events } = this.core;
    await this.core.lock.run(async () => {
      // Cancelled or settled meanwhile: the first outcome stands.
      if (!(await kv.get(entryKey(entry)))) return;
      const ops: [string, Json | undefined][] = [[entryKey(entry), undefined]];
      if (entry.resendTo) return kv.write(ops);
      const key = keys.message(entry.recipient, entry.messageId);
      const record = (await kv.get(key)) as MessageRecord | undefined;
      // A receipt may have arrived before the send's answer: never move a status backwards.
      if (record && record.status === 'pending') ops.push([key, { ...record, status, failure, serverTs } as unknown as Json]);
      await kv.write(ops);
      if (record && record.status === 'pending' && !entry.silent) events.fire('status', { messageId: entry.messageId, conversation: entry.recipient, status, failure });
    });
  }
}

class NoDevicesError extends Error {
  constructor(user: string) {
    super(`${user} has no devices to send to`);
  }
}

interface Addr {
  user: string;
  device: number;
}
