/**
 * The web client's crypto: the browser's WebCrypto, with ML-KEM-768 in PQClean's WebAssembly
 * (about ten times faster than the JavaScript one, the same bytes; src/platform/ml-kem-wasm.ts).
 * The module is a separate file of the build (the service worker caches it with the shell),
 * fetched on the first KEM operation; should it fail to load, the JavaScript one is used.
 */
import wasmUrl from 'pqclean/wasm/gen/pqclean.wasm';
import { instantiateMlKem768, lazyMlKem768 } from '../../src/platform/ml-kem-wasm.js';
import { type CryptoProvider, type MlKem768, nobleMlKem768, webCryptoProvider } from '../../src/protocol/primitives.js';

async function load(): Promise<MlKem768> {
  try {
    const res = await fetch(wasmUrl);
    if (!res.ok) throw new Error(`${res.status}`);
    return await instantiateMlKem768(await res.arrayBuffer());
  } catch {
    return nobleMlKem768;
  }
}

export function webCrypto(): CryptoProvider {
  return { ...webCryptoProvider(), mlKem768: lazyMlKem768(load) };
}
