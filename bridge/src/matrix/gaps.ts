/**
 * Events the homeserver stored for us and never sent. Synapse, recovering an appservice it had
 * marked down, sends its stored transactions until it finds none, then marks the appservice up
 * (a database write); a transaction made in between is stored as for a down appservice, and sent
 * only after the next failure (seen here: one Matrix message in a run never arrived). So for a
 * while after each recovery (the bridge's start, a failed transaction) every Matrix message in a
 * portal first looks at the few events its sender sent before it, and bridges, in order, any the
 * bridge never handled; at the end of that window the portals seen in it are looked at once more
 * (a missed message may have been the last one).
 */
import { BoundedMemo } from '../../../src/protocol/memo.js';
import type { MatrixEvent } from '../bridge.js';
import type { MatrixApi } from './api.js';

/** How long after a recovery messages are checked for missed predecessors. */
export const GAP_CHECK_MS = 30_000;
/** How many of the sender's earlier events each check looks at. */
export const GAP_LOOKBACK = 20;
const HANDLED_CAP = 10_000;

const enc = encodeURIComponent;

export class GapCheck {
  private until = 0;
  /** Event ids this process handled (bounded; the database answers for older ones). */
  private readonly handled = new BoundedMemo<true>(HANDLED_CAP);
  /** Portals that had events during the window: swept once when it ends. */
  readonly portals = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A recovery happened: check from now on for GAP_CHECK_MS. */
  open(): void {
    this.until = this.now() + GAP_CHECK_MS;
  }

  get active(): boolean {
    return this.now() < this.until;
  }

  /** Ends the window once its time is up; answers the portals to sweep. */
  closeIfDue(): string[] {
    if (this.active) return [];
    const rooms = [...this.portals];
    this.portals.clear();
    return rooms;
  }

  markHandled(eventId: string): void {
    this.handled.set(eventId, true);
  }

  wasHandled(eventId: string): boolean {
    return this.handled.get(eventId) === true;
  }

  /**
   * The sender's messages before `eventId` (or the latest ones, with null) that are not handled
   * yet, oldest first. `known` answers which of some event ids the database already has.
   */
  async missed(
    api: MatrixApi,
    as: { roomId: string; ghost: string; sender: string },
    eventId: string | null,
    known: (eventIds: string[]) => Promise<Set<string>>,
  ): Promise<MatrixEvent[]> {
    const filter = JSON.stringify({ senders: [as.sender], types: ['m.room.message', 'm.room.encrypted'] });
    const events = eventId
      ? ((await api.request<{ events_before?: MatrixEvent[] }>('GET', `/_matrix/client/v3/rooms/${enc(as.roomId)}/context/${enc(eventId)}`, {
          userId: as.ghost,
          query: { limit: String(GAP_LOOKBACK * 2), filter },
        })).events_before ?? [])
      : ((await api.request<{ chunk?: MatrixEvent[] }>('GET', `/_matrix/client/v3/rooms/${enc(as.roomId)}/messages`, {
          userId: as.ghost,
          query: { dir: 'b', limit: String(GAP_LOOKBACK), filter },
        })).chunk ?? []);
    const candidates = events.filter((e) => e && e.sender === as.sender && typeof e.event_id === 'string' && !this.wasHandled(e.event_id));
    if (!candidates.length) return [];
    const inDb = await known(candidates.map((e) => e.event_id));
    // Both answers come newest first.
    return candidates.filter((e) => !inDb.has(e.event_id)).reverse().map((e) => ({ ...e, room_id: as.roomId }));
  }
}
