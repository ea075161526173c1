/** The app: onboarding until this browser holds a device, then the messenger (list + chat + panels). */
import { useEffect, useState } from 'preact/hooks';
import { CallLayer } from '../calls/call-ui.js';
import { Engine } from '../engine.js';
import { syncPushSubscription } from '../notifications.js';
import { ChatView } from './chat.js';
import { DevicesPanel } from './devices.js';
import { Onboarding, RecoveryCode } from './onboarding.js';
import { SafetyPanel } from './safety.js';
import { SettingsPanel } from './settings.js';
import { Sidebar } from './sidebar.js';
import { useEngineVersion } from './hooks.js';

type Panel = { kind: 'safety'; userId: string } | { kind: 'devices' } | { kind: 'settings' } | null;

export function App() {
  const [engine, setEngine] = useState<Engine | null | undefined>(undefined);
  const [recoveryCode, setRecoveryCode] = useState<string | null>(null);
  const [bootError, setBootError] = useState<string | null>(null);

  useEffect(() => {
    Engine.open().then(setEngine, (e: Error) => setBootError(e.message));
  }, []);

  if (bootError) return <main class="onboarding"><p class="error" role="alert">GChat could not open its storage in this browser: {bootError}</p></main>;
  if (engine === undefined) return <main class="onboarding"><p class="boot">Loading GChat…</p></main>;
  if (engine === null)
    return (
      <Onboarding
        onReady={(e, code) => {
          setRecoveryCode(code);
          setEngine(e);
        }}
      />
    );
  if (recoveryCode) return <RecoveryCode code={recoveryCode} onDone={() => setRecoveryCode(null)} />;
  return <Messenger engine={engine} />;
}

function Messenger({ engine }: { engine: Engine }) {
  useEngineVersion(engine);
  const [open, setOpen] = useState<string | null>(null);
  const [panel, setPanel] = useState<Panel>(null);
  const [removed, setRemoved] = useState(false);

  // A device removed from another one: its token no longer works; say so instead of reconnecting forever.
  useEffect(() => {
    if (engine.connection === 'online' || engine.connection === 'offline-browser') return;
    const t = setTimeout(() => void engine.stillRegistered().then((ok) => setRemoved(!ok)), 3000);
    return () => clearTimeout(t);
  }, [engine.connection]);

  // Keep this device's push subscription registered (it expires and rotates).
  useEffect(() => void syncPushSubscription((sub) => engine.client.registerWebPush(sub)), [engine]);

  useEffect(() => {
    document.title = open ? `${open} · GChat` : 'GChat';
  }, [open]);

  if (removed)
    return (
      <main class="onboarding">
        <div class="card auth-card">
          <h1>This device was removed</h1>
          <p class="lede">Another device of your account removed this browser. Its keys no longer receive messages.</p>
        </div>
      </main>
    );

  return (
    <div class={open ? 'layout chat-open' : 'layout'} data-tab-role={engine.role}>
      <Sidebar engine={engine} active={open} onOpen={(u) => { setOpen(u); setPanel(null); }} onPanel={(p) => setPanel(p === 'devices' ? { kind: 'devices' } : { kind: 'settings' })} />
      <main class="main" aria-label={open ? `Conversation with ${open}` : 'No conversation open'}>
        {open ? (
          <ChatView key={open} engine={engine} userId={open} onBack={() => setOpen(null)} onSafety={() => setPanel({ kind: 'safety', userId: open })} />
        ) : (
          <div class="empty-main">
            <img src="/icons/icon-192.png" alt="" width="72" height="72" />
            <h2>Your messages are end-to-end encrypted</h2>
            <p>Find someone by username to start a conversation.</p>
          </div>
        )}
      </main>
      {panel?.kind === 'safety' && <SafetyPanel engine={engine} userId={panel.userId} onClose={() => setPanel(null)} />}
      {panel?.kind === 'devices' && <DevicesPanel engine={engine} onClose={() => setPanel(null)} />}
      {panel?.kind === 'settings' && <SettingsPanel engine={engine} onClose={() => setPanel(null)} />}
      <CallLayer engine={engine} />
    </div>
  );
}
