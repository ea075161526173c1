/**
 * Call settings. `iceTransportPolicy` can be forced to 'relay' for testing (and for anyone who
 * wants their IP address hidden from the peer): `?relay=1` in the URL or localStorage
 * `gchat.relayOnly` = "1". The direct-connection deadline can be shortened the same way
 * (`gchat.directTimeoutMs`), so the relay-only retry can be exercised.
 */
const DEFAULT_DIRECT_TIMEOUT_MS = 6000;

function flag(name: string): string | null {
  try {
    return new URLSearchParams(location.search).get(name) ?? localStorage.getItem(`gchat.${name}`);
  } catch {
    return null;
  }
}

export function relayOnlyForced(): boolean {
  return flag('relayOnly') === '1' || flag('relay') === '1';
}

/** How long a direct (any candidate) connection may take before the caller retries relay-only. */
export function directTimeoutMs(): number {
  const v = Number(flag('directTimeoutMs'));
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_DIRECT_TIMEOUT_MS;
}

/** How long a call rings unanswered before the caller gives up. */
export const RING_TIMEOUT_MS = 45_000;
/** After the relay-only retry, how long before the call is declared failed. */
export const RELAY_TIMEOUT_MS = 20_000;
/** Local ICE candidates are sent in batches, one message per burst. */
export const ICE_BATCH_MS = 150;
