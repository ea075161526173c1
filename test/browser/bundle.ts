/** One ESM bundle of a browser entry (the protocol and what it imports), in memory, as the browser suite and bench:crypto's Chromium side load it. */
import { build } from 'esbuild';

export async function bundleForBrowser(entry: string): Promise<Uint8Array> {
  const bundle = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  return bundle.outputFiles[0]!.contents;
}
