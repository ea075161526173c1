/**
 * The size budget: the JavaScript a browser loads before the first screen (the entry and the
 * chunks it imports statically), gzipped, crypto included, stays within 150 KB; Argon2id and the
 * QR code stay out of it (loaded on demand). A fresh build of web/, no browser needed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildInfo } from '../../scripts/build-web.js';
import { ensureBuilt } from './harness.js';

const BUDGET_BYTES = 150 * 1024;
const dist = join(import.meta.dirname, '../../web/dist');

describe('web client size budget', () => {
  let info: BuildInfo;
  beforeAll(async () => {
    await ensureBuilt();
    info = JSON.parse(readFileSync(join(dist, 'build.json'), 'utf8')) as BuildInfo;
  });

  it('first-screen JavaScript is at most 150 KB gzipped', () => {
    const gz = info.firstScreen.reduce((n, f) => n + gzipSync(readFileSync(join(dist, f)), { level: 9 }).length, 0);
    console.log(`first-screen JS: ${(gz / 1024).toFixed(1)} KB gzipped in ${info.firstScreen.length} files`);
    expect(gz).toBeGreaterThan(10 * 1024); // the SDK and the protocol are in it: a build that lost them is not small, it is broken
    expect(gz).toBeLessThanOrEqual(BUDGET_BYTES);
  });

  it('keeps Argon2id (hash-wasm) and the QR encoder out of the first screen', () => {
    const first = info.firstScreen.map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    const all = info.shell.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    // Inlined WebAssembly (hash-wasm's Argon2id and BLAKE2b) starts with "\0asm", base64 "AGFzbQ";
    // uqr's encoder names its module types ("Alignment", "Timing").
    for (const marker of ['AGFzbQ', '"Alignment"']) {
      expect(all).toContain(marker);
      expect(first).not.toContain(marker);
    }
  });
});
