/**
 * Bundles the server (src/server/main.ts and what it imports of ours) into dist/server/main.mjs
 * for `npm start` to run under plain node. Packages stay external (resolved from node_modules at
 * run time). Why: tsx's loader thread costs about 40 MB of RSS on Node 20 before any socket is
 * open (bench:relay's idle phases print both). The output sits two folders deep like its source,
 * so paths the server finds from import.meta.dirname (web/dist) resolve the same. Tests run the
 * TypeScript through tsx.
 */
import { build } from 'esbuild';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..');
export const SERVER_BUNDLE = path.join(root, 'dist/server/main.mjs');

export async function buildServer(): Promise<string> {
  await build({
    entryPoints: [path.join(root, 'src/server/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: SERVER_BUNDLE,
    logLevel: 'warning',
  });
  return SERVER_BUNDLE;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) await buildServer();
