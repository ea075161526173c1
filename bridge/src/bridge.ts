/**
 * The bridge proper: Matrix events (from homeserver transactions) to GChat through each Matrix
 * user's GChat client, and GChat messages, receipts, typing and delivery states to Matrix as ghosts.
 * Portal rooms join one Matrix user and one GChat user.
 */
import type { GChatClient } from '../../src/client/client.js';
import type { IncomingMessage } from '../../src/client/core.js';
import type { MessageRecord } from '../../src/client/state.js';
import { type BridgeConfig, isAllowed } from './config.js';
import type { BridgeDb } from './db.js';
import { GChatAccounts } from './gchat/accounts.js';
import { GCHAT_USERNAME, messageIdFromEvent, txnIdFor } from './ids.js';
import type { Logger } from './log.js';
import { type MatrixApi, MatrixError } from './matrix/api.js';
import { matrixFromText, textFromMatrix } from './matrix/content.js';
import { GapCheck } from './matrix/gaps.js';
import { MemberCache } from './matrix/members.js';
import type { Metrics } from './metrics.js';
import { SerialQueues } from './serial.js';
import { trace } from './trace.js';

export type MatrixEvent = {
  type: string;
  room_id: string;
  sender: string;
  event_id: string;
  origin_server_ts: number;
  state_key?: string;
  content: Record<string, unknown>;
};

export interface Portal {
  room_id: string;
  matrix_user: string;
  gchat_user: string;
  encrypted: boolean;
}

/** End-to-bridge encryption of the ghosts' room events (null when encryption is off). */
export interface RoomEncryption {
  /** Creates the ghost's device (MSC4190) and uploads its keys; idempotent. */
  prepareGhost(ghostId: string): Promise<void>;
  /** The ghost's device id (after prepareGhost). */
  deviceOf(ghostId: string): string | null;
  encrypt(ghostId: string, roomId: string, members: string[], type: string, content: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** The decrypted event, or null (the user has been told and the key asked for again). */
  decrypt(ghostId: string, event: MatrixEvent): Promise<MatrixEvent | null>;
  /** Fetches to-device events the homeserver never put in a transaction (throttled per ghost). */
  catchUpToDevice(ghostId: string): Promise<void>;
}

const HELP = [
  'GChat bridge commands:',
  '• start USERNAME — open a chat with the GChat user USERNAME',
  '• accept-key USERNAME — accept USERNAME’s new key after a key change (held messages are sent then)',
  '• help — this text',
].join('\n');

/** How long an event waits for its room key before the user is told it could not be bridged. */
export const PENDING_GIVE_UP_MS = 60_000;

export const REFUSAL = 'Sorry, this GChat bridge is not open to your account. Ask the bridge’s administrator to add you.';

export class Bridge {
  readonly accounts: GChatAccounts;
  readonly botId: string;
  private readonly queues = new SerialQueues();
  private readonly typingNow = new Map<string, boolean>();
  private readonly members = new MemberCache();
  /** Matrix events the homeserver may have stored and never sent, after it recovered us. */
  readonly gaps = new GapCheck();
  encryption: RoomEncryption | null = null;

  constructor(
    private readonly config: BridgeConfig,
    private readonly db: BridgeDb,
    private readonly api: MatrixApi,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.botId = `@${config.appservice.bot_localpart}:${config.homeserver.domain}`;
    this.accounts = new GChatAccounts(db, Buffer.from(config.secrets_key, 'base64'), config.gchat.server_url, (mx, c) => this.attach(mx, c));
  }

  // ---- identities ----------------------------------------------------------------------------

  ghostId(gchatUser: string): string {
    return `@${this.config.appservice.ghost_prefix}${gchatUser}:${this.config.homeserver.domain}`;
  }

  /** The GChat username a ghost stands for, or null when `userId` is not a (valid) ghost. */
  gchatUserOf(userId: string): string | null {
    const prefix = `@${this.config.appservice.ghost_prefix}`;
    const suffix = `:${this.config.homeserver.domain}`;
    if (!userId.startsWith(prefix) || !userId.endsWith(suffix)) return null;
    const name = userId.slice(prefix.length, userId.length - suffix.length);
    return GCHAT_USERNAME.test(name) ? name : null;
  }

  private isOurs(userId: string): boolean {
    return userId === this.botId || userId.startsWith(`@${this.config.appservice.ghost_prefix}`) && userId.endsWith(`:${this.config.homeserver.domain}`);
  }

  private async ensureGhost(gchatUser: string): Promise<string> {
    const id = this.ghostId(gchatUser);
    const [row] = await this.db.query<{ display_name: string | null }>('SELECT display_name FROM ghost_devices WHERE user_id = $1', [id]);
    if (!row) {
      await this.api.ensureRegistered(id.slice(1, id.indexOf(':')));
      // The display name is the GChat username (GChat has no profile names).
      await this.api.setDisplayName(id, gchatUser);
      await this.db.query('INSERT INTO ghost_devices (user_id, display_name) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name', [id, gchatUser]);
    }
    await this.encryption?.prepareGhost(id);
    return id;
  }

  // ---- Matrix to GChat -----------------------------------------------------------------------

  /** One event of a transaction; resolves when the event is handled (sends are durably queued). */
  async onMatrixEvent(ev: MatrixEvent): Promise<void> {
    if (!ev || typeof ev.type !== 'string' || typeof ev.room_id !== 'string' || typeof ev.sender !== 'string') return;
    if (ev.type === 'm.room.member') this.members.changed(ev.room_id); // our ghosts' joins too
    if (this.isOurs(ev.sender)) return; // our own ghosts' and bot's events: never echoed back
    if (ev.type === 'm.room.member' && ev.content.membership === 'invite' && typeof ev.state_key === 'string' && this.isOurs(ev.state_key)) return this.onInvite(ev);
    if (ev.type === 'm.room.encryption' && ev.state_key === '') {
      await this.db.query('UPDATE portals SET encrypted = TRUE WHERE room_id = $1', [ev.room_id]);
      return;
    }
    if (ev.type !== 'm.room.message' && ev.type !== 'm.room.encrypted') return;
    const found = await this.portalAndWaiting(ev.room_id);
    if (found) {
      const { portal, waiting } = found;
      if (this.gaps.active) this.gaps.portals.add(portal.room_id);
      if (ev.sender !== portal.matrix_user || this.gaps.wasHandled(ev.event_id)) return;
      await this.fromMatrix(portal, ev, this.gaps.active ? await this.bridgeMissed(portal, ev.event_id, waiting) : waiting);
      return;
    }
    const [mgmt] = await this.db.query<{ matrix_user: string }>('SELECT matrix_user FROM management_rooms WHERE room_id = $1', [ev.room_id]);
    if (mgmt && ev.sender === mgmt.matrix_user && ev.type === 'm.room.message' && typeof ev.content.body === 'string') await this.command(ev.room_id, ev.sender, ev.content.body);
  }

  /** The portal of a room and whether events of it wait for a key, in one round trip (the send path). */
  private async portalAndWaiting(roomId: string): Promise<{ portal: Portal; waiting: boolean } | null> {
    const [row] = await this.db.query<Portal & Record<string, unknown> & { waiting: boolean }>('SELECT p.*, EXISTS (SELECT 1 FROM pending_events e WHERE e.room_id = p.room_id) AS waiting FROM portals p WHERE p.room_id = $1', [roomId]);
    if (!row) return null;
    const { waiting, ...portal } = row;
    return { portal, waiting };
  }

  /** Bridges one event of the portal's Matrix user, or queues it behind `waiting` ones (or its missing key); answers whether the room now waits. */
  private async fromMatrix(portal: Portal, ev: MatrixEvent, waiting: boolean): Promise<boolean> {
    this.gaps.markHandled(ev.event_id);
    if (!waiting && (await this.tryBridge(portal, ev, false))) return false;
    await this.db.query('INSERT INTO pending_events (room_id, event_id, event, first_seen) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING', [ev.room_id, ev.event_id, JSON.stringify(ev), Date.now()]);
    return true;
  }

  /** Bridges, in order, the portal user's events before `eventId` (the latest with null) that never came; answers whether the room now waits. */
  private async bridgeMissed(portal: Portal, eventId: string | null, waiting: boolean): Promise<boolean> {
    for (const missed of await this.missedBefore(portal, eventId)) waiting = await this.fromMatrix(portal, missed, waiting);
    return waiting;
  }

  /** The portal user's events before `eventId` (latest ones with null) that the homeserver never sent us. */
  private async missedBefore(portal: Portal, eventId: string | null): Promise<MatrixEvent[]> {
    const known = async (ids: string[]) =>
      new Set(
        (await this.db.query<{ event_id: string }>('SELECT event_id FROM message_map WHERE room_id = $1 AND event_id = ANY($2) UNION SELECT event_id FROM pending_events WHERE event_id = ANY($2)', [portal.room_id, ids])).map((r) => r.event_id),
      );
    try {
      const missed = await this.gaps.missed(this.api, { roomId: portal.room_id, ghost: this.ghostId(portal.gchat_user), sender: portal.matrix_user }, eventId, known);
      if (missed.length) this.log.warn({ room: portal.room_id, events: missed.map((e) => e.event_id) }, 'bridging Matrix events the homeserver stored and never sent');
      return missed;
    } catch (e) {
      this.log.warn({ room: portal.room_id, err: (e as Error).message }, 'could not look for events the homeserver never sent');
      return [];
    }
  }

  /** Once the window after a recovery has ended: the latest events of the portals seen in it (a missed message may have been the last). */
  async sweepGaps(): Promise<void> {
    for (const roomId of this.gaps.closeIfDue()) {
      const found = await this.portalAndWaiting(roomId);
      if (found) await this.bridgeMissed(found.portal, null, found.waiting);
    }
  }

  /** Decrypts (when needed) and bridges one event; false when its room key is missing (kept for a retry). */
  private async tryBridge(portal: Portal, ev: MatrixEvent, giveUp: boolean): Promise<boolean> {
    let event: MatrixEvent | null = ev;
    if (ev.type === 'm.room.encrypted') {
      if (!this.encryption) return true;
      event = await this.encryption.decrypt(this.ghostId(portal.gchat_user), ev);
      if (!event) {
        if (!giveUp) return false;
        this.metrics.decryptErrors.inc();
        await this.notice(portal, 'A message you sent could not be decrypted by the bridge (its room key never arrived), so it did not reach GChat. Please send it again.', txnIdFor('undecryptable', ev.event_id));
        return true;
      }
    }
    if (ev.type === 'm.room.encrypted') trace(ev.event_id, 'decrypted');
    if (event.type === 'm.room.message') await this.toGChat(portal, event);
    return true;
  }

  /**
   * Events waiting for a room key, oldest first per room: bridged once their key arrived (after a
   * later transaction), or reported to the user after PENDING_GIVE_UP_MS. Called between transactions.
   */
  async retryPending(now = Date.now()): Promise<void> {
    const rows = await this.db.query<{ seq: string; room_id: string; event: string; first_seen: string }>('SELECT seq, room_id, event, first_seen FROM pending_events ORDER BY seq');
    const blocked = new Set<string>();
    for (const r of rows) {
      if (blocked.has(r.room_id)) continue;
      const portal = await this.portalByRoom(r.room_id);
      const event = JSON.parse(r.event) as MatrixEvent;
      let ok = !portal || (await this.tryBridge(portal, event, false));
      if (!ok && portal && this.encryption) {
        // Synapse drops to-device events (room keys) queued while it thought the bridge was down:
        // fetch what is still in the ghost device's inbox, then try again.
        await this.encryption.catchUpToDevice(this.ghostId(portal.gchat_user)).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'to-device catch-up failed'));
        ok = await this.tryBridge(portal, event, now - Number(r.first_seen) > PENDING_GIVE_UP_MS);
      }
      if (ok) await this.db.query('DELETE FROM pending_events WHERE seq = $1', [r.seq]);
      else blocked.add(r.room_id);
    }
  }

  private async onInvite(ev: MatrixEvent): Promise<void> {
    const invitee = ev.state_key!;
    const as = { userId: invitee };
    const gchatUser = invitee === this.botId ? null : this.gchatUserOf(invitee);
    if (invitee !== this.botId && !gchatUser) return; // not a user the bridge has
    if (gchatUser) await this.ensureGhost(gchatUser);
    if (!isAllowed(this.config, ev.sender)) {
      this.log.info({ room: ev.room_id }, 'refused a Matrix user the configuration does not allow');
      await this.api.join(ev.room_id, as);
      await this.api.send(ev.room_id, 'm.room.message', `refusal.${ev.event_id}`, { msgtype: 'm.notice', body: REFUSAL }, as);
      await this.api.leave(ev.room_id, as);
      return;
    }
    if (!gchatUser) {
      await this.api.join(ev.room_id, as);
      await this.db.query('INSERT INTO management_rooms (room_id, matrix_user) VALUES ($1, $2) ON CONFLICT (room_id) DO NOTHING', [ev.room_id, ev.sender]);
      await this.api.send(ev.room_id, 'm.room.message', `help.${ev.event_id}`, { msgtype: 'm.notice', body: HELP }, as);
      return;
    }
    const client = await this.accounts.ensure(ev.sender);
    if (!(await client.lookup(gchatUser).catch(() => null))) {
      await this.api.join(ev.room_id, as);
      await this.api.send(ev.room_id, 'm.room.message', `unknown.${ev.event_id}`, { msgtype: 'm.notice', body: `There is no GChat user ${gchatUser}.` }, as);
      await this.api.leave(ev.room_id, as);
      return;
    }
    // The portal is recorded before the ghost joins, under the same lock as portals made from GChat,
    // so a GChat message arriving meanwhile lands in this room instead of opening a second one.
    await this.queues.run(`portal:${ev.sender}:${gchatUser}`, async () => {
      await this.db.tx(async (sql) => {
        await sql.query('DELETE FROM portals WHERE matrix_user = $1 AND gchat_user = $2 AND room_id <> $3', [ev.sender, gchatUser, ev.room_id]);
        await sql.query('INSERT INTO portals (room_id, matrix_user, gchat_user, encrypted) VALUES ($1, $2, $3, FALSE) ON CONFLICT (room_id) DO NOTHING', [ev.room_id, ev.sender, gchatUser]);
      });
      await this.api.join(ev.room_id, as);
      const enc = await this.api.roomState<{ algorithm?: string }>(ev.room_id, 'm.room.encryption', '', as);
      if (enc) await this.db.query('UPDATE portals SET encrypted = TRUE WHERE room_id = $1', [ev.room_id]);
    });
  }

  private async command(roomId: string, sender: string, text: string): Promise<void> {
    const [cmd, arg] = text.trim().split(/\s+/, 2);
    const reply = (body: string) => this.api.send(roomId, 'm.room.message', `reply.${Date.now()}.${Math.random()}`, { msgtype: 'm.notice', body }, { userId: this.botId });
    const name = (arg ?? '').toLowerCase();
    switch ((cmd ?? '').toLowerCase()) {
      case 'start': {
        if (!GCHAT_USERNAME.test(name)) return void (await reply('Usage: start USERNAME (3 to 32 of a-z 0-9 . _ -)'));
        const client = await this.accounts.ensure(sender);
        if (!(await client.lookup(name).catch(() => null))) return void (await reply(`There is no GChat user ${name}.`));
        const portal = await this.ensurePortal(sender, name);
        await reply(`Chat with ${name} is in room ${portal.room_id} (you are invited).`);
        return;
      }
      case 'accept-key': {
        const client = await this.accounts.existing(sender);
        if (!client || !GCHAT_USERNAME.test(name)) return void (await reply('Usage: accept-key USERNAME'));
        await client.acceptKeyChange(name);
        await reply(`Accepted ${name}’s new key; held messages go out now.`);
        return;
      }
      default:
        await reply(HELP);
    }
  }

  private async toGChat(portal: Portal, ev: MatrixEvent): Promise<void> {
    const text = textFromMatrix(ev.content, ev.sender);
    if (!text) return;
    const client = await this.accounts.ensure(portal.matrix_user);
    const messageId = messageIdFromEvent(ev.room_id, ev.event_id, ev.origin_server_ts);
    const ref = async (eventId: string | null) => (eventId ? ((await this.db.query<{ message_id: string }>('SELECT message_id FROM message_map WHERE room_id = $1 AND event_id = $2', [ev.room_id, eventId]))[0]?.message_id ?? null) : null);
    const replyTo = await ref(text.replyToEvent);
    const editOf = await ref(text.editOfEvent);
    if (text.editOfEvent && !editOf) {
      this.log.debug({ room: ev.room_id, event: ev.event_id }, 'matrix edit of a message GChat never had: dropped');
      return;
    }
    this.log.debug({ room: ev.room_id, event: ev.event_id, messageId }, 'matrix message to gchat');
    await this.db.query('INSERT INTO message_map (room_id, event_id, message_id, from_matrix) VALUES ($1, $2, $3, TRUE) ON CONFLICT DO NOTHING', [ev.room_id, ev.event_id, messageId]);
    trace(ev.event_id, 'mapped', { mid: messageId });
    await client.sendText(portal.gchat_user, text.body, { messageId, ...(replyTo ? { replyTo } : {}), ...(editOf ? { editOf } : {}) });
    trace(ev.event_id, 'queued');
    this.metrics.bridged.inc({ direction: 'matrix_to_gchat' });
  }

  /** Ephemeral events: read receipts and typing of the Matrix user in a portal. */
  async onEphemeral(ev: { type: string; room_id?: string; content: Record<string, unknown> }): Promise<void> {
    if (!ev?.room_id) return;
    const portal = await this.portalByRoom(ev.room_id);
    if (!portal) return;
    const client = await this.accounts.existing(portal.matrix_user);
    if (!client) return;
    if (ev.type === 'm.receipt') {
      for (const [eventId, byType] of Object.entries(ev.content)) {
        const readers = (byType as Record<string, Record<string, unknown>>)['m.read'] ?? {};
        if (!(portal.matrix_user in readers)) continue;
        const [target] = await this.db.query<{ message_id: string }>('SELECT message_id FROM message_map WHERE room_id = $1 AND event_id = $2 AND NOT from_matrix', [portal.room_id, eventId]);
        this.log.debug({ room: portal.room_id, event: eventId, messageId: target?.message_id ?? null }, 'matrix read receipt');
        if (target) await this.markReadUpTo(portal, client, target.message_id);
      }
    } else if (ev.type === 'm.typing') {
      const typing = Array.isArray(ev.content.user_ids) && ev.content.user_ids.includes(portal.matrix_user);
      if ((this.typingNow.get(portal.room_id) ?? false) !== typing) {
        this.typingNow.set(portal.room_id, typing);
        await client.sendTyping(portal.gchat_user, typing ? 'started' : 'stopped');
      }
    }
  }

  /**
   * A Matrix read receipt means everything up to that event was read (Matrix receipts are
   * cumulative): every GChat message from the contact up to it, not yet marked, turns read.
   */
  private async markReadUpTo(portal: Portal, client: GChatClient, messageId: string): Promise<void> {
    const target = await client.message(portal.gchat_user, messageId);
    if (!target) return;
    const [mark] = await this.db.query<{ ts: string }>('SELECT ts FROM read_marks WHERE room_id = $1', [portal.room_id]);
    const after = mark ? Number(mark.ts) : -Infinity;
    if (target.ts <= after) return; // an older receipt arriving late: already covered
    const ids = (await client.messages(portal.gchat_user)).filter((m) => !m.outgoing && m.ts > after && m.ts <= target.ts).map((m) => m.messageId);
    this.log.debug({ room: portal.room_id, read: ids.length }, 'gchat messages marked read');
    await client.markRead(portal.gchat_user, ids);
    await this.db.query('INSERT INTO read_marks (room_id, ts) VALUES ($1, $2) ON CONFLICT (room_id) DO UPDATE SET ts = GREATEST(read_marks.ts, EXCLUDED.ts)', [portal.room_id, target.ts]);
  }

  // ---- GChat to Matrix -----------------------------------------------------------------------

  private async attach(matrixUser: string, client: GChatClient): Promise<void> {
    client.on('message', (m) => {
      if (m.outgoing) return;
      trace(m.messageId, 'gchat_in');
      void this.queues.run(matrixUser, () => this.fromGChat(matrixUser, m)).catch((e: unknown) => this.failed('gchat_to_matrix', e));
    });
    client.on('typing', (t) =>
      void this.queues.run(`typing:${matrixUser}`, async () => {
        const portal = await this.portalOf(matrixUser, t.from);
        if (portal) await this.api.typing(portal.room_id, this.ghostId(t.from), t.state === 'started');
      }).catch(() => undefined),
    );
    client.on('status', (s) => {
      if (s.status === 'sent') trace(s.messageId, 'server_ack');
      void this.queues.run(`status:${matrixUser}`, () => this.statusToMatrix(matrixUser, s)).catch((e: unknown) => this.failed('status', e));
    });
    client.on('keyChange', (k) =>
      void this.queues.run(`status:${matrixUser}`, async () => {
        const portal = await this.portalOf(matrixUser, k.userId);
        if (portal) await this.notice(portal, `${k.userId}’s GChat key changed. Your messages to them are held until you send “accept-key ${k.userId}” to the bridge bot ${this.botId} (check with them first).`, `keychange.${Date.now()}`);
      }).catch(() => undefined),
    );
    // Catch-up: messages stored by the client but not yet in Matrix (a crash between the two).
    await this.queues.run(matrixUser, async () => {
      for (const contact of await client.contacts()) {
        if (contact.userId === client.userId) continue;
        // In ts order: a sender's ts increases with every message it sends (the outbox makes it strict).
        for (const rec of await client.messages(contact.userId)) {
          if (!rec.outgoing && rec.kind === 'text') await this.fromGChat(matrixUser, incomingOf(rec));
        }
      }
    });
  }

  private failed(direction: string, e: unknown): void {
    this.metrics.failures.inc({ direction });
    this.log.error({ direction, err: (e as Error).message }, 'bridging failed');
  }

  private async fromGChat(matrixUser: string, m: IncomingMessage): Promise<void> {
    const portal = await this.ensurePortal(matrixUser, m.sender);
    const [done] = await this.db.query('SELECT 1 FROM message_map WHERE room_id = $1 AND message_id = $2', [portal.room_id, m.messageId]);
    if (done) return;
    this.log.debug({ room: portal.room_id, messageId: m.messageId, ts: m.ts }, 'gchat message to matrix');
    const ev = async (id: string | null) => (id ? ((await this.db.query<{ event_id: string }>('SELECT event_id FROM message_map WHERE room_id = $1 AND message_id = $2', [portal.room_id, id]))[0]?.event_id ?? null) : null);
    const content = matrixFromText(m.body, await ev(m.replyTo), await ev(m.editOf));
    trace(m.messageId, 'portal_ready');
    const eventId = await this.sendAsGhost(portal, 'm.room.message', txnIdFor('msg', m.messageId), content, m.messageId);
    trace(m.messageId, 'matrix_sent', { eid: eventId });
    await this.db.query('INSERT INTO message_map (room_id, event_id, message_id, from_matrix) VALUES ($1, $2, $3, FALSE) ON CONFLICT DO NOTHING', [portal.room_id, eventId, m.messageId]);
    this.metrics.bridged.inc({ direction: 'gchat_to_matrix' });
  }

  private async statusToMatrix(matrixUser: string, s: { messageId: string; conversation: string; status: string; failure: string | null }): Promise<void> {
    const portal = await this.portalOf(matrixUser, s.conversation);
    if (!portal) return;
    const [row] = await this.db.query<{ event_id: string }>('SELECT event_id FROM message_map WHERE room_id = $1 AND message_id = $2 AND from_matrix', [portal.room_id, s.messageId]);
    if (!row) return;
    const ghost = this.ghostId(portal.gchat_user);
    if (s.status === 'read') {
      await this.api.receipt(portal.room_id, row.event_id, { userId: ghost });
      return;
    }
    if (s.status !== 'sent' && s.status !== 'failed') return;
    const ok = s.status === 'sent';
    if (ok && !this.config.message_status_events) return; // each one is a room event: Synapse work, and Element does not show it
    const content = {
      network: 'gchat',
      'm.relates_to': { rel_type: 'm.reference', event_id: row.event_id },
      status: ok ? 'SUCCESS' : 'FAIL_PERMANENT',
      ...(ok ? {} : { reason: 'm.foreign_network_error', message: `Not delivered to GChat: ${s.failure ?? 'failed'}` }),
    };
    await this.sendAsGhost(portal, 'com.beeper.message_send_status', txnIdFor(`status-${s.status}`, s.messageId), content);
    if (!ok) await this.notice(portal, `Your message could not be delivered to ${portal.gchat_user} (${s.failure ?? 'failed'}).`, txnIdFor('failnotice', s.messageId));
  }

  private async notice(portal: Portal, body: string, txnId = `notice.${Date.now()}.${Math.random()}`): Promise<void> {
    await this.sendAsGhost(portal, 'm.room.message', txnId, { msgtype: 'm.notice', body });
  }

  private async sendAsGhost(portal: Portal, type: string, txnId: string, content: Record<string, unknown>, traceId = txnId): Promise<string> {
    const ghost = this.ghostId(portal.gchat_user);
    if (portal.encrypted && this.encryption) {
      const members = await this.members.get(portal.room_id, () => this.api.members(portal.room_id, { userId: ghost }));
      trace(traceId, 'members');
      const invited = members.includes(portal.matrix_user) ? [] : [portal.matrix_user];
      const enc = await this.encryption.encrypt(ghost, portal.room_id, [...members, ...invited], type, content);
      trace(traceId, 'encrypted');
      const deviceId = this.encryption.deviceOf(ghost);
      return this.api.send(portal.room_id, 'm.room.encrypted', txnId, enc, { userId: ghost, ...(deviceId ? { deviceId } : {}) });
    }
    return this.api.send(portal.room_id, type, txnId, content, { userId: ghost });
  }

  // ---- portals -------------------------------------------------------------------------------

  async portalByRoom(roomId: string): Promise<Portal | null> {
    return (await this.db.query<Portal & Record<string, unknown>>('SELECT * FROM portals WHERE room_id = $1', [roomId]))[0] ?? null;
  }

  async portalOf(matrixUser: string, gchatUser: string): Promise<Portal | null> {
    return (await this.db.query<Portal & Record<string, unknown>>('SELECT * FROM portals WHERE matrix_user = $1 AND gchat_user = $2', [matrixUser, gchatUser]))[0] ?? null;
  }

  /** The portal of a Matrix user and a GChat user: created by the ghost, the Matrix user invited. */
  private async ensurePortal(matrixUser: string, gchatUser: string): Promise<Portal> {
    return this.queues.run(`portal:${matrixUser}:${gchatUser}`, async () => {
      const existing = await this.portalOf(matrixUser, gchatUser);
      if (existing) return existing;
      const ghost = await this.ensureGhost(gchatUser);
      const encrypted = this.config.encryption.enabled;
      const { room_id } = await this.api.request<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', {
        userId: ghost,
        body: {
          preset: 'trusted_private_chat',
          is_direct: true,
          invite: [matrixUser],
          name: gchatUser,
          topic: `GChat chat with ${gchatUser}`,
          initial_state: encrypted ? [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }] : [],
        },
      });
      const portal = { room_id, matrix_user: matrixUser, gchat_user: gchatUser, encrypted };
      await this.db.query('INSERT INTO portals (room_id, matrix_user, gchat_user, encrypted) VALUES ($1, $2, $3, $4)', [room_id, matrixUser, gchatUser, encrypted]);
      return portal;
    });
  }

  async stop(): Promise<void> {
    await this.accounts.stopAll();
    await this.queues.idle();
  }
}

function incomingOf(rec: MessageRecord): IncomingMessage {
  const c = JSON.parse(rec.content) as { body?: string; reply_to?: string; edit_of?: string };
  return { messageId: rec.messageId, conversation: rec.conversation, sender: rec.sender, senderDevice: rec.senderDevice, outgoing: rec.outgoing, body: c.body ?? '', ts: rec.ts, replyTo: c.reply_to ?? null, editOf: c.edit_of ?? null };
}

export { MatrixError };
