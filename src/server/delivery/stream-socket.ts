/**
 * The `/v1/stream` WebSocket: authenticates the device at the upgrade (Authorization: Bearer, or
 * the subprotocol `bearer.<token>` for browsers, which cannot set headers), then carries stream
 * frames (schemas.ts) between the socket and the hub.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ClientFrame, type ServerFrame } from './schemas.js';
import type { Sender, SendService } from './send-service.js';
import type { AckCommitter, Stream, StreamHub, StreamSink } from './stream-hub.js';
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

/**
 * One accepted stream's socket. What the stream needs per connection lives on the socket itself
 * (ws builds this class, WebSocketServer's `WebSocket` option), and its listeners are shared
 * module functions that find it as `this`: an idle stream holds no closures or timers of its own.
 */
export class StreamWebSocket extends WebSocket implements StreamSink {
  /** Answered the last ping (or connected since). */
  alive = true;
  owner: StreamServer | null = null;
  sender: Sender | null = null;
  stream: Stream | null = null;
  /** The TCP socket under it (what reply() corks). */
  raw: Duplex | null = null;

  sendFrame(frame: ServerFrame): void {
    reply(this, frame);
  }

  closeStream(code: number, reason: string): void {
    // What reply() corked this tick goes first (a stop may destroy the socket right after).
    if (this.raw?.writableCorked) this.raw.uncork();
    this.close(code, reason);
  }
}

function ignore(): void {}

// ws calls its listeners with the socket as `this`; only StreamServer adds them, to its own sockets.
function onPong(this: WebSocket): void {
  (this as StreamWebSocket).alive = true;
}

function onClose(this: WebSocket): void {
  const ws = this as StreamWebSocket;
  ws.owner?.closed(ws);
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const ws = this as StreamWebSocket;
  ws.owner?.received(ws, data as Buffer, isBinary);
}

export class StreamServer {
  readonly wss: WebSocketServer;
  /** The accepted sockets (ws's own client tracking would add a closure to each). */
  private readonly sockets = new Set<StreamWebSocket>();
  private readonly pinger: NodeJS.Timeout;
  /** Set by a graceful stop: sends are refused (503) while the ones in flight are committed. */
  draining = false;

  constructor(private readonly deps: StreamSocketDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      WebSocket: StreamWebSocket,
      maxPayload: deps.maxFrameBytes,
      // Off: frames are ciphertext (nothing to compress), and each deflate context would hold
      // zlib state per socket (hundreds of KB with the default window).
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(STREAM_SUBPROTOCOL) ? STREAM_SUBPROTOCOL : false),
    });
    // One timer for every socket's keep-alive, not one per socket.
    this.pinger = setInterval(() => this.pingAll(), STREAM_PING_MS);
    this.pinger.unref();
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Routes `/v1/stream` upgrades of an http server here. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      // Nothing else upgrades: answer at once, or the socket would wait for nobody forever.
      if (path !== STREAM_PATH) {
        socket.on('error', ignore);
        return reject(socket, 'not_found', 'Not Found', 'no WebSocket endpoint here: the stream is at /v1/stream');
      }
      void this.upgrade(req, socket, head);
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A module function: a closure here would keep this call's scope (its timer) for the socket's life.
    socket.on('error', ignore);
    const sender = await this.check(tokenOf(req));
    if (socket.destroyed) return;
    if (sender === 'unavailable') return reject(socket, 'unavailable', 'Service Unavailable', 'the device token could not be checked; retry');
    if (!sender) return reject(socket, 'unauthorized', 'Unauthorized', 'a valid device token is required');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws as StreamWebSocket, sender, socket));
  }

  /** The token's device; bounded, since a database that does not answer must not hold the socket open. */
  private async check(token: string | null): Promise<Sender | null | 'unavailable'> {
    if (!token) return null;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error('stream auth timed out')), STREAM_AUTH_TIMEOUT_MS);
      });
      return await Promise.race([this.deps.authenticate(token), timeout]);
    } catch (err) {
      this.deps.log?.('stream auth failed', err);
      return 'unavailable';
    } finally {
      clearTimeout(timer);
    }
  }

  private accept(ws: StreamWebSocket, sender: Sender, raw: Duplex): void {
    ws.owner = this;
    ws.sender = sender;
    ws.raw = raw;
    this.sockets.add(ws);
    ws.on('pong', onPong);
    ws.on('close', onClose);
    ws.on('error', ignore);
    const stream = this.deps.hub.attach(sender.deviceRef, ws);
    if (!stream) return;
    ws.stream = stream;
    ws.on('message', onMessage);
  }

  /** The socket closed (either side). */
  closed(ws: StreamWebSocket): void {
    this.sockets.delete(ws);
    if (ws.stream) this.deps.hub.detach(ws.stream);
    ws.owner = null;
  }

  received(ws: StreamWebSocket, data: Buffer, isBinary: boolean): void {
    const stream = ws.stream;
    const sender = ws.sender;
    if (!stream || !sender) return;
    if (isBinary) return this.protocolError(ws, 'frames are JSON text');
    // Refused before JSON.parse: a frame of more members than any send or ack holds (ws has
    // already refused, with 1009, any frame over maxFrameBytes while reading it).
    if (tooManyMembers(data, this.deps.maxFramePunctuation))
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
    for (const ws of this.sockets) {
      if (!ws.alive) {
        ws.terminate();
        continue;
      }
      ws.alive = false;
      ws.ping();
    }
  }

  /** Stops pinging; the hub closes the streams. */
  close(): void {
    clearInterval(this.pinger);
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}

/**
 * Sockets corked since this tick began. A commit answers every send it carried and hands each
 * device its envelopes in the same tick: corked, a socket's frames of that tick leave in one write
 * instead of one system call each (writev was the server's largest cost under load).
 */
const corked: Duplex[] = [];
function uncorkAll(): void {
  for (const s of corked.splice(0)) s.uncork();
}

function reply(ws: WebSocket, frame: ServerFrame): void {
  if (ws.readyState !== ws.OPEN) return;
  const raw = (ws as StreamWebSocket).raw;
  // (ws corks and uncorks within one send, so a socket still corked here is one of ours)
  if (raw && raw.writableCorked === 0) {
    raw.cork();
    // After the microtasks of this tick: every reply the commit resolved is written by then.
    if (corked.push(raw) === 1) process.nextTick(uncorkAll);
  }
  ws.send(JSON.stringify(frame));
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
