/**
 * `npm run sync:protocol -- DIR [REPO]`: copies the protocol's source of truth (DIR: the folder that
 * holds SPEC.md and vectors/) into this repository (or REPO), so a clone needs nothing outside itself:
 * SPEC.md -> docs/protocol.md, vectors/*.json -> test/vectors/, README.md -> test/vectors/README.md.
 * Vector files that are gone from DIR are removed here too. Prints what changed.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(process.argv[3] ?? join(import.meta.dirname, '..'));
const dirArg = process.argv[2];
if (!dirArg) {
  console.error('usage: npm run sync:protocol -- DIR [REPO]   (DIR holds SPEC.md and vectors/)');
  process.exit(2);
}
const source = resolve(root, dirArg);

function sync(from: string, to: string): boolean {
  const before = existsSync(to) ? readFileSync(to) : null;
  copyFileSync(from, to);
  return before === null || !before.equals(readFileSync(to));
}

function main(): number {
  if (!existsSync(join(source, 'SPEC.md')) || !existsSync(join(source, 'vectors'))) {
    console.error(`sync:protocol: ${source} has no SPEC.md and vectors/; pass the protocol directory: npm run sync:protocol -- DIR`);
    return 1;
  }
  const vectorsDir = join(root, 'test/vectors');
  mkdirSync(vectorsDir, { recursive: true });
  mkdirSync(join(root, 'docs'), { recursive: true });
  const pairs: [string, string][] = [
    [join(source, 'SPEC.md'), join(root, 'docs/protocol.md')],
    [join(source, 'README.md'), join(vectorsDir, 'README.md')],
  ];
  const wanted = readdirSync(join(source, 'vectors')).filter((f) => f.endsWith('.json'));
  for (const f of wanted) pairs.push([join(source, 'vectors', f), join(vectorsDir, f)]);
  let changed = 0;
  for (const [from, to] of pairs) {
    if (!existsSync(from)) continue;
    if (sync(from, to)) {
      changed++;
      console.log(`updated ${to.slice(root.length + 1)}`);
    }
  }
  for (const f of readdirSync(vectorsDir).filter((x) => x.endsWith('.json') && !wanted.includes(x))) {
    rmSync(join(vectorsDir, f));
    changed++;
    console.log(`removed test/vectors/${f}`);
  }
  console.log(changed === 0 ? `up to date with ${source}` : `${changed} file(s) changed from ${source}; run npm run vectors`);
  return 0;
}

process.exit(main());
