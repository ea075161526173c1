/**
 * Contacts and their devices: trust on first use of an account key, key changes that block sending
 * until accepted (SPEC §8), device lists whose every DeviceCert verified, and sessions with them.
 */
import { equalBytes, fromBase64url, toBase64url } from '../protocol/bytes.js';
import { displaySafetyNumber, safetyNumberOf } from '../protocol/fingerprint.js';
import { verifyDeviceCert } from '../protocol/keys.js';
import { ProtocolError } from '../protocol/errors.js';
import { startSession } from '../protocol/session.js';
import type { ClientCore } from './core.js';
import { KvProtocolStore } from './protocol-store.js';
import { keys, type StoredContact } from './state.js';
import { type Json, WriteBatch } from './storage.js';
import { ApiRequestError } from './transport/api.js';

export class KeyChangedError extends Error {
  override readonly name = 'KeyChangedError';
  constructor(readonly userId: string) {
    super(`the account key of ${userId} changed: compare safety numbers and accept the change before sending`);
  }
}

export class UnknownUserError extends Error {
  override readonly name = 'UnknownUserError';
  constructor(readonly userId: string) {
    super(`no such user: ${userId}`);
  }
}

export interface PeerDevice {
  id: number;
  ik: string;
}

export class Directory {
  constructor(private readonly core: ClientCore) {}

  async contact(userId: string): Promise<StoredContact | null> {
    return ((await this.core.kv.get(keys.contact(userId))) as StoredContact | undefined) ?? null;
  }

  async contacts(): Promise<StoredContact[]> {
    return (await this.core.kv.list(keys.contactPrefix)).map(([, v]) => v as unknown as StoredContact);
  }

  /** The AK the server publishes (what a prekey message from a stranger is checked against). */
  async publishedAccountKey(userId: string): Promise<Uint8Array | null> {
    try {
      return (await this.core.api.account(userId)).akPub;
    } catch (e) {
      if (e instanceof ApiRequestError && e.status === 404) return null;
      throw e;
    }
  }

  protocolStore(batch: WriteBatch): KvProtocolStore {
    return new KvProtocolStore(batch, { fetchAccountKey: (u) => this.publishedAccountKey(u) }, this.core.ctx.now);
  }

  /**
   * Fetches `userId`'s devices, pins the AK on first use, flags a changed AK (and throws
   * KeyChangedError), keeps only devices whose DeviceCert verifies, and caches the list.
   */
  async refreshDevices(userId: string): Promise<PeerDevice[]> {
    const { api, ctx, self, kv } = this.core;
    let account;
    try {
      account = await api.account(userId);
    } catch (e) {
      if (e instanceof ApiRequestError && e.status === 404) throw new UnknownUserError(userId);
      throw e;
    }
    const existing = await this.contact(userId);
    const pinned = existing ? fromBase64url(existing.ak) : account.akPub;
    await this.checkAccountKey(existing, account.akPub);
    const devices: PeerDevice[] = [];
    for (const d of account.devices) {
      if (userId === self.userId && d.deviceId === self.deviceId) continue;
      // A device without a valid certificate under the pinned AK is ignored (SPEC §2).
      if (await verifyDeviceCert(ctx.crypto, pinned, userId, d.deviceId, d.ikPub, d.deviceCert)) devices.push({ id: d.deviceId, ik: toBase64url(d.ikPub) });
    }
    const contact: StoredContact = existing
      ? { ...existing, devices }
      : { userId, ak: toBase64url(account.akPub), verified: false, pinnedAt: ctx.now(), changedAk: null, devices };
    const ops: [string, Json | undefined][] = [[keys.contact(userId), contact as unknown as Json]];
    // Sessions with devices that are gone, or whose IK changed, are dropped (SPEC §7: removal is final).
    const before = new Map((existing?.devices ?? []).map((d) => [d.id, d.ik]));
    for (const [id, ik] of before) {
      const now = devices.find((d) => d.id === id);
      if (!now || now.ik !== ik) ops.push([keys.sessions(userId, id), undefined]);
    }
    await this.core.lock.run(() => kv.write(ops));
    return devices;
  }

  /** Throws KeyChangedError (after flagging the contact and telling the UI once) if `published` is not the pinned AK. */
  private async checkAccountKey(contact: StoredContact | null, published: Uint8Array): Promise<void> {
    if (!contact || equalBytes(fromBase64url(contact.ak), published)) return;
    if (contact.changedAk !== toBase64url(published)) {
      await this.core.kv.write([[keys.contact(contact.userId), { ...contact, changedAk: toBase64url(published) } as unknown as Json]]);
      this.core.events.fire('keyChange', { userId: contact.userId });
    }
    throw new KeyChangedError(contact.userId);
  }

  /** Cached devices of `userId`, fetched when unknown. */
  async devices(userId: string): Promise<PeerDevice[]> {
    const c = await this.contact(userId);
    if (c?.changedAk) throw new KeyChangedError(userId);
    return c?.devices ?? this.refreshDevices(userId);
  }

  /** Starts sessions with the devices of `userId` (in `ids`) that have none; into `batch`. */
  async ensureSessions(userId: string, ids: number[], batch: WriteBatch): Promise<void> {
    const store = this.protocolStore(batch);
    const missing: number[] = [];
    for (const id of ids) if (!(await store.loadSessions({ userId, deviceId: id })).length) missing.push(id);
    if (!missing.length) return;
    const { akPub, bundles } = await this.core.api.bundles(userId, missing);
    await this.checkAccountKey(await this.contact(userId), akPub);
    for (const b of bundles) {
      try {
        await startSession(this.core.ctx, store, this.core.self, b);
      } catch (e) {
        // A bundle that does not verify is skipped: that device gets no copy (and the server says so).
        if (!(e instanceof ProtocolError)) throw e;
      }
    }
  }

  async safetyNumber(userId: string): Promise<string> {
    const c = await this.contact(userId);
    if (!c) throw new UnknownUserError(userId);
    return displaySafetyNumber(safetyNumberOf({ akPub: this.core.self.akPub, userId: this.core.self.userId }, { akPub: fromBase64url(c.ak), userId }));
  }

  async markVerified(userId: string, verified = true): Promise<void> {
    const c = await this.contact(userId);
    if (!c) throw new UnknownUserError(userId);
    await this.core.kv.write([[keys.contact(userId), { ...c, verified } as unknown as Json]]);
  }

  /** The user accepts a contact's new AK: it becomes the pinned one, unverified; device list refetched. */
  async acceptKeyChange(userId: string): Promise<void> {
    const c = await this.contact(userId);
    if (!c?.changedAk) return;
    const ops: [string, Json | undefined][] = [[keys.contact(userId), { ...c, ak: c.changedAk, changedAk: null, verified: false, devices: [] } as unknown as Json]];
    for (const d of c.devices ?? []) ops.push([keys.sessions(userId, d.id), undefined]);
    await this.core.lock.run(() => this.core.kv.write(ops));
    await this.refreshDevices(userId);
  }
}
