/** A side panel (a modal dialog on phones): focus moves in, Escape closes, focus returns. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export function Panel(props: { title: string; onClose: () => void; children: ComponentChildren; testId?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    ref.current?.focus();
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'Escape') props.onClose();
    };
    addEventListener('keydown', onKey);
    return () => {
      removeEventListener('keydown', onKey);
      before?.focus?.();
    };
  }, []);
  return (
    <div class="panel-backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class="panel" role="dialog" aria-modal="true" aria-labelledby="panel-title" tabIndex={-1} ref={ref} data-testid={props.testId}>
        <header class="panel-head">
          <h2 id="panel-title">{props.title}</h2>
          <button class="icon-btn" aria-label="Close" onClick={props.onClose}>
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18" /></svg>
          </button>
        </header>
        <div class="panel-body">{props.children}</div>
      </div>
    </div>
  );
}
