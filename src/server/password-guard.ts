/**
 * Who may try a password now (adding a device, recovering the key backup), so that guessing is
 * slow and a stranger cannot lock the owner out.
 *
 * Failures are counted per (account, client address) and per account; only a wrong password
 * counts (an attempt is counted when it starts and taken back unless it failed, so parallel
 * guesses cannot slip past the count):
 * - an address that failed `perAccountAddress.count` times against an account waits for the end
 *   of that window (429);
 * - once the account has `perAccount.count` failures in its window, from any addresses, an
 *   address that already failed against it in its own window waits too; an address that has not
 *   failed is never refused by the account-wide count. So a distributed guesser gets at most one
 *   guess per address per window while the account is under attack, and the owner, from an
 *   address that has not failed, still gets in.
 * The per-address limit on all password checks (RateLimiters.loginPerIp) comes on top.
 */
import type { RateLimit } from './config.js';
import { hitCounters, unhitCounters, type Queryable } from './data/rate-counters.js';
import { ApiError } from './errors.js';
import { bucketOf, retryAfter } from './rate-limit.js';

export interface PasswordGuardLimits {
  /** Failures per (account, address) per window. */
  readonly perAccountAddress: RateLimit;
  /** Failures per account, from all addresses, past which an address that failed is refused. */
  readonly perAccount: RateLimit;
}

export class PasswordGuard {
  constructor(
    private readonly limits: PasswordGuardLimits,
    private readonly db: Queryable,
    private readonly now: () => number,
  ) {}

  /**
   * Runs `check` (which verifies the password) if `address` may try a password for `username`
   * now, else throws 429 rate_limited before any password work. A `bad_credentials` error from
   * `check` counts as a failure; any other outcome does not.
   */
  async attempt<T>(username: string, address: string, check: () => Promise<T>): Promise<T> {
    const now = this.now();
    const pair = bucketOf('login-fail-pair', `${username}|${address}`);
    const account = bucketOf('login-fail-account', username);
    const { perAccountAddress: pl, perAccount: al } = this.limits;
    const s = await hitCounters(
      this.db,
      [
        { bucket: pair, windowMs: pl.windowSeconds * 1000 },
        { bucket: account, windowMs: al.windowSeconds * 1000 },
      ],
      now,
    );
    const p = s.get(pair)!;
    const a = s.get(account)!;
    // Both counts include this attempt.
    const pairFull = p.hits > pl.count;
    const accountGuarded = a.hits > al.count && p.hits - 1 >= 1;
    if (pairFull || accountGuarded) {
      await unhitCounters(this.db, [pair, account], now);
      const retry = retryAfter(pairFull ? p.endsAt : Math.min(p.endsAt, a.endsAt), now);
      throw new ApiError('rate_limited', `too many wrong passwords for this account from this address; retry in ${retry} s`, retry);
    }
    let failed = false;
    try {
      return await check();
    } catch (e) {
      failed = e instanceof ApiError && e.code === 'bad_credentials';
      throw e;
    } finally {
      // A counter left one too high only errs on the safe side: never fail the answer for it.
      if (!failed) await unhitCounters(this.db, [pair, account], this.now()).catch(() => undefined);
    }
  }
}
