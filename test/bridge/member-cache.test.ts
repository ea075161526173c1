import { describe, expect, it } from 'vitest';
import { MEMBERS_TTL_MS, MemberCache } from '../../bridge/src/matrix/members.js';

describe('MemberCache', () => {
  it('fetches once, again after a membership event of the room, and after the TTL', async () => {
    let now = 0;
    const cache = new MemberCache(() => now);
    let fetches = 0;
    const fetch = async () => [`@u${++fetches}:x`];
    expect(await cache.get('!a', fetch)).toEqual(['@u1:x']);
    expect(await cache.get('!a', fetch)).toEqual(['@u1:x']);
    cache.changed('!b');
    expect(await cache.get('!a', fetch)).toEqual(['@u1:x']);
    cache.changed('!a');
    expect(await cache.get('!a', fetch)).toEqual(['@u2:x']);
    now += MEMBERS_TTL_MS;
    expect(await cache.get('!a', fetch)).toEqual(['@u3:x']);
  });

  it('does not keep a fetch that a membership event overtook', async () => {
    const cache = new MemberCache();
    let release!: () => void;
    const slow = () => new Promise<string[]>((r) => (release = () => r(['@old:x'])));
    const pending = cache.get('!a', slow);
    cache.changed('!a');
    release();
    expect(await pending).toEqual(['@old:x']);
    expect(await cache.get('!a', async () => ['@new:x'])).toEqual(['@new:x']);
  });
});
