/**
 * The appservice ping (MSC2659, Matrix 1.7): the homeserver calls our /_matrix/app/v1/ping and
 * answers how long it took. A homeserver that marked the bridge down (a transaction failed while
 * it was stopped) retries only on a backoff of 2, 4, 8 ... 512 s, and until it does it drops every
 * ephemeral event (read receipts, typing) and to-device message meant for us; a successful ping
 * makes Synapse retry at once. So the bridge pings once it listens, and again with a backoff while
 * the homeserver cannot reach it, which is also the check an admin needs after registering it.
 */
import type { Logger } from '../log.js';
import { type MatrixApi, MatrixError } from './api.js';

export const PING_RETRY_MAX_MS = 60_000;

export interface Pinger {
  /** Whether a ping has succeeded: the homeserver can deliver transactions to us. */
  readonly reached: boolean;
  stop(): void;
}

export function pingUntilReachable(api: MatrixApi, appserviceId: string, log: Logger, onReached: () => void = () => undefined, firstRetryMs = 250): Pinger {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let reached = false;
  void (async () => {
    for (let delay = firstRetryMs; !stopped; delay = Math.min(delay * 2, PING_RETRY_MAX_MS)) {
      try {
        const r = await api.request<{ duration_ms?: number }>('POST', `/_matrix/client/v1/appservice/${encodeURIComponent(appserviceId)}/ping`, {
          body: { transaction_id: `gchat-bridge-ping-${Date.now()}` },
        });
        reached = true;
        onReached();
        log.info({ durationMs: r.duration_ms ?? null }, 'homeserver reaches the bridge (appservice ping)');
        return;
      } catch (e) {
        // M_AS_PING_*: the homeserver could not call us back (wrong url in the registration, a firewall).
        const reason = e instanceof MatrixError ? e.errcode : (e as Error).message;
        log.warn({ reason, retryInMs: delay }, 'appservice ping failed: the homeserver cannot reach the bridge yet (check url in the registration)');
      }
      await new Promise<void>((r) => {
        wake = r;
        timer = setTimeout(r, delay);
      });
    }
  })();
  return {
    get reached() {
      return reached;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
    },
  };
}
