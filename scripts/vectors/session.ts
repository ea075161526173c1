/** session.json: whole conversations (SPEC §3-§7), both as sender (bytes) and receiver (delivery order). */
import { fromHex, toHex, utf8, fromUtf8 } from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import type { LocalDevice, PreKeyBundle } from '../../src/protocol/handshake.js';
import { MemoryProtocolStore } from '../../src/protocol/memory-store.js';
import { defaultCrypto } from '../../src/protocol/primitives.js';
import { type DeviceAddress, type ProtocolContext, decryptMessage, encryptMessage, startSession } from '../../src/protocol/session.js';
import { TYPE_PREKEY, decodeMessage } from '../../src/protocol/wire.js';
import { ScriptedRandom } from './scripted-random.js';
import { type CaseResult, type TopicRunner, runEachCase } from './types.js';

type Hex = string;
interface PartyState {
  user_id: string;
  device_id: number;
  ak_pub: Hex;
  ik_seed: Hex;
  ik_pub: Hex;
  device_cert: Hex;
  spks: { id: number; priv: Hex; pub: Hex }[];
  opks: { id: number; priv: Hex; pub: Hex }[];
  pqpks: { id: number; seed: Hex; one_time: boolean }[];
  pinned_aks: { user_id: string; ak_pub: Hex }[];
}
interface BundleJson {
  user_id: string;
  device_id: number;
  ik_pub: Hex;
  device_cert: Hex;
  spk_id: number;
  spk_pub: Hex;
  spk_sig: Hex;
  opk_id: number | null;
  opk_pub: Hex | null;
  pqpk_id: number;
  pqpk_pub: Hex;
  pqpk_sig: Hex;
}
type Party = 'A' | 'B';
interface Step {
  op: 'start_session' | 'send' | 'lose' | 'deliver' | 'inject' | 'forget_session';
  party?: Party;
  from?: Party;
  to?: Party;
  inject_to?: Party;
  session?: string | null;
  expect?: 'ok' | 'reject';
  bundle?: BundleJson;
  ek_priv?: Hex;
  ek_pub?: Hex;
  ratchet_priv?: Hex;
  kem_encaps_m?: Hex | null;
  new_ratchet_priv?: Hex | null;
  plaintext_json?: string;
  type?: number;
  wire?: Hex;
  deliver?: number;
  lost_sends?: number;
  receiver_path?: string;
}
interface SessionCase {
  name: string;
  initial_state: { alice: PartyState; bob: PartyState };
  steps: Step[];
}

interface Device {
  self: LocalDevice;
  store: MemoryProtocolStore;
  rng: ScriptedRandom;
  ctx: ProtocolContext;
}

const crypto = defaultCrypto();
const NOW = 1_767_225_600_000;

function makeDevice(p: PartyState): Device {
  const store = new MemoryProtocolStore();
  for (const k of p.spks) store.signedPrekeys.set(k.id, { privateKey: fromHex(k.priv), publicKey: fromHex(k.pub) });
  for (const k of p.opks) store.oneTimePrekeys.set(k.id, { privateKey: fromHex(k.priv), publicKey: fromHex(k.pub) });
  for (const k of p.pqpks) store.pqPrekeys.set(k.id, { seed: fromHex(k.seed), oneTime: k.one_time });
  for (const a of p.pinned_aks) store.pinnedAccountKeys.set(a.user_id, fromHex(a.ak_pub));
  const rng = new ScriptedRandom();
  return {
    self: { userId: p.user_id, deviceId: p.device_id, ik: { seed: fromHex(p.ik_seed), publicKey: fromHex(p.ik_pub) }, akPub: fromHex(p.ak_pub), deviceCert: fromHex(p.device_cert) },
    store,
    rng,
    ctx: { crypto, random: rng.source, now: () => NOW },
  };
}

function bundleOf(b: BundleJson): PreKeyBundle {
  return {
    userId: b.user_id,
    deviceId: b.device_id,
    ikPub: fromHex(b.ik_pub),
    deviceCert: fromHex(b.device_cert),
    spkId: b.spk_id,
    spkPub: fromHex(b.spk_pub),
    spkSig: fromHex(b.spk_sig),
    opkId: b.opk_id,
    opkPub: b.opk_pub === null ? null : fromHex(b.opk_pub),
    pqpkId: b.pqpk_id,
    pqpkPub: fromHex(b.pqpk_pub),
    pqpkSig: fromHex(b.pqpk_sig),
  };
}

const address = (d: Device): DeviceAddress => ({ userId: d.self.userId, deviceId: d.self.deviceId });

/** The sender a transport would name: the other party, or the name a prekey message carries. */
function envelopeSender(wire: Uint8Array, other: Device): DeviceAddress {
  try {
    const m = decodeMessage(wire);
    if (m.type === TYPE_PREKEY) return { userId: m.handshake!.senderUserId, deviceId: m.handshake!.senderDeviceId };
  } catch {
    // undecodable: the receiver refuses it anyway
  }
  return address(other);
}

async function runCase(v: SessionCase): Promise<CaseResult> {
  const parties: Record<Party, Device> = { A: makeDevice(v.initial_state.alice), B: makeDevice(v.initial_state.bob) };
  const other = (p: Party): Device => parties[p === 'A' ? 'B' : 'A'];
  const labels = new Map<string, string>();
  const label = (id: string): string => [...labels].find(([, v]) => v === id)?.[0] ?? '?';
  const fail = (i: number, detail: string): CaseResult => ({ name: v.name, ok: false, detail: `step ${i}: ${detail}` });

  for (const [i, s] of v.steps.entries()) {
    if (s.op === 'start_session') {
      const d = parties[s.party!];
      d.rng.script(fromHex(s.ek_priv ?? ''), s.kem_encaps_m ? fromHex(s.kem_encaps_m) : null, s.ratchet_priv ? fromHex(s.ratchet_priv) : null);
      if (s.expect === 'reject') {
        const before = d.store.dump();
        try {
          await startSession(d.ctx, d.store, d.self, bundleOf(s.bundle!));
          return fail(i, 'bundle accepted, must be refused');
        } catch (e) {
          if (!(e instanceof ProtocolError)) return fail(i, `threw ${(e as Error).message}`);
        }
        if (d.store.dump() !== before) return fail(i, 'state changed by a refused bundle');
        continue;
      }
      const id = await startSession(d.ctx, d.store, d.self, bundleOf(s.bundle!));
      if (id !== toHex(d.self.ik.publicKey) + s.ek_pub) return fail(i, 'session not made with the given EK');
      labels.set(s.session!, id);
    } else if (s.op === 'send') {
      const d = parties[s.from!];
      d.rng.script(s.new_ratchet_priv ? fromHex(s.new_ratchet_priv) : null);
      const r = await encryptMessage(d.ctx, d.store, address(other(s.from!)), utf8(s.plaintext_json!));
      if (d.rng.pending) return fail(i, 'new_ratchet_priv not drawn by this send');
      if (labels.get(s.session!) !== r.sessionId) return fail(i, `sent on ${label(r.sessionId)}, expected ${s.session}`);
      if (r.type !== s.type) return fail(i, `type ${r.type}, expected ${s.type}`);
      if (toHex(r.wire) !== s.wire) return fail(i, 'wire bytes differ');
    } else if (s.op === 'lose') {
      const d = parties[s.from!];
      d.rng.script();
      for (let k = 0; k < s.lost_sends!; k++) await encryptMessage(d.ctx, d.store, address(other(s.from!)), utf8('{"v":1}'));
    } else if (s.op === 'forget_session') {
      const d = parties[s.party!];
      d.store.forgetSession(address(other(s.party!)), labels.get(s.session!)!);
    } else {
      const to = s.op === 'deliver' ? s.to! : s.inject_to!;
      const d = parties[to];
      const wire = fromHex(s.op === 'deliver' ? v.steps[s.deliver!]!.wire! : s.wire!);
      d.rng.script();
      const before = d.store.dump();
      let result;
      try {
        result = await decryptMessage(d.ctx, d.store, d.self, envelopeSender(wire, other(to)), wire);
      } catch (e) {
        if (!(e instanceof ProtocolError)) return fail(i, `threw ${(e as Error).name}: ${(e as Error).message}`);
        if (s.expect === 'ok') return fail(i, `refused (${e.code}: ${e.message})`);
        if (d.store.dump() !== before) return fail(i, 'state changed by a refused message');
        continue;
      }
      if (s.expect === 'reject') return fail(i, 'accepted, must be refused');
      if (fromUtf8(result.plaintext) !== s.plaintext_json) return fail(i, 'plaintext differs');
      if (labels.get(s.session!) !== result.sessionId) return fail(i, `decrypted in ${label(result.sessionId)}, expected ${s.session}`);
      if (result.path !== s.receiver_path) return fail(i, `path ${result.path}, expected ${s.receiver_path}`);
    }
  }
  return { name: v.name, ok: true };
}

export const run: TopicRunner = (file) => runEachCase<SessionCase>(file, runCase);
