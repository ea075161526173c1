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
import { type DeviceRef, type NewEnvelope, type NewSend, type QueueRepository, envelopeOf, sendKey } from './queue-repository.js';
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
  | { readonly kind: 'queue_full'; readonly devices: DeviceAddress[] }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'too_large'; readonly reason: string }
  /** A re-send of a message_id this device never sent (or whose dedup entry expired). */
  | { readonly kind: 'not_sent' };

interface Command {
  readonly sender: Sender;
  readonly req: SendRequest;
  readonly hash: Buffer;
}

/** What a batch decides for one command; `retry` goes through the next batch. */
type Decision = SendResult | { readonly kind: 'retry' };

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
   */
  async resend(sender: Sender, req: ResendRequest): Promise<SendResult> {
    const pre = this.precheck(sender, { message_id: req.message_id, recipient: req.recipient, copies: [req.copy] });
    if (pre) return pre;
    const { repo, limits } = this.deps;
    const now = this.deps.now();
    const snap = await repo.readBatch({
      keys: [{ senderDevice: sender.deviceRef, messageId: req.message_id }],
      usernames: [...new Set([req.recipient, sender.username])],
      idCount: 1,
      cap: limits.maxQueuePerDevice,
      now,
    });
    if (snap.sends.length === 0) return { kind: 'not_sent' };
    const stored = snap.sends[0]!.answer as SendAnswer;
    const copy = req.copy;
    // The original send's recipient must be this one: a re-send cannot reach anybody new.
    if (!stored.envelopes.some((e) => e.user === copy.user)) return { kind: 'mismatch', missing: [], extra: [addressOf(copy)], stale: [] };
    const device = (snap.devices.get(copy.user) ?? []).find((d) => d.device === copy.device && d.ref !== sender.deviceRef);
    if (!device) return { kind: 'mismatch', missing: [], extra: [addressOf(copy)], stale: [] };
    if (device.key !== copy.key) return { kind: 'mismatch', missing: [], extra: [], stale: [addressOf(copy)] };
    if (device.queued + 1 > limits.maxQueuePerDevice) return { kind: 'queue_full', devices: [addressOf(copy)] };
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
    await repo.insertEnvelopes([env], this.deps.wakeBus.payloads([device.ref]));
    this.deps.onCommitted(new Map([[device.ref, [envelopeOf(env)]]]));
    this.deps.onQueued?.([{ device: device.ref, id: env.id, messageId: env.messageId, urgent: false }]);
    return { kind: 'accepted', answer: { message_id: req.message_id, server_ts: now, envelopes: [{ user: copy.user, device: copy.device, id: env.id }] }, replay: false };
  }

  private precheck(sender: Sender, req: SendRequest): SendResult | null {
    const l = this.deps.limits;
    if (req.copies.length > l.maxCopies) return { kind: 'too_large', reason: `more than ${l.maxCopies} copies` };
    const seen = new Set<string>();
    for (const c of req.copies) {
      if (c.body.length % 4 === 1) return { kind: 'invalid', reason: 'a copy body is not valid base64url' };
      if (Math.floor((c.body.length * 3) / 4) > l.maxBodyBytes)
        return { kind: 'too_large', reason: `a copy body is larger than ${l.maxBodyBytes} bytes` };
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
    const snap = await repo.readBatch({
      keys: live.map((i) => ({ senderDevice: cmds[i]!.sender.deviceRef, messageId: cmds[i]!.req.message_id })),
      usernames: [...usernames],
      idCount: copies,
      cap: limits.maxQueuePerDevice,
      now,
    });
    readDone();
    const storedByKey = new Map(snap.sends.map((st) => [sendKey(st.senderDevice, st.messageId), st]));
    const queued = new Map<DeviceRef, number>();
    for (const list of snap.devices.values()) for (const d of list) queued.set(d.ref, d.queued);

    // 2. Decide each send.
    let nextId = 0;
    const sends: NewSend[] = [];
    const envs: NewEnvelope[] = [];
    const accepted: number[] = [];
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
      const full = check.refs.flatMap((ref, j) => ((queued.get(ref) ?? 0) + 1 > limits.maxQueuePerDevice ? [addressOf(c.req.copies[j]!)] : []));
      if (full.length > 0) {
        out[i] = { kind: 'queue_full', devices: full };
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
      for (const ref of check.refs) queued.set(ref, (queued.get(ref) ?? 0) + 1);
      const answer: SendAnswer = {
        message_id: c.req.message_id,
        server_ts: now,
        envelopes: c.req.copies.map((copy, j) => ({ user: copy.user, device: copy.device, id: mine[j]!.id })),
      };
      sends.push({ senderDevice: c.sender.deviceRef, messageId: c.req.message_id, contentHash: c.hash, answer, expiresAt: now + limits.retentionMs });
      envs.push(...mine);
      accepted.push(i);
      out[i] = { kind: 'accepted', answer, replay: false };
    }
    await prevWrite;
    if (sends.length === 0) return out;

    // 3. One write, committed on its own: dedup entries, envelopes, NOTIFY.
    const devices = [...new Set(envs.map((e) => e.device))];
    const won = await repo.writeBatch(sends, envs, this.deps.wakeBus.payloads(devices), now);
    const byDevice = new Map<DeviceRef, Envelope[]>();
    for (const i of accepted) {
      const c = cmds[i]!;
      if (!won.has(sendKey(c.sender.deviceRef, c.req.message_id))) out[i] = { kind: 'retry' };
    }
    const urgent = new Set(accepted.filter((i) => cmds[i]!.req.urgent === true).map((i) => sendKey(cmds[i]!.sender.deviceRef, cmds[i]!.req.message_id)));
    const notices: QueuedNotice[] = [];
    for (const e of envs) {
      const key = sendKey(e.senderRef, e.messageId);
      if (!won.has(key)) continue;
      const list = byDevice.get(e.device);
      if (list) list.push(envelopeOf(e));
      else byDevice.set(e.device, [envelopeOf(e)]);
      notices.push({ device: e.device, id: e.id, messageId: e.messageId, urgent: urgent.has(key) });
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
  const h = createHash('sha256');
  h.update(`${req.recipient.length}:${req.recipient}`);
  const copies = [...req.copies].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : a.device - b.device));
  for (const c of copies) h.update(`|${c.user.length}:${c.user}|${c.device}|${c.key}|${c.type}|${c.body.length}:${c.body}`);
  return h.digest();
}
