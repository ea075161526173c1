/**
 * npm run build:web — bundles web/ (Preact, the client SDK and src/protocol) into web/dist, which
 * the server serves at `/`. Code splitting keeps what only the key backup needs (Argon2id) and the
 * QR code out of the first screen. `--if-stale` builds only when a source is newer than the build
 * (what `npm start` runs, so a fresh clone works with `npm install && npm start`).
 *
 * web/dist/build.json lists the first-screen files (the entry and the chunks it imports
 * statically): the size budget test and `npm run bench:web` read it.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { drawIcon } from './web/icons.js';

const root = join(import.meta.dirname, '..');
const web = join(root, 'web');
const dist = join(web, 'dist');
const SOURCES = [join(web, 'src'), join(web, 'public'), join(root, 'src/client'), join(root, 'src/protocol'), join(root, 'src/platform'), join(import.meta.dirname, 'build-web.ts'), join(import.meta.dirname, 'web')];

export interface BuildInfo {
  /** Paths under web/dist, e.g. "assets/main-AB12.js". */
  entry: string;
  css: string;
  /** The entry and every chunk it imports statically: what loads before the first screen. */
  firstScreen: string[];
  /** Every file of the app shell the service worker caches. */
  shell: string[];
  version: string;
}

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newestMtime(join(path, f))));
}

export function isStale(): boolean {
  const stamp = join(dist, 'build.json');
  if (!existsSync(stamp)) return true;
  return Math.max(...SOURCES.map(newestMtime)) > statSync(stamp).mtimeMs;
}

function staticClosure(meta: Metafile, entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const imp of meta.outputs[file]?.imports ?? []) if (imp.kind === 'import-statement') visit(imp.path);
  };
  visit(entry);
  return [...seen];
}

export async function buildWeb(): Promise<BuildInfo> {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: join(web, 'src/main.tsx') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: join(dist, 'assets'),
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    // ML-KEM's WebAssembly (web/src/kem.ts) stays a file of its own, fetched when first needed.
    loader: { '.wasm': 'file' },
    publicPath: '/assets',
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const meta = result.metafile;
  const rel = (p: string): string => relative(dist, join(root, p)).split('\\').join('/');
  const outputs = Object.keys(meta.outputs);
  const entryOut = outputs.find((o) => meta.outputs[o]!.entryPoint?.endsWith('web/src/main.tsx') && o.endsWith('.js'))!;
  const cssOut = meta.outputs[entryOut]!.cssBundle!;
  const firstScreen = staticClosure(meta, entryOut).map(rel);

  cpSync(join(web, 'public'), dist, { recursive: true });
  mkdirSync(join(dist, 'icons'), { recursive: true });
  writeFileSync(join(dist, 'icons/icon-192.png'), drawIcon(192, false));
  writeFileSync(join(dist, 'icons/icon-512.png'), drawIcon(512, false));
  writeFileSync(join(dist, 'icons/maskable-512.png'), drawIcon(512, true));

  const preload = firstScreen.filter((f) => f !== rel(entryOut)).map((f) => `<link rel="modulepreload" href="/${f}">`);
  const html = readFileSync(join(web, 'src/index.html'), 'utf8')
    .replace('<!--head-->', [`<link rel="stylesheet" href="/${rel(cssOut)}">`, ...preload, `<script type="module" src="/${rel(entryOut)}"></script>`].join('\n    '));
  writeFileSync(join(dist, 'index.html'), html);

  const listFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [relative(dist, join(dir, e.name)).split('\\').join('/')]));
  const shell = listFiles(dist).filter((f) => f !== 'sw.js' && f !== 'build.json');
  const version = createHash('sha256')
    .update(shell.map((f) => f + readFileSync(join(dist, f)).length).join())
    .update(html)
    .digest('hex')
    .slice(0, 16);
  // The service worker: its own bundle, at the root so it controls `/`, told the shell it caches.
  await build({
    absWorkingDir: root,
    entryPoints: [join(web, 'src/sw.ts')],
    bundle: true,
    format: 'iife',
    target: 'es2022',
    minify: true,
    outfile: join(dist, 'sw.js'),
    define: { __SHELL__: JSON.stringify(['/', ...shell.filter((f) => f !== 'index.html').map((f) => `/${f}`)]), __VERSION__: JSON.stringify(version) },
    logLevel: 'warning',
  });
  const info: BuildInfo = { entry: rel(entryOut), css: rel(cssOut), firstScreen, shell, version };
  writeFileSync(join(dist, 'build.json'), JSON.stringify(info, null, 2));
  return info;
}

if (process.argv[1] && basename(process.argv[1]).startsWith('build-web')) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);
  const info = await buildWeb();
  console.log(`web client built into web/dist (${info.firstScreen.length} first-screen files, version ${info.version})`);
}
