/** The conversation list: who I am, the connection, find by username, conversations with unread counts. */
import { useState } from 'preact/hooks';
import type { Engine } from '../engine.js';
import { formatTime } from '../model.js';
import { Avatar } from './avatar.js';
import { ConnectionBadge } from './connection.js';
import { useLoaded } from './hooks.js';
import { Tick } from './ticks.js';

export function Sidebar(props: { engine: Engine; active: string | null; onOpen: (userId: string) => void; onPanel: (p: 'devices' | 'settings') => void }) {
  const { engine } = props;
  const conversations = useLoaded(engine, () => engine.conversations(), []);
  const [query, setQuery] = useState('');
  const [finding, setFinding] = useState(false);
  const [notFound, setNotFound] = useState<string | null>(null);

  const find = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    const name = query.trim().toLowerCase();
    if (!name) return;
    if (name === engine.userId) return setNotFound('That is you.');
    setFinding(true);
    setNotFound(null);
    try {
      const c = await engine.find(name);
      if (c) {
        setQuery('');
        props.onOpen(c.userId);
      } else setNotFound(`No user called “${name}”.`);
    } catch (e) {
      setNotFound(`Could not look up “${name}”: ${(e as Error).message}`);
    } finally {
      setFinding(false);
    }
  };

  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="side-head">
        <div class="me">
          <Avatar name={engine.userId} size={36} />
          <div>
            <p class="me-name">{engine.userId}</p>
            <ConnectionBadge state={engine.connection} />
          </div>
        </div>
        <nav class="side-actions" aria-label="Account">
          <button class="icon-btn" aria-label="Devices" title="Devices" onClick={() => props.onPanel('devices')}>
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 5h16v10H4zM2 18h20" /></svg>
          </button>
          <button class="icon-btn" aria-label="Settings" title="Settings" onClick={() => props.onPanel('settings')}>
            <svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="3" /><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1" /></svg>
          </button>
        </nav>
      </header>
      <form class="find" role="search" onSubmit={find}>
        <label class="visually-hidden" for="find-user">Find a contact by username</label>
        <input id="find-user" name="find" type="search" placeholder="Find by username" autocomplete="off" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        <button type="submit" class="secondary" disabled={finding}>
          {finding ? 'Finding…' : 'Find'}
        </button>
      </form>
      {notFound && <p class="find-error" role="alert">{notFound}</p>}
      <ul class="conversations" aria-label="Conversation list">
        {conversations?.length === 0 && <li class="no-conv">No conversations yet.</li>}
        {conversations?.map((c) => (
          <li key={c.userId}>
            <button class={c.userId === props.active ? 'conv active' : 'conv'} data-user={c.userId} aria-current={c.userId === props.active ? 'true' : undefined} onClick={() => props.onOpen(c.userId)}>
              <Avatar name={c.userId} />
              <span class="conv-body">
                <span class="conv-top">
                  <span class="conv-name">
                    {c.userId}
                    {c.verified && !c.keyChanged && <span class="verified-mark" title="Verified">✔<span class="visually-hidden"> verified</span></span>}
                  </span>
                  {c.last && <time class="conv-time">{formatTime(c.last.ts)}</time>}
                </span>
                <span class="conv-bottom">
                  <span class="conv-last">
                    {c.keyChanged ? (
                      <strong class="key-warn">Safety number changed</strong>
                    ) : c.last ? (
                      <>
                        {c.last.outgoing && <Tick status={c.last.status} />}
                        {c.last.body}
                      </>
                    ) : (
                      'No messages yet'
                    )}
                  </span>
                  {c.unread > 0 && (
                    <span class="unread" data-testid="unread" aria-label={`${c.unread} unread`}>
                      {c.unread}
                    </span>
                  )}
                </span>
              </span>
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}
