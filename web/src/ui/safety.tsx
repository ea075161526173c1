/** The contact's safety number (60 digits, 12 groups) and its QR code, and the "verified" mark. */
import type { FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Engine } from '../engine.js';
import { safetyGroups } from '../model.js';
import { useLoaded } from './hooks.js';
import { Panel } from './panel.js';

type QrComponent = FunctionComponent<{ text: string; label: string }>;

export function SafetyPanel(props: { engine: Engine; userId: string; onClose: () => void }) {
  const { engine, userId } = props;
  const number = useLoaded(engine, () => engine.safetyNumber(userId), [userId]);
  const contact = useLoaded(engine, () => engine.contact(userId), [userId]);
  const [Qr, setQr] = useState<QrComponent | null>(null);

  useEffect(() => {
    void import('./qr.js').then((m) => setQr(() => m.QrCode));
  }, []);

  const groups = number ? safetyGroups(number) : [];
  return (
    <Panel title={`Safety number with ${userId}`} onClose={props.onClose} testId="safety">
      <p class="hint">
        Compare these numbers with the ones {userId} sees, in person or on a call, or scan each other’s code. If they match, nobody is intercepting your conversation.
      </p>
      {contact?.changedAk && <p class="warning" role="alert">{userId}’s key changed. This is the number for the key you trusted before; accept the new key in the chat to see the new number.</p>}
      <p class="safety-number" data-testid="safety-number" aria-label={`Safety number ${groups.join(' ')}`}>
        {groups.map((g, i) => (
          <span key={i}>{g}</span>
        ))}
      </p>
      <div class="qr-wrap">{Qr && number ? <Qr text={`gchat-safety:${groups.join('')}`} label={`QR code of the safety number with ${userId}`} /> : <div class="qr placeholder" aria-hidden="true" />}</div>
      {contact &&
        (contact.verified ? (
          <div class="verified-row">
            <p class="verified-yes">
              <span class="verified-mark" aria-hidden="true">✔</span> You verified {userId}
            </p>
            <button class="secondary" onClick={() => void engine.setVerified(userId, false)}>
              Clear verification
            </button>
          </div>
        ) : (
          <button class="primary" disabled={!!contact.changedAk} onClick={() => void engine.setVerified(userId, true)}>
            Mark as verified
          </button>
        ))}
    </Panel>
  );
}
