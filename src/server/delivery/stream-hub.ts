/**
 * Streams held by this instance, per device. Each stream sends its device's queue in id order
 * through a bounded window of unacked envelopes, and more as they are committed: directly from
 * memory when the send committed here and the stream is caught up, otherwise by reading the
 * queue (after a wake-up from another instance, or while it catches up).
 */
import type { Envelope, ServerFrame } from './schemas.js';
import type { DeviceRef, QueueRepository } from './queue-repository.js';
import type { Wake } from './wake-bus.js';
import { FETCH_PAGE, PUMP_RETRY_MS, STREAM_WINDOW } from './limits.js';

/** The socket side of a stream, as the hub sees it. */
export interface StreamSink {
  sendFrame(frame: ServerFrame): void;
  closeStream(code: number, reason: string): void;
}

export interface AckCommitter {
  /** Deletes acked envelopes of a device; answers the ids that were removed. */
  ack(device: DeviceRef, ids: readonly string[]): Promise<ReadonlySet<string>>;
}

/** What every stream of a hub shares (one object, not three fields per stream). */
export interface StreamContext {
  readonly repo: QueueRepository;
  readonly onError: (err: unknown) => void;
  /** Envelopes written to a stream (metrics). */
  readonly onSent: (envelopes: number) => void;
}

export class Stream {
  /** Sent on this stream, not yet acked; null while empty (most streams are idle). */
  private held: Set<string> | null = null;
  private pumping = false;
  private dirty = false;
  /** True when the last queue read found nothing more than what is in flight. */
  private caughtUp = false;
  private drainedSent = false;
  private retry: NodeJS.Timeout | null = null;
  closed = false;

  constructor(
    readonly device: DeviceRef,
    private readonly sink: StreamSink,
    private readonly ctx: StreamContext,
  ) {}

  /** Envelopes sent on this stream and not yet acked. */
  get inflightCount(): number {
    return this.held?.size ?? 0;
  }

  /** Reads the queue and sends what this stream has not sent, within the window. */
  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.dirty = true;
      return;
    }
    this.pumping = true;
    void this.pumpLoop()
      .catch((err: unknown) => {
        // The queue could not be read (database away): try again shortly, or the stream would
        // wait for a wake-up that may never come.
        this.caughtUp = false;
        this.ctx.onError(err);
        if (!this.retry && !this.closed) {
          this.retry = setTimeout(() => {
            this.retry = null;
            this.pump();
          }, PUMP_RETRY_MS);
        }
      })
      .finally(() => {
        this.pumping = false;
      });
  }

  private async pumpLoop(): Promise<void> {
    do {
      this.dirty = false;
      while (!this.closed && this.inflightCount < STREAM_WINDOW) {
        const room = Math.min(FETCH_PAGE, STREAM_WINDOW - this.inflightCount);
        const rows = await this.ctx.repo.fetch(this.device, this.held ? [...this.held] : [], room);
        if (this.closed) return;
        this.push(rows);
        if (rows.length < room) {
          this.caughtUp = true;
          if (!this.drainedSent) {
            this.drainedSent = true;
            this.sink.sendFrame({ op: 'drained' });
          }
          break;
        }
        this.caughtUp = false;
      }
      if (this.inflightCount >= STREAM_WINDOW) this.caughtUp = false;
    } while (this.dirty && !this.closed);
  }

  /** Envelopes just committed by this instance for this device, in id order. */
  offer(envs: readonly Envelope[]): void {
    if (this.closed) return;
    if (!this.pumping && this.caughtUp && this.inflightCount + envs.length <= STREAM_WINDOW) {
      this.push(envs);
    } else {
      this.pump();
    }
  }

  private push(envs: readonly Envelope[]): void {
    if (envs.length === 0) return;
    const held = (this.held ??= new Set());
    const fresh = envs.filter((e) => !held.has(e.id));
    if (fresh.length === 0) return;
    for (const e of fresh) held.add(e.id);
    this.sink.sendFrame({ op: 'envelopes', envelopes: fresh });
    this.ctx.onSent(fresh.length);
  }

  /** After the acked envelopes are gone from the database. */
  acked(ids: readonly string[]): void {
    if (this.closed) return;
    const wasFull = this.inflightCount >= STREAM_WINDOW;
    if (this.held) {
      for (const id of ids) this.held.delete(id);
      if (this.held.size === 0) this.held = null;
    }
    this.sink.sendFrame({ op: 'acked', ids: [...ids] });
    if (wasFull || !this.caughtUp) this.pump();
  }

  close(code: number, reason: string): void {
    if (this.retry) clearTimeout(this.retry);
    if (this.closed) return;
    this.closed = true;
    this.sink.closeStream(code, reason);
  }
}

export class StreamHub {
  private readonly byDevice = new Map<DeviceRef, Stream>();
  private accepting = true;
  private readonly ctx: StreamContext;

  constructor(
    repo: QueueRepository,
    onError: (err: unknown) => void = () => undefined,
    /** Envelopes written to a stream (metrics). */
    onSent: (envelopes: number) => void = () => undefined,
  ) {
    this.ctx = { repo, onError, onSent };
  }

  get size(): number {
    return this.byDevice.size;
  }

  /**
   * A device's new stream. One stream per device on an instance: a newer connection replaces an
   * older one (closed with 4001), whose unacked envelopes the new one receives again.
   */
  attach(device: DeviceRef, sink: StreamSink): Stream | null {
    if (!this.accepting) {
      sink.closeStream(1012, 'server restarting');
      return null;
    }
    this.byDevice.get(device)?.close(4001, 'replaced by a newer connection');
    const stream = new Stream(device, sink, this.ctx);
    this.byDevice.set(device, stream);
    stream.pump();
    return stream;
  }

  detach(stream: Stream): void {
    stream.close(1000, 'closed');
    if (this.byDevice.get(stream.device) === stream) this.byDevice.delete(stream.device);
  }

  /** Envelopes this instance just committed. */
  offer(byDevice: ReadonlyMap<DeviceRef, readonly Envelope[]>): void {
    for (const [device, envs] of byDevice) this.byDevice.get(device)?.offer(envs);
  }

  /** A wake-up from another instance. */
  wake(w: Wake): void {
    if (w.kind === 'removed') {
      for (const d of w.devices) this.kick(d as DeviceRef);
      return;
    }
    if (w.kind === 'all') {
      for (const s of this.byDevice.values()) s.pump();
      return;
    }
    for (const d of w.devices) this.byDevice.get(d as DeviceRef)?.pump();
  }

  /** The device was removed: its stream closes (4003) and its token no longer authenticates. */
  kick(device: DeviceRef): void {
    const s = this.byDevice.get(device);
    if (!s) return;
    this.byDevice.delete(device);
    s.close(4003, 'device removed');
  }

  /** Graceful shutdown, first step: new streams are refused (1012). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Graceful shutdown, last step: close the open streams (clients reconnect elsewhere). */
  closeAll(): void {
    this.accepting = false;
    for (const s of this.byDevice.values()) s.close(1012, 'server restarting');
    this.byDevice.clear();
  }
}
