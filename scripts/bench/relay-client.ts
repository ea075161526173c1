/**
 * bench:relay's load generator side: stream connections that send, receive and ack, in the
 * bench process (never the server's). Frames are built as strings; receipt times are taken from
 * this process's clock, which sender and receiver share.
 */
import { WebSocket } from 'ws';
import type { Dev } from './relay-setup.js';

/** A message-sized type-2 body (SPEC §5): 2 header bytes and 214 random ones, base64url. */
export type Body = string;

export interface Conn {
  readonly ws: WebSocket;
  readonly pending: Map<string, () => void>;
  rid: number;
}

interface InFrame {
  op: string;
  rid?: string;
  status?: number;
  envelopes?: { id: string; message_id: string }[];
}

/** A stream for `dev`; `onEnvelopes` sees each delivered batch (already acked). */
export function connect(port: number, dev: Dev, onEnvelopes?: (mids: string[]) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['gchat.v1'], {
      headers: { authorization: `Bearer ${dev.token}` },
      perMessageDeflate: false,
    });
    const conn: Conn = { ws, pending: new Map(), rid: 0 };
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as InFrame;
      if (f.op === 'envelopes' && f.envelopes) {
        ws.send(JSON.stringify({ op: 'ack', ids: f.envelopes.map((e) => e.id) }));
        onEnvelopes?.(f.envelopes.map((e) => e.message_id));
      } else if (f.op === 'sent' && f.rid) {
        if (f.status !== 200) throw new Error(`send refused: ${f.status}`);
        conn.pending.get(f.rid)?.();
        conn.pending.delete(f.rid);
      }
    });
    ws.once('open', () => resolve(conn));
    ws.once('error', reject);
  });
}

/** Sends one message from `conn` (device `from`) to `to`; resolves when the server answers it stored. */
export function send(conn: Conn, to: Dev, mid: string, body: Body): Promise<void> {
  const rid = String(++conn.rid);
  return new Promise((resolve) => {
    conn.pending.set(rid, resolve);
    conn.ws.send(
      JSON.stringify({
        op: 'send',
        rid,
        message_id: mid,
        recipient: to.username,
        copies: [{ user: to.username, device: to.device, key: to.key, type: 2, body }],
      }),
    );
  });
}

/** The p-th percentile of ascending `sorted`. */
export function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
