import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The web client loads src/protocol unchanged in Chromium: nothing there may need Node.
const dir = join(import.meta.dirname, '../../src/protocol');
const nodeOnly = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

function importsOf(source: string): string[] {
  const specs: string[] = [];
  for (const m of source.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|require\s*\(\s*['"]([^'"]+)['"]\s*\)/g))
    specs.push((m[1] ?? m[2] ?? m[3])!);
  return specs;
}

describe('src/protocol is isomorphic', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

  it('has protocol modules to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)('%s imports no Node-only module and uses no Node global', (file) => {
    const source = readFileSync(join(dir, file), 'utf8');
    const bad = importsOf(source).filter((s) => nodeOnly.has(s) || s.startsWith('node:'));
    expect(bad).toEqual([]);
    expect(source).not.toMatch(/\bBuffer\b|\bprocess\.|__dirname|\brequire\(/);
  });

  it('imports only relative modules and browser-ready packages', () => {
    const allowed = /^(\.\/|@noble\/(curves|hashes|ciphers|post-quantum)\/|hash-wasm$|zod$)/;
    const all = files.flatMap((f) => importsOf(readFileSync(join(dir, f), 'utf8')));
    expect(all.filter((s) => !allowed.test(s))).toEqual([]);
  });

  it('the detector catches a Node import', () => {
    expect(importsOf(`import { x } from 'node:crypto';\nimport fs from "fs";`)).toEqual(['node:crypto', 'fs']);
  });
});
