/**
 * What other parts of the server (Server II's queues and WebSocket) attach to a device's removal.
 */
import type { Tx } from '../db.js';

export interface DeviceRemoved {
  readonly accountId: string;
  readonly username: string;
  readonly deviceId: number;
}

export type InTransactionHook = (tx: Tx, e: DeviceRemoved) => Promise<void>;
export type AfterCommitHook = (e: DeviceRemoved) => void | Promise<void>;

export class DeviceRemovalHooks {
  private readonly inTx: InTransactionHook[] = [];
  private readonly after: AfterCommitHook[] = [];

  /** Runs inside the removal's transaction: what it writes commits or rolls back with it. */
  inTransaction(hook: InTransactionHook): void {
    this.inTx.push(hook);
  }

  /** Runs once the removal committed (e.g. to close the device's open connections). */
  afterCommit(hook: AfterCommitHook): void {
    this.after.push(hook);
  }

  async runInTransaction(tx: Tx, e: DeviceRemoved): Promise<void> {
    for (const h of this.inTx) await h(tx, e);
  }

  /** Errors are handed to `onError`, never thrown: the removal has already happened. */
  async runAfterCommit(e: DeviceRemoved, onError: (err: unknown) => void): Promise<void> {
    for (const h of this.after) {
      try {
        await h(e);
      } catch (err) {
        onError(err);
      }
    }
  }
}
