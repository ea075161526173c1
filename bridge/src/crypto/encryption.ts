/**
 * End-to-bridge encryption with crypto-wasm: one OlmMachine per ghost that sends or receives
 * encrypted events, each with its own device (MSC4190, created by the appservice). Fed by the
 * appservice transactions' unstable fields (MSC2409 to-device, MSC3202 device lists and key
 * counts); its requests go to the homeserver as that ghost's device. Every call finishes before
 * the transaction is answered.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as wasm from '@matrix-org/matrix-sdk-crypto-wasm';
import type { MatrixEvent, RoomEncryption } from '../bridge.js';
import type { BridgeDb } from '../db.js';
import type { Logger } from '../log.js';
import type { MatrixApi } from '../matrix/api.js';
import type { Transaction } from '../matrix/transactions.js';
import { SerialQueues } from '../serial.js';
import { openCryptoStore } from './store.js';

export interface Encryption extends RoomEncryption {
  onTransaction(txn: Transaction): Promise<void>;
  /** Resolves when every crypto state change so far is on disk (at once when there is none). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

type ToDevice = { type: string; sender: string; to_user_id?: string; to_device_id?: string; content: unknown };

const enc = (s: string) => encodeURIComponent(s);

export async function startEncryption(opts: { dataDir: string; secretsKey: Buffer; db: BridgeDb; api: MatrixApi; log: Logger }): Promise<Encryption> {
  const { db, api, log } = opts;
  // The globals first: crypto-wasm binds to the IndexedDB classes it finds when it initialises.
  const store = await openCryptoStore(join(opts.dataDir, 'crypto'));
  await wasm.initAsync();
  // A raw 32-byte store key (derived from the bridge's secrets key) instead of a passphrase:
  // no PBKDF2 per ghost on every start.
  const storeKey = new Uint8Array(hkdfSync('sha256', opts.secretsKey, Buffer.alloc(0), 'gchat-bridge crypto store', 32));
  const machines = new Map<string, { machine: wasm.OlmMachine; deviceId: string }>();
  const opening = new Map<string, Promise<{ machine: wasm.OlmMachine; deviceId: string }>>();
  const queues = new SerialQueues();

  async function send(userId: string, deviceId: string, req: wasm.OutgoingRequest | wasm.ToDeviceRequest): Promise<void> {
    const as = { userId, deviceId };
    // What the request carries (one-time keys, ratchet state) must be on disk before it leaves.
    await store.flush();
    let res: unknown;
    const R = wasm.RequestType;
    switch (req.type) {
      case R.KeysUpload:
        res = await api.request('POST', '/_matrix/client/v3/keys/upload', { ...as, body: req.body });
        break;
      case R.KeysQuery:
        res = await api.request('POST', '/_matrix/client/v3/keys/query', { ...as, body: req.body });
        break;
      case R.KeysClaim:
        res = await api.request('POST', '/_matrix/client/v3/keys/claim', { ...as, body: req.body });
        break;
      case R.ToDevice: {
        const r = req as wasm.ToDeviceRequest;
        res = await api.request('PUT', `/_matrix/client/v3/sendToDevice/${enc(r.event_type)}/${enc(r.txn_id)}`, { ...as, body: r.body });
        break;
      }
      case R.SignatureUpload:
        res = await api.request('POST', '/_matrix/client/v3/keys/signatures/upload', { ...as, body: req.body });
        break;
      case R.RoomMessage: {
        const r = req as wasm.RoomMessageRequest;
        res = await api.request('PUT', `/_matrix/client/v3/rooms/${enc(r.room_id)}/send/${enc(r.event_type)}/${enc(r.txn_id)}`, { ...as, body: r.body });
        break;
      }
      default:
        return; // key backup: the bridge keeps no server-side backup
    }
    await (machines.get(userId)?.machine ?? (await opening.get(userId))!.machine).markRequestAsSent(req.id!, req.type, JSON.stringify(res));
  }

  async function flushOutgoing(userId: string, m: { machine: wasm.OlmMachine; deviceId: string }): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const reqs = await m.machine.outgoingRequests();
      if (!reqs.length) return;
      for (const r of reqs) await send(userId, m.deviceId, r);
    }
  }

  async function open(userId: string): Promise<{ machine: wasm.OlmMachine; deviceId: string }> {
    const [row] = await db.query<{ crypto_device: string | null }>('SELECT crypto_device FROM ghost_devices WHERE user_id = $1', [userId]);
    const storeName = (d: string) => `gchat-bridge:${userId}:${d}`;
    let deviceId = row?.crypto_device ?? null;
    if (deviceId && !store.durable) {
      // The in-memory store lost this device's keys: a new device (the old one is deleted below).
      deviceId = null;
    }
    const fresh = !deviceId;
    if (!deviceId) deviceId = `GCHAT${randomBytes(5).toString('hex').toUpperCase()}`;
    await api.ensureDevice(userId, deviceId, 'GChat bridge');
    const handle = await wasm.StoreHandle.openWithKey(storeName(deviceId), storeKey);
    const machine = await wasm.OlmMachine.initFromStore(new wasm.UserId(userId), new wasm.DeviceId(deviceId), handle);
    handle.free();
    const m = { machine, deviceId };
    machines.set(userId, m);
    if (fresh) {
      const old = row?.crypto_device;
      await db.query('UPDATE ghost_devices SET crypto_device = $2 WHERE user_id = $1', [userId, deviceId]);
      if (old) await api.request('DELETE', `/_matrix/client/v3/devices/${enc(old)}`, { userId, body: {} }).catch(() => undefined);
    }
    await flushOutgoing(userId, m);
    log.info({ ghost: userId, deviceId }, 'ghost device ready');
    return m;
  }

  async function feed(
    userId: string,
    m: { machine: wasm.OlmMachine; deviceId: string },
    events: ToDevice[],
    lists: { changed?: string[]; left?: string[] },
    counts: Record<string, number> | undefined,
    fallback: string[] | undefined,
  ): Promise<void> {
    const changed = (lists.changed ?? []).map((u) => new wasm.UserId(u));
    const left = (lists.left ?? []).map((u) => new wasm.UserId(u));
    const processed = await m.machine.receiveSyncChanges(
      JSON.stringify(events.map(({ to_user_id: _u, to_device_id: _d, ...e }) => e)),
      new wasm.DeviceLists(changed, left),
      new Map(Object.entries(counts ?? {})),
      fallback ? new Set(fallback) : undefined,
    );
    if (processed.length) {
      // Type names and, for a failure, wasm's reason code (never the event: it may carry keys).
      const what = processed.map((p) => (p.type === wasm.ProcessedToDeviceEventType.UnableToDecrypt ? `unable_to_decrypt:${(p as wasm.UTDToDeviceEvent).utdInfo.reason}` : wasm.ProcessedToDeviceEventType[p.type]));
      log.debug({ ghost: userId, processed: what }, 'to-device processed');
    }
    await flushOutgoing(userId, m);
  }

  // The ghost device's own /sync position (to-device only): Synapse keeps in the device inbox what
  // it could not hand over in a transaction, and deletes up to a position once we sync past it.
  const syncSince = new Map<string, string>();
  const lastCatchUp = new Map<string, number>();
  // Per ghost, the key counts it was last fed (bounded by the ghosts with a machine).
  const lastKeyState = new Map<string, string>();
  const TO_DEVICE_ONLY = JSON.stringify({ room: { rooms: [] }, presence: { types: [] }, account_data: { types: [] } });

  function machineOf(userId: string): Promise<{ machine: wasm.OlmMachine; deviceId: string }> {
    const m = machines.get(userId);
    if (m) return Promise.resolve(m);
    let p = opening.get(userId);
    if (!p) {
      p = open(userId).finally(() => opening.delete(userId));
      opening.set(userId, p);
    }
    return p;
  }

  // Ghosts with a device from an earlier run: their to-device traffic must find a machine.
  for (const r of await db.query<{ user_id: string }>('SELECT user_id FROM ghost_devices WHERE crypto_device IS NOT NULL')) await machineOf(r.user_id);

  return {
    async prepareGhost(ghostId) {
      await queues.run(ghostId, async () => void (await machineOf(ghostId)));
    },
    deviceOf: (ghostId: string) => machines.get(ghostId)?.deviceId ?? null,

    async catchUpToDevice(ghostId) {
      if (Date.now() - (lastCatchUp.get(ghostId) ?? 0) < 4_000) return;
      lastCatchUp.set(ghostId, Date.now());
      await queues.run(ghostId, async () => {
        const m = await machineOf(ghostId);
        for (let page = 0; page < 20; page++) {
          const since = syncSince.get(ghostId);
          const res = await api.request<{ next_batch: string; to_device?: { events?: ToDevice[] }; device_one_time_keys_count?: Record<string, number>; device_unused_fallback_key_types?: string[] }>('GET', '/_matrix/client/v3/sync', {
            userId: ghostId,
            deviceId: m.deviceId,
            query: { filter: TO_DEVICE_ONLY, timeout: '0', ...(since ? { since } : {}) },
          });
          const events = res.to_device?.events ?? [];
          if (events.length) log.debug({ ghost: ghostId, toDevice: events.map((e) => e.type) }, 'to-device events from the device inbox');
          await feed(ghostId, m, events, {}, res.device_one_time_keys_count, res.device_unused_fallback_key_types);
          await store.flush();
          syncSince.set(ghostId, res.next_batch);
          if (!events.length) break;
        }
      });
    },

    async onTransaction(txn) {
      const toDevice = (txn['de.sorunome.msc2409.to_device'] ?? []) as ToDevice[];
      const lists = txn['org.matrix.msc3202.device_lists'] ?? {};
      const counts = txn['org.matrix.msc3202.device_one_time_keys_count'] ?? {};
      const fallback = txn['org.matrix.msc3202.device_unused_fallback_key_types'] ?? {};
      if (toDevice.length) log.debug({ toDevice: toDevice.map((e) => `${e.type}>${e.to_user_id}/${e.to_device_id}`) }, 'to-device events');
      const users = new Set<string>([...toDevice.map((e) => e.to_user_id ?? ''), ...Object.keys(counts), ...Object.keys(fallback)]);
      const listsChanged = (lists.changed?.length ?? 0) + (lists.left?.length ?? 0) > 0;
      if (listsChanged) for (const u of machines.keys()) users.add(u);
      let fed = false;
      for (const userId of users) {
        if (!machines.has(userId) && !opening.has(userId)) continue; // not a ghost with a device
        await queues.run(userId, async () => {
          const m = await machineOf(userId);
          const mine = toDevice.filter((e) => e.to_user_id === userId && (!e.to_device_id || e.to_device_id === m.deviceId || e.to_device_id === '*'));
          // Synapse repeats every ghost's key counts in each transaction of its rooms: a machine with
          // no to-device event, no device-list change and the counts it was last given has nothing to
          // learn (feeding it anyway costs a store write and an fsync per ghost per transaction).
          const keyState = JSON.stringify([counts[userId]?.[m.deviceId] ?? null, fallback[userId]?.[m.deviceId] ?? null]);
          if (!mine.length && !listsChanged && lastKeyState.get(userId) === keyState) return;
          await feed(userId, m, mine, lists, counts[userId]?.[m.deviceId], fallback[userId]?.[m.deviceId]);
          lastKeyState.set(userId, keyState);
          fed = true;
        });
      }
      if (fed) await store.flush();
    },

    async encrypt(ghostId, roomId, members, type, content) {
      return queues.run(ghostId, async () => {
        const m = await machineOf(ghostId);
        // wasm-bindgen takes ownership of the ids passed in: fresh ones for every call.
        const users = () => [...new Set(members)].map((u) => new wasm.UserId(u));
        await m.machine.updateTrackedUsers(users());
        await flushOutgoing(ghostId, m);
        const claim = await m.machine.getMissingSessions(users());
        if (claim) await send(ghostId, m.deviceId, claim);
        for (const r of await m.machine.shareRoomKey(new wasm.RoomId(roomId), users(), new wasm.EncryptionSettings())) await send(ghostId, m.deviceId, r);
        const out = JSON.parse(await m.machine.encryptRoomEvent(new wasm.RoomId(roomId), type, JSON.stringify(content))) as Record<string, unknown>;
        await flushOutgoing(ghostId, m);
        await store.flush();
        return out;
      });
    },

    async decrypt(ghostId, event: MatrixEvent) {
      return queues.run(ghostId, async () => {
        const m = await machineOf(ghostId);
        try {
          const r = await m.machine.decryptRoomEvent(JSON.stringify(event), new wasm.RoomId(event.room_id), new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted));
          const clear = JSON.parse(r.event) as { type: string; content: Record<string, unknown> };
          // Clients may keep m.relates_to only on the cleartext wrapper (edits, replies): keep it.
          const relates = clear.content['m.relates_to'] ?? event.content['m.relates_to'];
          return { ...event, type: clear.type, content: { ...clear.content, ...(relates ? { 'm.relates_to': relates } : {}) } };
        } catch (e) {
          log.warn({ room: event.room_id, event: event.event_id, reason: String((e as Error).message ?? e), code: (e as { code?: unknown }).code, description: (e as { description?: unknown }).description }, 'could not decrypt');
          return null;
        }
      });
    },

    flush: () => store.flush(),

    async close() {
      await queues.idle();
      for (const m of machines.values()) m.machine.close();
      machines.clear();
      await store.close();
    },
  };
}
