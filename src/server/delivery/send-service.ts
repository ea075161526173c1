/**
 * Accepting a send: check it against the current device lists, deduplicate it on
 * (sender device, message_id), and queue one envelope per copy. Every send that arrived while
 * the previous batch was being written joins the next batch (group commit): one read and one
 * write statement per batch, however many sends it carries. Nothing here knows HTTP.
 */
import { createHash } from 'node:crypto';
import type { DeliveryLimits } from './limits.js';
import { MAX_SENDS_PER_BATCH } from './limits.js';
import { GroupCommit } from './group-commit.js';
import { QueueBudget } from './queue-budget.js';
import { wireProblem } from './wire-check.js';
import { type BatchSnapshot, type DeviceRef, type NewEnvelope, type NewSend, type QueueRepository, accountOf, bodyBytes, envelopeOf, sendKey } from './queue-repository.js';
import type { DeviceAddress, Envelope, ResendRequest, SendAnswer, SendRequest } from './schemas.js';
import type { WakeBus } from './wake-bus.js';

/** The authenticated device that sends. */
export interface Sender {
  readonly username: string;
  readonly deviceRef: DeviceRef;
  readonly device: number;
}

export interface DeviceInfo {
  readonly device: number;
  readonly ref: DeviceRef;
  /** The device's identity key (IK), base64url. */
  readonly key: string;
}

export type SendResult =
  | { readonly kind: 'accepted'; readonly answer: SendAnswer; readonly replay: boolean }
  | { readonly kind: 'mismatch'; readonly missing: DeviceAddress[]; readonly extra: DeviceAddress[]; readonly stale: DeviceAddress[] }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'unknown_recipient' }
  /** `share`: the sender's own share of those queues is full (other senders still get through). */
  | { readonly kind: 'queue_full'; readonly devices: DeviceAddress[]; readonly share: boolean }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'too_large'; readonly reason: string }
  /** A re-send of a message_id this device never sent (or whose dedup entry expired). */
  | { readonly kind: 'not_sent' };

interface Command {
  readonly sender: Sender;
  readonly req: SendRequest;
  readonly hash: Buffer;
}

/**
 * What a batch decides for one command; `retry` goes through the next batch, `failed` is the
 * database refusing this command on its own (send() throws it).
 */
type Decision = SendResult | { readonly kind: 'retry' } | { readonly kind: 'failed'; readonly error: unknown };

export interface SendServiceDeps {
  readonly repo: QueueRepository;
  readonly wakeBus: WakeBus;
  readonly limits: DeliveryLimits;
  readonly now: () => number;
  /** Called after each commit with the envelopes it queued, by device (the local stream hub). */
  readonly onCommitted: (byDevice: Map<DeviceRef, Envelope[]>) => void;
  /** Called after each commit with what it queued, for wake-ups (push); must not block. */
  readonly onQueued?: (queued: readonly QueuedNotice[]) => void;
}

/** One envelope a commit queued, as the wake-up side sees it: no body, no sender. */
export interface QueuedNotice {
  readonly device: DeviceRef;
  /** The envelope's server id. */
  readonly id: string;
  readonly messageId: string;
  /** The send asked for an urgent wake-up (a call offer). */
  readonly urgent: boolean;
}

export class SendService {
  private readonly batcher: GroupCommit<Command, Decision>;
  /** Settle when the previous batch's read, and its write (with the hand-off to the streams), are done. */
  private lastRead: Promise<void> = Promise.resolve();
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SendServiceDeps) {
    this.batcher = new GroupCommit((cmds) => this.runBatch(cmds), {
      maxBatch: MAX_SENDS_PER_BATCH,
      maxPending: deps.limits.maxPendingSends,
      maxConcurrent: 2,
    });
  }

  get pending(): number {
    return this.batcher.pending;
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  /** Throws BacklogFullError when too many sends wait for a commit on this instance. */
  async send(sender: Sender, req: SendRequest): Promise<SendResult> {
    const pre = this.precheck(sender, req);
    if (pre) return pre;
    const cmd: Command = { sender, req, hash: contentHash(req) };
    // A concurrent send of the same key on another instance (or in the same batch) committed
    // first: the next batch sees its dedup entry. Bounded, since that entry now exists.
    for (let attempt = 0; attempt < 5; attempt++) {
      const d = await this.batcher.submit(cmd);
      if (d.kind === 'failed') throw d.error;
      if (d.kind !== 'retry') return d;
    }
    throw new Error('send: dedup entry not visible after retries');
  }

  /**
   * SPEC §7: queues an accepted message again, same message_id, for one device that could not
   * read it (it sent a session-reset). Only a message this sending device sent within the
   * retention can be re-sent, only to a current device of the recipient or of the sender's own
   * account, under that device's current key. The receiver deduplicates on (sender, message_id),
   * so a re-send of something it did read is dropped there.
   *
   * Idempotent like a send: the same re-send again (same message_id, recipient and copy) answers
   * the first answer and queues nothing. Its dedup entry sits in the send table under an id
   * derived from the request (resendKey), which no send can take.
   */
  async resend(sender: Sender, req: ResendRequest): Promise<SendResult> {
    const pre = this.precheck(sender, { message_id: req.message_id, recipient: req.recipient, copies: [req.copy] });
    if (pre) return pre;
    const { repo, limits } = this.deps;
    const hash = resendHash(req);
    const key = resendKey(hash);
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.deps.now();
      const snap = await repo.readBatch({
        keys: [
          { senderDevice: sender.deviceRef, messageId: req.message_id, recipient: req.recipient },
          { senderDevice: sender.deviceRef, messageId: key, recipient: req.recipient },
        ],
        usernames: [...new Set([req.recipient, sender.username])],
        idCount: 1,
        now,
      });
      const done = snap.sends.find((st) => st.messageId === key);
      if (done) return done.contentHash.equals(hash) ? { kind: 'accepted', answer: done.answer as SendAnswer, replay: true } : { kind: 'conflict' };
      const original = snap.sends.find((st) => st.messageId === req.message_id);
      if (!original) return { kind: 'not_sent' };
      const stored = original.answer as SendAnswer;
      const copy = req.copy;
      // The original send's recipient must be this one: a re-send cannot reach anybody new.
      if (!stored.envelopes.some((e) => e.user === copy.user)) return { kind: 'mismatch', missing: [], extra: [addressOf(copy)], stale: [] };
      const device = (snap.devices.get(copy.user) ?? []).find((d) => d.device === copy.device && d.ref !== sender.deviceRef);
      if (!device) return { kind: 'mismatch', missing: [], extra: [addressOf(copy)], stale: [] };
      if (device.key !== copy.key) return { kind: 'mismatch', missing: [], extra: [], stale: [addressOf(copy)] };
      const refusal = new QueueBudget(limits, snap).refusal(device.ref, accountOf(sender.deviceRef), bodyBytes(copy.body));
      if (refusal) return { kind: 'queue_full', devices: [addressOf(copy)], share: refusal === 'sender' };
      const env: NewEnvelope = {
        id: snap.ids[0]!,
        senderRef: sender.deviceRef,
        device: device.ref,
        messageId: req.message_id,
        sender: sender.username,
        senderDevice: sender.device,
        type: copy.type,
        body: copy.body,
        serverTs: now,
      };
      const answer: SendAnswer = { message_id: req.message_id, server_ts: now, envelopes: [{ user: copy.user, device: copy.device, id: env.id }] };
      const entry: NewSend = { senderDevice: sender.deviceRef, messageId: key, contentHash: hash, answer, expiresAt: now + limits.retentionMs };
      // Lost: the same re-send committed first; the next round reads and answers its entry.
      if (!(await repo.writeResend(entry, env, this.deps.wakeBus.payloads([device.ref]), now))) continue;
      this.deps.onCommitted(new Map([[device.ref, [envelopeOf(env)]]]));
      this.deps.onQueued?.([{ device: device.ref, id: env.id, messageId: env.messageId, urgent: false }]);
      return { kind: 'accepted', answer, replay: false };
    }
    throw new Error('resend: dedup entry not visible after retries');
  }

  private precheck(sender: Sender, req: SendRequest): SendResult | null {
    const l = this.deps.limits;
    if (req.copies.length > l.maxCopies) return { kind: 'too_large', reason: `more than ${l.maxCopies} copies` };
    const seen = new Set<string>();
    for (const c of req.copies) {
      if (c.body.length % 4 === 1) return { kind: 'invalid', reason: 'a copy body is not valid base64url' };
      if (Math.floor((c.body.length * 3) / 4) > l.maxBodyBytes)
        return { kind: 'too_large', reason: `a copy body is larger than ${l.maxBodyBytes} bytes` };
      const wrong = wireProblem(c.type, c.body);
      if (wrong) return { kind: 'invalid', reason: wrong };
      if (c.user !== req.recipient && c.user !== sender.username)
        return { kind: 'invalid', reason: 'a copy is for neither the recipient nor the sender' };
      const k = `${c.device}@${c.user}`;
      if (seen.has(k)) return { kind: 'invalid', reason: 'two copies for one device' };
      seen.add(k);
    }
    return null;
  }

  /**
   * Two batches may run at once: the second reads while the first writes. Reads (which draw
   * the envelope ids) and writes (with the hand-off of their envelopes to the streams) each
   * happen in batch order, so one sender's messages keep their order and ids grow along each
   * queue.
   */
  private async runBatch(cmds: readonly Command[]): Promise<Decision[]> {
    const prevRead = this.lastRead;
    const prevWrite = this.lastWrite;
    let readDone!: () => void;
    let writeDone!: () => void;
    this.lastRead = new Promise<void>((r) => (readDone = r));
    this.lastWrite = new Promise<void>((r) => (writeDone = r));
    try {
      return await this.decideAndWrite(cmds, prevRead, readDone, prevWrite);
    } finally {
      readDone();
      writeDone();
    }
  }

  private async decideAndWrite(
    cmds: readonly Command[],
    prevRead: Promise<void>,
    readDone: () => void,
    prevWrite: Promise<void>,
  ): Promise<Decision[]> {
    const { repo, limits } = this.deps;
    const now = this.deps.now();
    const out: Decision[] = cmds.map(() => ({ kind: 'retry' }));
    // Two sends of one key in one batch: the later one waits for the next batch (and replays).
    const firstOfKey = new Map<string, number>();
    cmds.forEach((c, i) => {
      const k = sendKey(c.sender.deviceRef, c.req.message_id);
      if (!firstOfKey.has(k)) firstOfKey.set(k, i);
    });
    const live = [...firstOfKey.values()];
    const usernames = new Set<string>();
    let copies = 0;
    for (const i of live) {
      usernames.add(cmds[i]!.req.recipient);
      usernames.add(cmds[i]!.sender.username);
      copies += cmds[i]!.req.copies.length;
    }

    // 1. One read: dedup entries, device lists with queue lengths, envelope ids.
    await prevRead;
    let snap: BatchSnapshot;
    try {
      snap = await repo.readBatch({
        keys: live.map((i) => ({ senderDevice: cmds[i]!.sender.deviceRef, messageId: cmds[i]!.req.message_id, recipient: cmds[i]!.req.recipient })),
        usernames: [...usernames],
        idCount: copies,
        now,
      });
    } catch (err) {
      if (cmds.length === 1) throw err;
      // One send the database refuses must not fail the others: each alone, in order, while
      // this batch still holds its turn to read (so ids keep growing along each queue).
      await prevWrite;
      const alone: Decision[] = [];
      for (const c of cmds) {
        alone.push(
          await this.decideAndWrite([c], Promise.resolve(), () => undefined, Promise.resolve()).then(
            (d) => d[0]!,
            (error: unknown): Decision => ({ kind: 'failed', error }),
          ),
        );
      }
      return alone;
    }
    readDone();
    const storedByKey = new Map(snap.sends.map((st) => [sendKey(st.senderDevice, st.messageId), st]));
    const budget = new QueueBudget(limits, snap);

    // 2. Decide each send.
    let nextId = 0;
    const writes: { index: number; send: NewSend; envs: NewEnvelope[] }[] = [];
    for (const i of live) {
      const c = cmds[i]!;
      const stored = storedByKey.get(sendKey(c.sender.deviceRef, c.req.message_id));
      if (stored) {
        out[i] = stored.contentHash.equals(c.hash) ? { kind: 'accepted', answer: stored.answer as SendAnswer, replay: true } : { kind: 'conflict' };
        continue;
      }
      const check = checkDevices(c.sender, c.req, snap.devices);
      if (check.kind !== 'ok') {
        out[i] = check;
        continue;
      }
      const senderAccount = accountOf(c.sender.deviceRef);
      const refusals = check.refs.map((ref, j) => budget.refusal(ref, senderAccount, bodyBytes(c.req.copies[j]!.body)));
      const full = c.req.copies.filter((_, j) => refusals[j] !== null).map(addressOf);
      if (full.length > 0) {
        out[i] = { kind: 'queue_full', devices: full, share: !refusals.includes('device') };
        continue;
      }
      const mine = c.req.copies.map(
        (copy, j): NewEnvelope => ({
          id: snap.ids[nextId++]!,
          senderRef: c.sender.deviceRef,
          device: check.refs[j]!,
          messageId: c.req.message_id,
          sender: c.sender.username,
          senderDevice: c.sender.device,
          type: copy.type,
          body: copy.body,
          serverTs: now,
        }),
      );
      check.refs.forEach((ref, j) => budget.add(ref, senderAccount, bodyBytes(c.req.copies[j]!.body)));
      const answer: SendAnswer = {
        message_id: c.req.message_id,
        server_ts: now,
        envelopes: c.req.copies.map((copy, j) => ({ user: copy.user, device: copy.device, id: mine[j]!.id })),
      };
      writes.push({
        index: i,
        send: { senderDevice: c.sender.deviceRef, messageId: c.req.message_id, contentHash: c.hash, answer, expiresAt: now + limits.retentionMs },
        envs: mine,
      });
      out[i] = { kind: 'accepted', answer, replay: false };
    }
    await prevWrite;
    if (writes.length === 0) return out;

    // 3. One write, committed on its own: dedup entries, envelopes, NOTIFY. Should the database
    // refuse it, each send is written alone (with the ids it drew), so only the one at fault fails.
    const write = (ws: typeof writes): Promise<Set<string>> => {
      const envs = ws.flatMap((w) => w.envs);
      return repo.writeBatch(
        ws.map((w) => w.send),
        envs,
        this.deps.wakeBus.payloads([...new Set(envs.map((e) => e.device))]),
        now,
      );
    };
    let won: Set<string>;
    try {
      won = await write(writes);
    } catch (err) {
      if (writes.length === 1) throw err;
      won = new Set();
      for (const w of writes) {
        try {
          for (const k of await write([w])) won.add(k);
        } catch (error) {
          out[w.index] = { kind: 'failed', error };
        }
      }
    }
    const byDevice = new Map<DeviceRef, Envelope[]>();
    const notices: QueuedNotice[] = [];
    for (const w of writes) {
      if (out[w.index]!.kind === 'failed') continue;
      if (!won.has(sendKey(w.send.senderDevice, w.send.messageId))) {
        out[w.index] = { kind: 'retry' };
        continue;
      }
      const urgent = cmds[w.index]!.req.urgent === true;
      for (const e of w.envs) {
        const list = byDevice.get(e.device);
        if (list) list.push(envelopeOf(e));
        else byDevice.set(e.device, [envelopeOf(e)]);
        notices.push({ device: e.device, id: e.id, messageId: e.messageId, urgent });
      }
    }
    if (byDevice.size > 0) this.deps.onCommitted(byDevice);
    if (notices.length > 0) this.deps.onQueued?.(notices);
    return out;
  }
}

type DeviceCheck = { kind: 'ok'; refs: DeviceRef[] } | Extract<SendResult, { kind: 'mismatch' | 'unknown_recipient' }>;

/** Compares a send's copies with the current devices of the recipient and of the sender. */
export function checkDevices(
  sender: Sender,
  req: SendRequest,
  directory: ReadonlyMap<string, readonly DeviceInfo[]>,
): DeviceCheck {
  const recipientDevices = directory.get(req.recipient);
  if (!recipientDevices) return { kind: 'unknown_recipient' };
  const expected = new Map<string, DeviceInfo & { user: string }>();
  for (const d of recipientDevices) expected.set(`${d.device}@${req.recipient}`, { ...d, user: req.recipient });
  for (const d of directory.get(sender.username) ?? []) {
    if (d.ref === sender.deviceRef) continue;
    expected.set(`${d.device}@${sender.username}`, { ...d, user: sender.username });
  }
  const missing: DeviceAddress[] = [];
  const extra: DeviceAddress[] = [];
  const stale: DeviceAddress[] = [];
  const refs: DeviceRef[] = [];
  const covered = new Set<string>();
  for (const copy of req.copies) {
    const k = `${copy.device}@${copy.user}`;
    const d = expected.get(k);
    if (!d) {
      extra.push(addressOf(copy));
      continue;
    }
    covered.add(k);
    if (d.key !== copy.key) stale.push(addressOf(copy));
    refs.push(d.ref);
  }
  for (const [k, d] of expected) if (!covered.has(k)) missing.push({ user: d.user, device: d.device });
  if (missing.length || extra.length || stale.length) return { kind: 'mismatch', missing, extra, stale };
  return { kind: 'ok', refs };
}

function addressOf(c: { user: string; device: number }): DeviceAddress {
  return { user: c.user, device: c.device };
}

/** What makes two sends of one message_id "the same": recipient and every copy, in any order. */
export function contentHash(req: SendRequest): Buffer {
  const copies = [...req.copies].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : a.device - b.device));
  // One string, one update: the same bytes as an update per part, with one call into the hash.
  let text = `${req.recipient.length}:${req.recipient}`;
  for (const c of copies) text += `|${c.user.length}:${c.user}|${c.device}|${c.key}|${c.type}|${c.body.length}:${c.body}`;
  return createHash('sha256').update(text).digest();
}

/** What makes two re-sends "the same": message_id, recipient and the copy. */
export function resendHash(req: ResendRequest): Buffer {
  const c = req.copy;
  return createHash('sha256')
    .update(`resend|${req.message_id}|${req.recipient.length}:${req.recipient}|${c.user.length}:${c.user}|${c.device}|${c.key}|${c.type}|${c.body.length}:${c.body}`)
    .digest();
}

/**
 * The dedup key of a re-send: a UUID made from its hash, with version 8 (RFC 9562 custom), so it
 * can never equal a send's message_id (sends are UUIDv7).
 */
export function resendKey(hash: Buffer): string {
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
