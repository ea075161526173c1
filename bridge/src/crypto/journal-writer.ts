/**
 * Appends framed records to an open file and makes them durable with group commit: each append is
 * written at once (so records keep commit order and survive a process crash), and one fsync at a
 * time covers every record written before it started; `whenDurable` resolves once a record is
 * covered. A failed write or fsync is final: later data can no longer be trusted to reach the disk.
 */
import { fsync } from 'node:fs';
import { frame, writeAll } from './framed-file.js';

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class JournalWriter {
  private seq = 0;
  private durable = 0;
  private syncing = false;
  private waiters: Waiter[] = [];
  private failure: Error | undefined;
  /** Bytes in the file, header included. */
  bytes: number;

  constructor(
    private fd: number,
    bytes: number,
  ) {
    this.bytes = bytes;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Sequence number of the last record written. */
  get written(): number {
    return this.seq;
  }

  /** Some record is written but not yet covered by an fsync. */
  get pending(): boolean {
    return this.durable < this.seq;
  }

  /** Nothing written that is not yet durable, and no fsync running. */
  get idle(): boolean {
    return !this.syncing && this.durable === this.seq;
  }

  /** Writes one record now; returns its sequence number for `whenDurable`. */
  append(payload: Uint8Array): number {
    if (this.failure) throw this.failure;
    const data = frame(payload);
    try {
      writeAll(this.fd, data);
    } catch (e) {
      this.fail(e as Error);
      throw e;
    }
    this.bytes += data.length;
    return ++this.seq;
  }

  whenDurable(seq: number = this.seq): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (seq <= this.durable) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      this.kick();
    });
  }

  /** Swaps in a new file (after a snapshot made everything in the old one redundant). Only when idle. */
  replaceFile(fd: number, bytes: number): number {
    if (!this.idle) throw new Error('journal replaced while a write is pending');
    const old = this.fd;
    this.fd = fd;
    this.bytes = bytes;
    return old;
  }

  private kick(): void {
    if (this.syncing || this.failure || this.durable === this.seq) return;
    this.syncing = true;
    const target = this.seq;
    fsync(this.fd, (err) => {
      this.syncing = false;
      if (err) return this.fail(err);
      this.durable = target;
      const ready = this.waiters.filter((w) => w.seq <= target);
      this.waiters = this.waiters.filter((w) => w.seq > target);
      for (const w of ready) w.resolve();
      this.kick();
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiters) w.reject(this.failure);
    this.waiters = [];
  }
}
