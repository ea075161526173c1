/** Status ticks of an outgoing message: pending (clock), sent (one), delivered (two), read (two, coloured), failed. */
import type { MessageStatus } from '../../../src/client/state.js';

const LABEL: Record<MessageStatus, string> = { pending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };

export function Tick({ status }: { status: MessageStatus }) {
  return (
    <span class={`tick tick-${status}`} data-status={status} title={LABEL[status]} role="img" aria-label={LABEL[status]}>
      {status === 'pending' ? (
        <svg viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6" /><path d="M8 4.5V8l2.5 1.5" /></svg>
      ) : status === 'failed' ? (
        <svg viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6" /><path d="M8 4.5v4.5M8 11v.5" /></svg>
      ) : status === 'sent' ? (
        <svg viewBox="0 0 16 16" aria-hidden="true"><path d="M3 8.5l3 3 7-7" /></svg>
      ) : (
        <svg viewBox="0 0 18 16" aria-hidden="true"><path d="M1.5 8.5l3 3 7-7M7.5 10.5l1 1 7-7" /></svg>
      )}
    </span>
  );
}
