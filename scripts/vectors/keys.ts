/**
 * SPEC §1, §2, §8 key vectors: Mont/MontPriv, the three signed structures (rebuilt from their
 * fields, signed and verified), and safety numbers (both orders).
 */
import { equalBytes, fromHex, utf8 } from '../../src/protocol/bytes.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { displaySafetyNumber, fingerprint, safetyNumber } from '../../src/protocol/fingerprint.js';
import { deviceCertBytes, pqpkSigBytes, spkSigBytes, verifyDeviceCert, verifyPqpk, verifySpk } from '../../src/protocol/keys.js';
import { type CryptoProvider, defaultCrypto, mont, montPriv, verifySignature } from '../../src/protocol/primitives.js';
import { type TopicRunner, runEachCase } from './types.js';

type Case = Record<string, unknown> & { name: string; kind: string };
type Check = (c: Case, crypto: CryptoProvider) => Promise<string | null>;

const hex = (c: Case, key: string): Uint8Array => fromHex(c[key] as string);

const montCase: Check = async (c, crypto) => {
  if (c['expect'] === 'reject') {
    try {
      mont(hex(c, 'ed_pub'));
      return 'Mont accepted ed_pub';
    } catch (e) {
      return e instanceof ProtocolError ? null : `Mont threw ${String(e)}, not a ProtocolError`;
    }
  }
  const seed = hex(c, 'seed');
  const edPub = await crypto.ed25519Public(seed);
  if (!equalBytes(edPub, hex(c, 'ed_pub'))) return 'seed gives another ed_pub';
  const u = mont(edPub);
  if (!equalBytes(u, hex(c, 'mont_pub'))) return 'Mont(ed_pub) differs from mont_pub';
  const priv = await montPriv(crypto, seed);
  if (!equalBytes(priv, hex(c, 'mont_priv'))) return 'MontPriv(seed) differs from mont_priv';
  if (!equalBytes(await crypto.x25519Public(priv), u)) return 'X25519 public key of mont_priv differs from mont_pub';
  return null;
};

/** Rebuilds signed_bytes, then: valid=true signs to signature and verifies; valid=false must not verify. */
function signedStructure(build: (c: Case) => Uint8Array, verify: (c: Case, crypto: CryptoProvider, sig: Uint8Array) => Promise<boolean>): Check {
  return async (c, crypto) => {
    const signed = build(c);
    if (!equalBytes(signed, hex(c, 'signed_bytes'))) return 'rebuilt signed_bytes differ';
    const signerPub = hex(c, 'signer_pub');
    const sig = hex(c, 'signature');
    if (c['signer_seed'] !== null && c['signer_seed'] !== undefined) {
      const seed = hex(c, 'signer_seed');
      if (!equalBytes(await crypto.ed25519Public(seed), signerPub)) return 'signer_seed gives another signer_pub';
      if (c['valid'] === true && !equalBytes(await crypto.ed25519Sign(seed, signed), sig)) return 'signing gave another signature';
    }
    const generic = await verifySignature(crypto, signerPub, signed, sig);
    const structural = await verify(c, crypto, sig);
    if (generic !== structural) return `verifySignature (${generic}) and the structure's verifier (${structural}) disagree`;
    if (c['valid'] === true && !structural) return 'valid signature refused';
    if (c['valid'] === false && structural) return 'invalid signature accepted';
    return null;
  };
}

const deviceCertCase = signedStructure(
  (c) => {
    if (!equalBytes(utf8(c['user_id'] as string), hex(c, 'user_id_utf8'))) throw new Error('user_id_utf8 is not the UTF-8 of user_id');
    return deviceCertBytes(c['user_id'] as string, c['device_id'] as number, hex(c, 'ik_pub'));
  },
  (c, crypto, sig) => verifyDeviceCert(crypto, hex(c, 'signer_pub'), c['user_id'] as string, c['device_id'] as number, hex(c, 'ik_pub'), sig),
);
const spkCase = signedStructure(
  (c) => spkSigBytes(c['spk_id'] as number, hex(c, 'spk_pub')),
  (c, crypto, sig) => verifySpk(crypto, hex(c, 'signer_pub'), c['spk_id'] as number, hex(c, 'spk_pub'), sig),
);
const pqpkCase = signedStructure(
  (c) => pqpkSigBytes(c['pqpk_id'] as number, hex(c, 'pqpk_pub')),
  (c, crypto, sig) => verifyPqpk(crypto, hex(c, 'signer_pub'), c['pqpk_id'] as number, hex(c, 'pqpk_pub'), sig),
);

interface Party {
  ak_pub: string;
  user_id: string;
  user_id_utf8: string;
}

const safetyNumberCase: Check = async (c) => {
  const a = c['a'] as Party;
  const b = c['b'] as Party;
  for (const p of [a, b]) if (!equalBytes(utf8(p.user_id), fromHex(p.user_id_utf8))) return 'user_id_utf8 is not the UTF-8 of user_id';
  const fa = fingerprint(fromHex(a.ak_pub), a.user_id);
  const fb = fingerprint(fromHex(b.ak_pub), b.user_id);
  if (fa !== c['fingerprint_a']) return `fingerprint_a: got ${fa}`;
  if (fb !== c['fingerprint_b']) return `fingerprint_b: got ${fb}`;
  const sn = safetyNumber(fa, fb);
  if (sn !== c['safety_number']) return `safety_number: got ${sn}`;
  if (safetyNumber(fb, fa) !== sn) return 'safety number depends on the order of the parties';
  if (displaySafetyNumber(sn) !== c['display']) return 'display form differs';
  return null;
};

const CHECKS: Record<string, Check> = {
  mont: montCase,
  device_cert: deviceCertCase,
  spk_sig: spkCase,
  pqpk_sig: pqpkCase,
  safety_number: safetyNumberCase,
};

export const run: TopicRunner = (file) => {
  const crypto = defaultCrypto();
  return runEachCase<Case>(file, async (c) => {
    const check = CHECKS[c.kind];
    if (!check) return { name: c.name, ok: false, detail: `unknown kind ${c.kind}` };
    const problem = await check(c, crypto);
    return problem === null ? { name: c.name, ok: true } : { name: c.name, ok: false, detail: problem };
  });
};
