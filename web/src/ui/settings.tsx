/** Settings: notifications (unavailable until the server offers push) and this device. */
import { useEffect, useState } from 'preact/hooks';
import type { Engine } from '../engine.js';
import { enableNotifications, notificationState, type NotificationState } from '../notifications.js';
import { Panel } from './panel.js';

const TEXT: Record<NotificationState, string> = {
  unavailable: 'Unavailable: this server does not offer push notifications yet.',
  unsupported: 'This browser cannot show notifications.',
  denied: 'Blocked in this browser’s site settings.',
  off: 'Off.',
  on: 'On. Notifications never show who wrote or what: only that a message arrived.',
  'on-no-push': 'Allowed, but this browser could not subscribe to push messages, so GChat cannot wake it while it is closed.',
};

export function SettingsPanel(props: { engine: Engine; onClose: () => void }) {
  const [state, setState] = useState<NotificationState | null>(null);
  useEffect(() => void notificationState().then(setState), []);
  return (
    <Panel title="Settings" onClose={props.onClose} testId="settings">
      <section class="setting">
        <h3>Notifications</h3>
        <p data-testid="notification-state" data-state={state ?? ''}>{state ? TEXT[state] : 'Checking…'}</p>
        {(state === 'off' || state === 'on-no-push') && (
          <button class="primary" onClick={() => void enableNotifications((sub) => props.engine.client.registerWebPush(sub)).then(setState)}>
            {state === 'off' ? 'Turn on notifications' : 'Try again'}
          </button>
        )}
      </section>
      <section class="setting">
        <h3>This device</h3>
        <p>
          Signed in as <strong>{props.engine.userId}</strong>, device {props.engine.client.deviceId}. Keys and messages are stored in this browser only.
        </p>
      </section>
    </Panel>
  );
}
