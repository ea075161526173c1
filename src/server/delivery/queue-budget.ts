/**
 * The bounds of one device's queue, checked against a batch's snapshot of delivery_queue_usage:
 * the whole queue (envelopes and bytes), and each sending account's share of it, so one sender
 * cannot fill a device's queue and shut everybody else out. The snapshot is read before the
 * batch is written, so sends in flight on other instances at the same moment may pass a bound
 * by what they carry (at most one batch each); the next batch sees them.
 */
import type { DeliveryLimits } from './limits.js';
import { type BatchSnapshot, type DeviceRef, type QueueUsage, shareKey } from './queue-repository.js';

export type QueueRefusal = 'device' | 'sender';

export class QueueBudget {
  private readonly devices = new Map<DeviceRef, QueueUsage>();
  private readonly shares: Map<string, QueueUsage>;

  constructor(
    private readonly limits: DeliveryLimits,
    snap: BatchSnapshot,
  ) {
    for (const list of snap.devices.values()) for (const d of list) this.devices.set(d.ref, d.queued);
    this.shares = new Map(snap.shares);
  }

  /** Why `bytes` more from `senderAccount` may not join `device`'s queue; null when they may. */
  refusal(device: DeviceRef, senderAccount: string, bytes: number): QueueRefusal | null {
    const l = this.limits;
    const d = this.devices.get(device) ?? EMPTY;
    if (d.envelopes + 1 > l.maxQueuePerDevice || d.bytes + bytes > l.maxQueueBytesPerDevice) return 'device';
    const s = this.shares.get(shareKey(device, senderAccount)) ?? EMPTY;
    if (s.envelopes + 1 > l.maxQueuePerSender || s.bytes + bytes > l.maxQueueBytesPerSender) return 'sender';
    return null;
  }

  /** Counts an accepted envelope, for the rest of the batch. */
  add(device: DeviceRef, senderAccount: string, bytes: number): void {
    const d = this.devices.get(device) ?? EMPTY;
    this.devices.set(device, { envelopes: d.envelopes + 1, bytes: d.bytes + bytes });
    const k = shareKey(device, senderAccount);
    const s = this.shares.get(k) ?? EMPTY;
    this.shares.set(k, { envelopes: s.envelopes + 1, bytes: s.bytes + bytes });
  }
}

const EMPTY: QueueUsage = { envelopes: 0, bytes: 0 };
