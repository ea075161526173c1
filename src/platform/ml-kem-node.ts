/**
 * Node's ML-KEM-768: the WebAssembly build that the `pqclean` package ships, read from
 * node_modules and compiled once, on first use (a few milliseconds), so that importing the provider
 * costs nothing for code that never runs a handshake.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { MlKem768 } from '../protocol/primitives.js';
import { mlKem768FromModule } from './ml-kem-wasm.js';

/** Where the module lies; exported for the benchmark, which bundles the same bytes for Chromium. */
export function pqcleanWasmPath(): string {
  return createRequire(import.meta.url).resolve('pqclean/wasm/gen/pqclean.wasm');
}

let kem: MlKem768 | undefined;

/** The process's one instance (synchronous compile: Node allows it for modules of any size). */
export function nodeMlKem768(): MlKem768 {
  return (kem ??= mlKem768FromModule(new WebAssembly.Module(readFileSync(pqcleanWasmPath()))));
}
