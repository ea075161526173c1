/**
 * The `/v1/stream` WebSocket: authenticates the device at the upgrade (Authorization: Bearer, or
 * the subprotocol `bearer.<token>` for browsers, which cannot set headers), then carries stream
 * frames (schemas.ts) between the socket and the hub.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ClientFrame, type ServerFrame } from './schemas.js';
import type { Sender, SendService } from './send-service.js';
import type { Stream, StreamHub, AckCommitter } from './stream-hub.js';
import { ApiError, errorBody, type ApiErrorCode } from '../errors.js';
import { errorOutcome, sendFailure, sendOutcome } from './outcome.js';
import { STREAM_AUTH_TIMEOUT_MS, STREAM_PING_MS } from './limits.js';
import { tooManyMembers } from './frame-guard.js';

export const STREAM_PATH = '/v1/stream';
export const STREAM_SUBPROTOCOL = 'gchat.v1';

export interface StreamSocketDeps {
  readonly authenticate: (token: string) => Promise<Sender | null>;
  readonly hub: StreamHub;
  readonly sends: SendService;
  readonly acks: AckCommitter;
  readonly maxFrameBytes: number;
  /** Most JSON punctuation bytes in a frame (limits.ts maxSendPunctuation); more is refused unparsed. */
  readonly maxFramePunctuation: number;
  readonly log?: (msg: string, err?: unknown) => void;
}

export class StreamServer {
  readonly wss: WebSocketServer;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly pinger: NodeJS.Timeout;
  /** Set by a graceful stop: sends are refused (503) while the ones in flight are committed. */
  draining = false;

  constructor(private readonly deps: StreamSocketDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.maxFrameBytes,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(STREAM_SUBPROTOCOL) ? STREAM_SUBPROTOCOL : false),
    });
    this.pinger = setInterval(() => this.pingAll(), STREAM_PING_MS);
    this.pinger.unref();
  }

  /** Routes `/v1/stream` upgrades of an http server here. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      // Nothing else upgrades: answer at once, or the socket would wait for nobody forever.
      if (path !== STREAM_PATH) {
        socket.on('error', () => undefined);
        return reject(socket, 'not_found', 'Not Found', 'no WebSocket endpoint here: the stream is at /v1/stream');
      }
      void this.upgrade(req, socket, head);
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const token = tokenOf(req);
    let sender: Sender | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded: a database that does not answer must not hold the socket open.
      const timeout = new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error('stream auth timed out')), STREAM_AUTH_TIMEOUT_MS);
      });
      sender = token ? await Promise.race([this.deps.authenticate(token), timeout]) : null;
    } catch (err) {
      this.deps.log?.('stream auth failed', err);
      return reject(socket, 'unavailable', 'Service Unavailable', 'the device token could not be checked; retry');
    } finally {
      clearTimeout(timer);
    }
    if (socket.destroyed) return;
    if (!sender) return reject(socket, 'unauthorized', 'Unauthorized', 'a valid device token is required');
    const who = sender;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, who));
  }

  private accept(ws: WebSocket, sender: Sender): void {
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    const stream = this.deps.hub.attach(sender.deviceRef, {
      send: (frame: ServerFrame) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
      },
      close: (code, reason) => ws.close(code, reason),
    });
    if (!stream) return;
    ws.on('close', () => this.deps.hub.detach(stream));
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return this.protocolError(ws, 'frames are JSON text');
      // Refused before JSON.parse: a frame of more members than any send or ack holds (ws has
      // already refused, with 1009, any frame over maxFrameBytes while reading it).
      if (tooManyMembers(data as Buffer, this.deps.maxFramePunctuation))
        return reply(ws, { op: 'error', code: 'payload_too_large', message: 'the frame has more members than any send or ack can hold' });
      let frame: ClientFrame;
      try {
        const parsed = ClientFrame.safeParse(JSON.parse(data.toString()));
        if (!parsed.success) return this.protocolError(ws, 'unknown or malformed frame');
        frame = parsed.data;
      } catch {
        return this.protocolError(ws, 'frames are JSON text');
      }
      if (frame.op === 'ack') this.onAck(stream, frame.ids);
      else this.onSend(ws, sender, frame);
    });
  }

  private onAck(stream: Stream, ids: readonly string[]): void {
    this.deps.acks.ack(stream.device, ids).then(
      () => stream.acked(ids),
      (err: unknown) => {
        this.deps.log?.('ack failed', err);
        // The ids stay in flight on this stream and would never be sent again on it: close it, so
        // the client reconnects, acks again and receives what is still queued.
        stream.close(1011, 'ack could not be stored');
      },
    );
  }

  private onSend(ws: WebSocket, sender: Sender, frame: Extract<ClientFrame, { op: 'send' }>): void {
    const { rid, op: _op, ...req } = frame;
    if (this.draining) {
      const o = errorOutcome(new ApiError('unavailable', 'the server is restarting; send again on a new connection'));
      return reply(ws, { op: 'sent', rid, status: o.status, body: o.body });
    }
    this.deps.sends.send(sender, req).then(
      (r) => {
        const o = sendOutcome(r);
        reply(ws, { op: 'sent', rid, status: o.status, body: o.body });
      },
      (err: unknown) => {
        const o = errorOutcome(sendFailure(err));
        if (o.status >= 500) this.deps.log?.('send failed', err);
        reply(ws, { op: 'sent', rid, status: o.status, body: o.body });
      },
    );
  }

  private protocolError(ws: WebSocket, message: string): void {
    reply(ws, { op: 'error', code: 'bad_frame', message });
  }

  private pingAll(): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  /** Stops pinging; the hub closes the streams. */
  close(): void {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

function reply(ws: WebSocket, frame: ServerFrame): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
}

function tokenOf(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim() || null;
  const protos = req.headers['sec-websocket-protocol'];
  if (typeof protos === 'string') {
    for (const p of protos.split(',')) {
      const t = p.trim();
      if (t.startsWith('bearer.')) return t.slice(7) || null;
    }
  }
  return null;
}

/** Refuses an upgrade with the server's JSON error, as a plain HTTP response, then closes the socket (not half-open: the peer may never close its side). */
function reject(socket: Duplex, code: ApiErrorCode, reason: string, message: string): void {
  const e = new ApiError(code, message);
  const body = JSON.stringify(errorBody(e));
  socket.end(
    `HTTP/1.1 ${e.status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  // If the peer does not read, 'finish' may never come.
  setTimeout(() => socket.destroy(), 5000).unref();
}
