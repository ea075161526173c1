/** One conversation: messages with ticks and timestamps, reply and edit, typing, and the key-change block. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { CallButton } from '../calls/call-ui.js';
import type { Engine } from '../engine.js';
import { formatTime, type ChatMessage } from '../model.js';
import { Avatar } from './avatar.js';
import { useEngineVersion, useLoaded } from './hooks.js';
import { Tick } from './ticks.js';

const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 5000;

export function ChatView(props: { engine: Engine; userId: string; onBack: () => void; onSafety: () => void }) {
  const { engine, userId } = props;
  useEngineVersion(engine);
  const messages = useLoaded(engine, () => engine.chat(userId), [userId]);
  const contact = useLoaded(engine, () => engine.contact(userId), [userId]);
  const [text, setText] = useState('');
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [editing, setEditing] = useState<ChatMessage | null>(null);
  const [accepting, setAccepting] = useState(false);
  const listRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const typingSent = useRef(0);
  const idleTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const keyChanged = !!contact?.changedAk;

  // Read receipts for what is on screen while the page is visible.
  useEffect(() => {
    if (!messages) return;
    const mark = (): void => {
      if (document.visibilityState === 'visible') void engine.markRead(userId, messages).catch(() => undefined);
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [messages, userId]);

  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages?.length, userId]);

  useEffect(() => inputRef.current?.focus(), [userId, replyTo, editing]);

  const stopTyping = (): void => {
    if (idleTimer.current) clearTimeout(idleTimer.current);
    if (typingSent.current) void engine.typing(userId, 'stopped');
    typingSent.current = 0;
  };

  const onInput = (value: string): void => {
    setText(value);
    if (keyChanged) return;
    if (value && Date.now() - typingSent.current > TYPING_REPEAT_MS) {
      typingSent.current = Date.now();
      void engine.typing(userId, 'started');
    }
    if (idleTimer.current) clearTimeout(idleTimer.current);
    idleTimer.current = setTimeout(stopTyping, TYPING_IDLE_MS);
  };

  const send = async (): Promise<void> => {
    const body = text.trim();
    if (!body || keyChanged) return;
    setText('');
    if (idleTimer.current) clearTimeout(idleTimer.current);
    typingSent.current = 0;
    const opts = editing ? { editOf: editing.id } : replyTo ? { replyTo: replyTo.id } : {};
    setReplyTo(null);
    setEditing(null);
    await engine.send(userId, body, opts);
  };

  const startEdit = (m: ChatMessage): void => {
    setReplyTo(null);
    setEditing(m);
    setText(m.body);
  };

  const accept = async (): Promise<void> => {
    setAccepting(true);
    try {
      await engine.acceptKeyChange(userId);
    } finally {
      setAccepting(false);
    }
  };

  const typing = engine.isTyping(userId);
  return (
    <section class="chat" aria-label={`Chat with ${userId}`}>
      <header class="chat-head">
        <button class="icon-btn back" aria-label="Back to conversations" onClick={props.onBack}>
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M15 5l-7 7 7 7" /></svg>
        </button>
        <Avatar name={userId} />
        <div class="chat-title">
          <h2>
            {userId}
            {contact?.verified && !keyChanged && <span class="verified-mark" data-testid="verified" title="Verified">✔<span class="visually-hidden"> verified</span></span>}
          </h2>
          <p class="chat-sub" aria-live="polite" data-testid="typing">
            {typing ? <span class="typing">typing<span class="typing-dots" aria-hidden="true"><i /><i /><i /></span></span> : contact?.verified && !keyChanged ? 'Verified contact' : 'End-to-end encrypted'}
          </p>
        </div>
        <CallButton engine={engine} userId={userId} disabled={keyChanged} />
        <button class="secondary small" onClick={props.onSafety}>
          Safety number
        </button>
      </header>

      <div class="messages" ref={listRef} role="log" aria-live="polite" aria-label="Messages" tabIndex={0}>
      <ol class="msg-list">
        {messages?.length === 0 && <li class="no-msg">No messages yet. Say hello — only {userId} can read it.</li>}
        {messages?.map((m, i) => {
          const prev = messages[i - 1];
          const newDay = !prev || new Date(prev.ts).toDateString() !== new Date(m.ts).toDateString();
          return (
            <>
              {newDay && (
                <li class="day" aria-hidden="true">
                  {new Date(m.ts).toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric' })}
                </li>
              )}
              <li key={m.id} class={m.outgoing ? 'msg out' : 'msg in'} data-id={m.id} data-testid="message">
                <div class="bubble">
                  {m.replyTo && (
                    <blockquote class="quote">
                      <span class="quote-who">{m.replyTo.sender === engine.userId ? 'You' : m.replyTo.sender}</span>
                      <span class="quote-body">{m.replyTo.body}</span>
                    </blockquote>
                  )}
                  <p class="body">{m.body}</p>
                  <span class="meta">
                    {m.edited && <span class="edited">edited</span>}
                    <time dateTime={new Date(m.ts).toISOString()}>{formatTime(m.ts)}</time>
                    {m.outgoing && <Tick status={m.status} />}
                  </span>
                </div>
                <div class="msg-actions">
                  {m.status === 'failed' && m.outgoing && (
                    <button class="link danger" onClick={() => void engine.send(userId, m.body, m.replyTo ? { replyTo: m.replyTo.id } : {})}>
                      Retry
                    </button>
                  )}
                  <button class="link" aria-label={`Reply to “${m.body.slice(0, 40)}”`} onClick={() => { setEditing(null); setReplyTo(m); }}>
                    Reply
                  </button>
                  {m.outgoing && m.status !== 'failed' && (
                    <button class="link" aria-label={`Edit “${m.body.slice(0, 40)}”`} onClick={() => startEdit(m)}>
                      Edit
                    </button>
                  )}
                </div>
              </li>
            </>
          );
        })}
      </ol>
      </div>

      {keyChanged ? (
        <div class="key-change" role="alertdialog" aria-modal="true" aria-labelledby="kc-title" aria-describedby="kc-text" data-testid="key-change">
          <h3 id="kc-title">{userId}’s safety number changed</h3>
          <p id="kc-text">
            {userId} may have set up GChat again, or someone may be trying to intercept your messages. Nothing is sent to {userId} and nothing received from them is shown until you accept the new key. If you can, check with {userId} in person or on another channel first.
          </p>
          <div class="row">
            <button class="secondary" onClick={props.onSafety}>
              View safety number
            </button>
            <button class="danger-btn" disabled={accepting} onClick={() => void accept()}>
              Accept the new key
            </button>
          </div>
        </div>
      ) : (
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          {(replyTo || editing) && (
            <div class="compose-context">
              <span>
                <strong>{editing ? 'Editing' : `Replying to ${replyTo!.outgoing ? 'yourself' : replyTo!.sender}`}</strong>
                <span class="ctx-body">{(editing ?? replyTo)!.body}</span>
              </span>
              <button type="button" class="icon-btn" aria-label={editing ? 'Cancel edit' : 'Cancel reply'} onClick={() => { setReplyTo(null); if (editing) setText(''); setEditing(null); }}>
                <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18" /></svg>
              </button>
            </div>
          )}
          <div class="compose-row">
            <label class="visually-hidden" for="compose">Message to {userId}</label>
            <textarea
              id="compose"
              ref={inputRef}
              rows={1}
              placeholder="Message"
              value={text}
              onInput={(e) => onInput(e.currentTarget.value)}
              onBlur={stopTyping}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && !e.shiftKey) {
                  e.preventDefault();
                  void send();
                } else if (e.key === 'Escape') {
                  setReplyTo(null);
                  setEditing(null);
                }
              }}
            />
            <button type="submit" class="send" aria-label={editing ? 'Save edit' : 'Send'} disabled={!text.trim()}>
              <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 11l18-8-8 18-2-8z" /></svg>
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
