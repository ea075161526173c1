/** The call screens: the call button in a chat's header, the incoming-call card, the in-call screen. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Engine } from '../engine.js';
import type { CallView, EndReason } from './call.js';
import { CallManager } from './manager.js';
import './calls.css';

const managers = new WeakMap<Engine, CallManager>();

/** The engine's call manager (one per engine, made on first use). */
export function callsOf(engine: Engine): CallManager {
  let m = managers.get(engine);
  if (!m) {
    m = new CallManager(engine.client, () => engine.role === 'leader');
    managers.set(engine, m);
  }
  return m;
}

function useCall(engine: Engine): CallView | null {
  const m = callsOf(engine);
  const [, setV] = useState(0);
  useEffect(() => m.subscribe(() => setV((x) => x + 1)), [m]);
  return m.current();
}

const ENDED: Record<EndReason, string> = {
  hangup: 'Call ended',
  declined: 'Call declined',
  busy: 'Busy on another call',
  failed: 'Could not connect',
  'no-answer': 'No answer',
  elsewhere: 'Answered on another device',
  'no-microphone': 'No microphone: allow GChat to use it',
};

function duration(since: number | null): string {
  if (since === null) return '';
  const s = Math.max(0, Math.floor((Date.now() - since) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function statusText(c: CallView): string {
  switch (c.state) {
    case 'ringing':
      return c.direction === 'incoming' ? 'Incoming audio call' : 'Ringing…';
    case 'connecting':
      return c.relayOnly ? 'Connecting through the relay…' : 'Connecting…';
    case 'connected':
      return duration(c.connectedAt);
    case 'ended':
      return ENDED[c.endReason ?? 'hangup'];
  }
}

const PhoneIcon = () => (
  <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z" /></svg>
);

/** The "Call" button of a chat's header. */
export function CallButton(props: { engine: Engine; userId: string; disabled?: boolean }) {
  const { engine, userId } = props;
  const call = useCall(engine);
  const m = callsOf(engine);
  const busy = call !== null && call.state !== 'ended';
  const here = m.canCall();
  return (
    <button
      class="icon-btn call-btn"
      aria-label={`Call ${userId}`}
      title={here ? `Audio call with ${userId}` : 'Calls ring in your other GChat tab'}
      disabled={busy || !here || props.disabled}
      onClick={() => void m.start(userId)}
    >
      <PhoneIcon />
    </button>
  );
}

/** The incoming-call card and the in-call screen, over whatever is open. */
export function CallLayer(props: { engine: Engine }) {
  const call = useCall(props.engine);
  const m = callsOf(props.engine);
  const primary = useRef<HTMLButtonElement>(null);
  useEffect(() => primary.current?.focus(), [call?.id, call?.state === 'ringing']);
  if (!call) return null;
  const incomingRinging = call.direction === 'incoming' && call.state === 'ringing';
  const s = call.stats;
  return (
    <div class="call-backdrop">
      <div
        class={`call-card call-${call.state}`}
        role={incomingRinging ? 'alertdialog' : 'dialog'}
        aria-modal="true"
        aria-labelledby="call-peer"
        aria-describedby="call-status"
        data-testid={incomingRinging ? 'incoming-call' : 'call'}
        data-state={call.state}
        data-direction={call.direction}
        data-end-reason={call.endReason ?? ''}
      >
        <div class={call.state === 'ringing' ? 'call-avatar pulsing' : 'call-avatar'} aria-hidden="true">
          {call.peer.slice(0, 1).toUpperCase()}
        </div>
        <h2 id="call-peer">{call.peer}</h2>
        <p id="call-status" class="call-status" aria-live="polite" data-testid="call-status">
          {statusText(call)}
        </p>
        <p class="call-note">End-to-end encrypted audio{call.relayOnly ? ' · through the relay' : ''}</p>
        {call.state === 'connected' && s && (
          <p class="call-route" data-testid="call-route" data-route={s.route ?? ''} data-bytes-sent={s.audioBytesSent} data-bytes-received={s.audioBytesReceived}>
            {s.route === 'relay' ? 'Relayed (TURN)' : s.route ? 'Direct' : 'Route unknown'} · {Math.round(s.audioBytesSent / 1024)} kB sent · {Math.round(s.audioBytesReceived / 1024)} kB received
          </p>
        )}
        <div class="call-actions">
          {incomingRinging ? (
            <>
              <button class="call-round decline" onClick={() => m.decline()} aria-label="Decline">
                <PhoneIcon />
                <span>Decline</span>
              </button>
              <button class="call-round accept" ref={primary} onClick={() => void m.accept()} aria-label="Accept">
                <PhoneIcon />
                <span>Accept</span>
              </button>
            </>
          ) : call.state !== 'ended' ? (
            <button class="call-round decline" ref={primary} onClick={() => m.hangUp()} aria-label="Hang up">
              <PhoneIcon />
              <span>Hang up</span>
            </button>
          ) : null}
        </div>
      </div>
    </div>
  );
}
