/**
 * `npm run vectors -- DIR`: runs every vector file in DIR through the runner of its topic. Prints a
 * line per file and ends with "N passed, N failed"; exits 0 only if none failed and a case ran.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CaseResult, TopicRunner, VectorFile } from './vectors/types.js';

const runners: Record<string, () => Promise<{ run: TopicRunner }>> = {
  keys: () => import('./vectors/keys.js'),
  x3dh: () => import('./vectors/x3dh.js'),
  session: () => import('./vectors/session.js'),
  padding: () => import('./vectors/padding.js'),
  backup: () => import('./vectors/backup.js'),
};

async function main(): Promise<number> {
  const dir = process.argv[2] ? resolve(process.argv[2]) : join(import.meta.dirname, '../test/vectors');
  const verbose = process.argv.includes('--verbose');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  let passed = 0;
  let failed = 0;
  for (const f of files) {
    let results: CaseResult[];
    let doc: VectorFile;
    try {
      doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as VectorFile;
      const load = runners[doc.topic];
      if (!load) throw new Error(`no runner for topic '${doc.topic}'`);
      results = await (await load()).run(doc);
    } catch (e) {
      failed++;
      console.log(`${f}: FAILED to run: ${(e as Error).message}`);
      continue;
    }
    const bad = results.filter((r) => !r.ok);
    passed += results.length - bad.length;
    failed += bad.length;
    console.log(`${f}: ${results.length - bad.length}/${results.length} cases passed`);
    for (const r of bad) console.log(`  FAIL ${r.name}: ${r.detail ?? ''}`);
    for (const r of results.filter((x) => x.ok && x.note)) console.log(`  NOTE ${r.name}: spec/vector disagreement: ${r.note}`);
    if (verbose) for (const r of results.filter((x) => x.ok)) console.log(`  ok ${r.name}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
