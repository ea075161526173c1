/** x3dh.json: both sides of SPEC §3, with the vector's randomness. */
import { fromHex, toHex } from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { type LocalDevice, initiate, respond } from '../../src/protocol/handshake.js';
import { defaultCrypto } from '../../src/protocol/primitives.js';
import { ScriptedRandom } from './scripted-random.js';
import { type CaseResult, type TopicRunner, runEachCase } from './types.js';

type Hex = string;
interface Party {
  user_id: string;
  device_id: number;
  ik_seed: Hex;
  ik_pub: Hex;
}
interface Initiator extends Party {
  ek_priv: Hex | null;
  ek_pub: Hex;
  kem_encaps_m: Hex | null;
  kem_ct: Hex | null;
  kem_ss: Hex | null;
}
interface Responder extends Party {
  spk_priv: Hex | null;
  spk_pub: Hex;
  opk_priv: Hex | null;
  opk_pub: Hex | null;
  pqpk_seed: Hex | null;
  pqpk_pub: Hex;
}
interface X3dhCase {
  name: string;
  expect: 'ok' | 'reject';
  side?: 'initiator' | 'responder';
  initiator: Initiator;
  responder: Responder;
  expected?: { sk: Hex; ad: Hex };
}

const c = defaultCrypto();
const h = (x: Hex | null): Uint8Array | null => (x === null ? null : fromHex(x));

function device(p: Party): LocalDevice {
  return { userId: p.user_id, deviceId: p.device_id, ik: { seed: fromHex(p.ik_seed), publicKey: fromHex(p.ik_pub) }, akPub: new Uint8Array(32), deviceCert: new Uint8Array(64) };
}

async function rejects(f: () => Promise<unknown>): Promise<string | null> {
  try {
    await f();
    return 'accepted';
  } catch (e) {
    return e instanceof ProtocolError ? null : `threw ${(e as Error).name}: ${(e as Error).message}`;
  }
}

async function runCase(v: X3dhCase): Promise<CaseResult> {
  const A = device(v.initiator);
  const B = device(v.responder);
  const rng = new ScriptedRandom();
  const bundle = {
    userId: B.userId,
    deviceId: B.deviceId,
    ikPub: B.ik.publicKey,
    deviceCert: new Uint8Array(64),
    spkId: 1,
    spkPub: fromHex(v.responder.spk_pub),
    spkSig: new Uint8Array(64),
    opkId: v.responder.opk_pub ? 2 : null,
    opkPub: h(v.responder.opk_pub),
    pqpkId: 3,
    pqpkPub: fromHex(v.responder.pqpk_pub),
    pqpkSig: new Uint8Array(64),
  };
  const doInitiate = () => {
    rng.script(h(v.initiator.ek_priv), h(v.initiator.kem_encaps_m));
    return initiate(c, rng.source, A, bundle);
  };
  const doRespond = () =>
    respond(
      c,
      B,
      { userId: A.userId, deviceId: A.deviceId, ikPub: A.ik.publicKey, ekPub: fromHex(v.initiator.ek_pub), kemCt: fromHex(v.initiator.kem_ct!) },
      {
        spk: { privateKey: fromHex(v.responder.spk_priv!), publicKey: bundle.spkPub },
        opk: v.responder.opk_priv ? { privateKey: fromHex(v.responder.opk_priv), publicKey: bundle.opkPub! } : null,
        pqpkSeed: fromHex(v.responder.pqpk_seed!),
      },
    );
  if (v.expect === 'reject') {
    const why = await rejects(v.side === 'responder' ? doRespond : doInitiate);
    return why ? { name: v.name, ok: false, detail: `${v.side} must refuse: ${why}` } : { name: v.name, ok: true };
  }
  const a = await doInitiate();
  const b = await doRespond();
  const want = v.expected!;
  const problems = [
    toHex(a.sk) !== want.sk && 'initiator SK',
    toHex(a.ad) !== want.ad && 'initiator AD',
    toHex(a.kemCt) !== v.initiator.kem_ct && 'kem_ct from kem_encaps_m',
    toHex(b.sk) !== want.sk && 'responder SK',
    toHex(b.ad) !== want.ad && 'responder AD',
  ].filter(Boolean);
  return problems.length ? { name: v.name, ok: false, detail: `differs: ${problems.join(', ')}` } : { name: v.name, ok: true };
}

export const run: TopicRunner = (file) => runEachCase<X3dhCase>(file, runCase);
