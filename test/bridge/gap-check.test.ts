/** The window after a recovery in which the bridge looks for Matrix events the homeserver never sent. */
import { describe, expect, it } from 'vitest';
import { GAP_CHECK_MS, GapCheck } from '../../bridge/src/matrix/gaps.js';

describe('GapCheck', () => {
  it('checks only within GAP_CHECK_MS of the last recovery, then hands out the portals seen once', () => {
    let now = 1_000_000;
    const g = new GapCheck(() => now);
    expect(g.active).toBe(false);
    g.open();
    g.portals.add('!a:x');
    now += GAP_CHECK_MS - 1;
    expect(g.active).toBe(true);
    expect(g.closeIfDue()).toEqual([]);
    g.open(); // another recovery extends it
    now += GAP_CHECK_MS - 1;
    expect(g.active).toBe(true);
    now += 1;
    expect(g.active).toBe(false);
    expect(g.closeIfDue()).toEqual(['!a:x']);
    expect(g.closeIfDue()).toEqual([]);
  });

  it('remembers the events it handled, a bounded number', () => {
    const g = new GapCheck();
    for (let i = 0; i < 10_001; i++) g.markHandled(`$${i}`);
    expect(g.wasHandled('$10000')).toBe(true);
    expect(g.wasHandled('$0')).toBe(false);
  });
});
