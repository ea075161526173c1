import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pqcleanWasmPath } from '../../src/platform/ml-kem-node.js';
import { instantiateMlKem768, mlKem768FromModule } from '../../src/platform/ml-kem-wasm.js';
import { nodeCryptoProvider } from '../../src/platform/node-crypto.js';
import { type LocalDevice, initiate, respond } from '../../src/protocol/handshake.js';
import { type MlKem768, nobleMlKem768 } from '../../src/protocol/primitives.js';

const bytes = readFileSync(pqcleanWasmPath());
const wasm = mlKem768FromModule(new WebAssembly.Module(bytes));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const seed64 = fc.uint8Array({ minLength: 64, maxLength: 64 });
const m32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

interface X3dhVector {
  name: string;
  expect: string;
  initiator: { user_id: string; device_id: number; ik_seed: string; ik_pub: string; ek_priv: string | null; ek_pub: string; kem_encaps_m: string | null; kem_ct: string | null; kem_ss: string | null };
  responder: { user_id: string; device_id: number; ik_seed: string; ik_pub: string; spk_priv: string | null; spk_pub: string; opk_priv: string | null; opk_pub: string | null; pqpk_seed: string | null; pqpk_pub: string };
  expected?: { sk: string; ad: string };
}
const x3dh = (JSON.parse(readFileSync(join(import.meta.dirname, '../vectors/x3dh.json'), 'utf8')) as { cases: X3dhVector[] }).cases;

describe('ML-KEM-768 in WebAssembly (PQClean) gives the bytes of @noble/post-quantum', () => {
  it.each(x3dh.filter((v) => v.responder.pqpk_seed && v.initiator.kem_encaps_m && v.initiator.kem_ct))('x3dh.json %s: key, ciphertext and secret', async (v) => {
    const seed = unhex(v.responder.pqpk_seed!);
    expect(hex(await wasm.publicKey(seed))).toBe(v.responder.pqpk_pub);
    const { ct, ss } = await wasm.encapsulate(unhex(v.responder.pqpk_pub), unhex(v.initiator.kem_encaps_m!));
    expect(hex(ct)).toBe(v.initiator.kem_ct);
    if (v.initiator.kem_ss) expect(hex(ss)).toBe(v.initiator.kem_ss);
    expect(hex(await wasm.decapsulate(seed, ct))).toBe(hex(ss));
  });

  it.each(x3dh.filter((v) => v.expect === 'ok'))('x3dh.json %s: both sides reach the vector SK with the Node provider', async (v) => {
    const dev = (p: X3dhVector['initiator'] | X3dhVector['responder']): LocalDevice => ({
      userId: p.user_id,
      deviceId: p.device_id,
      ik: { seed: unhex(p.ik_seed), publicKey: unhex(p.ik_pub) },
      akPub: new Uint8Array(32),
      deviceCert: new Uint8Array(64),
    });
    const r = v.responder;
    const script = [unhex(v.initiator.ek_priv!), unhex(v.initiator.kem_encaps_m!)];
    const bundle = {
      userId: r.user_id, deviceId: r.device_id, ikPub: unhex(r.ik_pub), deviceCert: new Uint8Array(64), spkId: 1, spkPub: unhex(r.spk_pub), spkSig: new Uint8Array(64),
      opkId: r.opk_pub ? 2 : null, opkPub: r.opk_pub ? unhex(r.opk_pub) : null, pqpkId: 3, pqpkPub: unhex(r.pqpk_pub), pqpkSig: new Uint8Array(64),
    };
    const a = await initiate(nodeCryptoProvider, () => script.shift()!, dev(v.initiator), bundle);
    const b = await respond(nodeCryptoProvider, dev(r), { userId: v.initiator.user_id, deviceId: v.initiator.device_id, ikPub: unhex(v.initiator.ik_pub), ekPub: a.ekPub, kemCt: a.kemCt }, {
      spk: { privateKey: unhex(r.spk_priv!), publicKey: bundle.spkPub },
      opk: r.opk_priv ? { privateKey: unhex(r.opk_priv), publicKey: bundle.opkPub! } : null,
      pqpkSeed: unhex(r.pqpk_seed!),
    });
    expect(hex(a.kemCt)).toBe(v.initiator.kem_ct);
    expect([hex(a.sk), hex(b.sk)]).toEqual([v.expected!.sk, v.expected!.sk]);
  });

  it('on random seeds and randomness, including ciphertexts that fail (implicit rejection)', async () => {
    await fc.assert(
      fc.asyncProperty(seed64, m32, fc.uint8Array({ minLength: 1088, maxLength: 1088 }), async (seed, m, junk) => {
        const all = async (k: MlKem768) => {
          const pk = await k.publicKey(seed);
          const { ct, ss } = await k.encapsulate(pk, m);
          return [pk, ct, ss, await k.decapsulate(seed, ct), await k.decapsulate(seed, junk)].map(hex);
        };
        const w = await all(wasm);
        expect(w).toEqual(await all(nobleMlKem768));
        expect(w[3]).toBe(w[2]);
        expect(w[4]).not.toBe(w[2]);
      }),
      { numRuns: 40 },
    );
  });

  it('instantiates asynchronously too (the browser path), with the same output', async () => {
    const kem = await instantiateMlKem768(bytes);
    const seed = new Uint8Array(64).fill(9);
    expect(hex(await kem.publicKey(seed))).toBe(hex(await nobleMlKem768.publicKey(seed)));
  });

  it('refuses inputs of the wrong size', async () => {
    await expect(wasm.publicKey(new Uint8Array(63))).rejects.toThrow(RangeError);
    await expect(wasm.encapsulate(new Uint8Array(1183), new Uint8Array(32))).rejects.toThrow(RangeError);
    await expect(wasm.decapsulate(new Uint8Array(64), new Uint8Array(1087))).rejects.toThrow(RangeError);
  });
});
