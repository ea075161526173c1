/** The connection state, always visible: online, reconnecting, offline. */
import type { Connection } from '../engine.js';

const LABEL: Record<Connection, [string, string]> = {
  online: ['Online', 'online'],
  connecting: ['Connecting…', 'connecting'],
  offline: ['Reconnecting…', 'connecting'],
  closed: ['Offline', 'offline'],
  'offline-browser': ['Offline: messages wait to be sent', 'offline'],
};

export function ConnectionBadge({ state }: { state: Connection }) {
  const [text, cls] = LABEL[state];
  return (
    <p class={`conn conn-${cls}`} role="status" aria-live="polite" data-testid="connection" data-state={cls}>
      <span class="dot" aria-hidden="true" />
      {text}
    </p>
  );
}
