/**
 * Key upkeep (SPEC §7), run at start and every hour: top up one-time prekeys, rotate the SPK and
 * last-resort PQPK every 7 days, delete private keys 30 days after their replacement together with
 * the replay records made under them, and note which one-time prekeys the server has handed out
 * (collect.ts deletes those later).
 */
import { noteServerState } from './collect.js';
import type { ClientCore } from './core.js';
import { expiredIds, makeUpkeepKeys, planUpkeep } from './device-keys.js';
import { keys, type PrekeyCounters, type StoredPqPrekey, type StoredPrekey } from './state.js';
import { type Json, WriteBatch } from './storage.js';

export async function runKeyUpkeep(core: ClientCore): Promise<{ uploadedOpks: number; uploadedPqpks: number; rotated: boolean }> {
  const { api, kv, ctx, self } = core;
  const status = await api.prekeyStatus(self.userId, self.deviceId);
  const result = await core.lock.run(async () => {
    const stored = (await kv.get(keys.counters)) as PrekeyCounters | undefined;
    if (!stored) throw new Error('device has no prekey counters');
    // Ids never go back, even if a past upload reached the server but our record of it did not.
    const counters: PrekeyCounters = {
      ...stored,
      nextSpkId: Math.max(stored.nextSpkId, status.maxIds.spk + 1),
      nextOpkId: Math.max(stored.nextOpkId, status.maxIds.opk + 1),
      nextPqpkId: Math.max(stored.nextPqpkId, status.maxIds.pqpk + 1),
    };
    const now = ctx.now();
    // What the server no longer holds, and its retention: collect.ts forgets those keys later.
    const noted = await noteServerState(kv, status, now);
    if (noted.length) await kv.write(noted);
    const plan = planUpkeep(counters, { opk: status.opks, pqpk: status.pqpks }, now);
    if (!plan.opks && !plan.pqpks && !plan.rotate) return { uploadedOpks: 0, uploadedPqpks: 0, rotated: false };
    const batch = new WriteBatch(kv);
    const upload = await makeUpkeepKeys(ctx.crypto, ctx.random, self.ik, counters, plan, batch, now);
    // Private halves are kept only once the server has the public ones.
    await api.uploadPrekeys(self.userId, self.deviceId, upload);
    await batch.flush();
    return { uploadedOpks: upload.opks.length, uploadedPqpks: upload.pqpks.filter((k) => k.oneTime).length, rotated: plan.rotate };
  });
  await expireOldKeys(core);
  return result;
}

async function expireOldKeys(core: ClientCore): Promise<void> {
  const { kv, ctx } = core;
  await core.lock.run(async () => {
    const now = ctx.now();
    const spks = (await kv.list(keys.spkPrefix)).map(([, v]) => v as unknown as StoredPrekey);
    const pqpks = (await kv.list(keys.pqpkPrefix)).map(([, v]) => v as unknown as StoredPqPrekey);
    const goneSpks = new Set(expiredIds(spks, now));
    const gonePqpks = expiredIds(pqpks, now);
    if (!goneSpks.size && !gonePqpks.length) return;
    const ops: [string, Json | undefined][] = [...[...goneSpks].map((id) => [keys.spk(id), undefined] as [string, undefined]), ...gonePqpks.map((id) => [keys.pqpk(id), undefined] as [string, undefined])];
    // SPEC §5: a replay record lives as long as the private key of the SPK it was made under.
    for (const [key, v] of await kv.list('handshakes/')) if (goneSpks.has((v as { spkId: number }).spkId)) ops.push([key, undefined]);
    await kv.write(ops);
  });
}

