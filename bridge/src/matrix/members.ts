/**
 * The joined members of each portal room as last fetched, so a ghost's encrypted send does not ask
 * the homeserver every time. A room's entry is dropped on any membership event of that room (the
 * homeserver's transactions carry them all: the ghosts are in every portal) and after
 * MEMBERS_TTL_MS; a fetch that raced a membership event is used once and not kept.
 */
import { BoundedMemo } from '../../../src/protocol/memo.js';

export const MEMBERS_TTL_MS = 5 * 60_000;
export const MEMBER_CACHE_ROOMS = 10_000;

export class MemberCache {
  private readonly rooms = new BoundedMemo<{ members: string[]; at: number }>(MEMBER_CACHE_ROOMS);
  /** Counts membership events of any room: a fetch that saw it change is not kept. */
  private changes = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async get(roomId: string, fetch: () => Promise<string[]>): Promise<string[]> {
    const hit = this.rooms.get(roomId);
    if (hit && this.now() - hit.at < MEMBERS_TTL_MS) return hit.members;
    const before = this.changes;
    const at = this.now();
    const members = await fetch();
    if (this.changes === before) this.rooms.set(roomId, { members, at });
    return members;
  }

  /** A membership event of `roomId` passed: the next get fetches again. */
  changed(roomId: string): void {
    this.rooms.delete(roomId);
    this.changes++;
  }
}
