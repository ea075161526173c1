/**
 * ML-KEM-768 on PQClean's reference C compiled to WebAssembly (the `pqclean` package's
 * wasm/gen/pqclean.wasm, MIT), about ten times faster than @noble/post-quantum in Node and in
 * Chromium, with the same bytes (test/platform/ml-kem-wasm.test.ts).
 *
 * That build exports only the randomised FIPS 203 entry points, but takes its randomness through
 * an import we supply: keypair asks once for 64 bytes (d || z) and enc once for 32 (m), so feeding
 * the caller's seed or m there is exactly KeyGen_internal / Encaps_internal. Any other request for
 * randomness is refused, so a build that drew differently fails loudly rather than silently
 * producing other keys.
 *
 * Isomorphic and without I/O: the caller hands in the module's bytes (Node reads them from
 * node_modules in ml-kem-node.ts; a browser bundles or fetches them).
 */
import type { MlKem768 } from '../protocol/primitives.js';

const PK = 1184;
const SK = 2400;
const CT = 1088;
const SS = 32;
const SEED = 64;
const M = 32;

interface PqcleanExports {
  readonly memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  PQCLEAN_MLKEM768_CLEAN_crypto_kem_keypair(pk: number, sk: number): number;
  PQCLEAN_MLKEM768_CLEAN_crypto_kem_enc(ct: number, ss: number, pk: number): number;
  PQCLEAN_MLKEM768_CLEAN_crypto_kem_dec(ss: number, ct: number, sk: number): number;
}

/** The one thing PQClean's code imports: its random source, here the bytes the caller passed. */
class FedRandomness {
  private pending: Uint8Array | null = null;
  memory: (() => Uint8Array) | null = null;

  /** Runs `f` with `bytes` as the only randomness it may draw, and checks it drew exactly them. */
  with<T>(bytes: Uint8Array | null, f: () => T): T {
    this.pending = bytes;
    try {
      const out = f();
      if (this.pending !== null) throw new Error('ml-kem-wasm: the module did not draw the randomness it was given');
      return out;
    } finally {
      this.pending = null;
    }
  }

  readonly imports: WebAssembly.Imports = {
    env: {
      PQCLEAN_randombytes: (ptr: number, n: number): void => {
        const b = this.pending;
        if (b === null || b.length !== n || !this.memory) throw new Error(`ml-kem-wasm: unexpected request for ${n} random bytes`);
        this.memory().set(b, ptr);
        this.pending = null;
      },
    },
    wasi_snapshot_preview1: {
      proc_exit: (code: number): never => {
        throw new Error(`ml-kem-wasm: module exited (${code})`);
      },
    },
  };
}

function isExports(x: WebAssembly.Exports): x is WebAssembly.Exports & PqcleanExports {
  return ['malloc', 'free', 'PQCLEAN_MLKEM768_CLEAN_crypto_kem_keypair', 'PQCLEAN_MLKEM768_CLEAN_crypto_kem_enc', 'PQCLEAN_MLKEM768_CLEAN_crypto_kem_dec'].every(
    (n) => typeof x[n] === 'function',
  ) && x.memory instanceof WebAssembly.Memory;
}

function wrap(instance: WebAssembly.Instance, rng: FedRandomness): MlKem768 {
  const x = instance.exports;
  if (!isExports(x)) throw new Error('ml-kem-wasm: not a PQClean build with ML-KEM-768');
  // One scratch area for every call (the module is single-threaded, and so is each call).
  const base = x.malloc(PK + SK + CT + SS);
  if (base === 0) throw new Error('ml-kem-wasm: out of memory');
  const pk = base;
  const sk = pk + PK;
  const ct = sk + SK;
  const ss = ct + CT;
  // The memory may grow (and its buffer be replaced) during a call: take a fresh view each time.
  const heap = (): Uint8Array => new Uint8Array(x.memory.buffer);
  rng.memory = heap;
  const wipeSecrets = (): void => {
    heap().fill(0, sk, sk + SK + CT + SS);
  };
  const check = (rc: number, what: string): void => {
    if (rc !== 0) throw new Error(`ml-kem-wasm: ${what} failed (${rc})`);
  };

  return {
    name: 'PQClean (WebAssembly)',
    async publicKey(seed) {
      if (seed.length !== SEED) throw new RangeError('seed must be 64 bytes');
      try {
        rng.with(seed, () => check(x.PQCLEAN_MLKEM768_CLEAN_crypto_kem_keypair(pk, sk), 'keypair'));
        return heap().slice(pk, pk + PK);
      } finally {
        wipeSecrets();
      }
    },
    async encapsulate(ek, m) {
      if (ek.length !== PK || m.length !== M) throw new RangeError('ek must be 1184 bytes and m 32');
      heap().set(ek, pk);
      try {
        rng.with(m, () => check(x.PQCLEAN_MLKEM768_CLEAN_crypto_kem_enc(ct, ss, pk), 'enc'));
        const h = heap();
        return { ct: h.slice(ct, ct + CT), ss: h.slice(ss, ss + SS) };
      } finally {
        wipeSecrets();
      }
    },
    async decapsulate(seed, c) {
      if (seed.length !== SEED || c.length !== CT) throw new RangeError('seed must be 64 bytes and ct 1088');
      try {
        rng.with(seed, () => check(x.PQCLEAN_MLKEM768_CLEAN_crypto_kem_keypair(pk, sk), 'keypair'));
        heap().set(c, ct);
        rng.with(null, () => check(x.PQCLEAN_MLKEM768_CLEAN_crypto_kem_dec(ss, ct, sk), 'dec'));
        return heap().slice(ss, ss + SS);
      } finally {
        wipeSecrets();
      }
    },
  };
}

/** From a compiled module, synchronously (Node; a browser's main thread refuses modules over 4 KB). */
export function mlKem768FromModule(module: WebAssembly.Module): MlKem768 {
  const rng = new FedRandomness();
  return wrap(new WebAssembly.Instance(module, rng.imports), rng);
}

/** From the module's bytes or a compiled module, asynchronously (anywhere, a browser included). */
export async function instantiateMlKem768(source: BufferSource | WebAssembly.Module): Promise<MlKem768> {
  const rng = new FedRandomness();
  const instance = source instanceof WebAssembly.Module ? await WebAssembly.instantiate(source, rng.imports) : (await WebAssembly.instantiate(source, rng.imports)).instance;
  return wrap(instance, rng);
}

/**
 * An MlKem768 that instantiates on first use, for providers that must exist before the module is
 * loaded (the browser fetches it; Node reads it only when a KEM operation is first needed).
 */
export function lazyMlKem768(load: () => Promise<MlKem768>): MlKem768 {
  let ready: Promise<MlKem768> | undefined;
  const kem = (): Promise<MlKem768> => (ready ??= load().catch((e: unknown) => {
    ready = undefined;
    throw e;
  }));
  return {
    name: 'PQClean (WebAssembly)',
    publicKey: async (seed) => (await kem()).publicKey(seed),
    encapsulate: async (ek, m) => (await kem()).encapsulate(ek, m),
    decapsulate: async (seed, ct) => (await kem()).decapsulate(seed, ct),
  };
}
