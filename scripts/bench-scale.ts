/**
 * npm run bench:scale — how cost grows with the data (issue 13): the server's part
 * (scripts/bench/scale-server.ts: queues, directory, GC, on PostgreSQL and PGlite) and the
 * client's (scripts/bench/scale-client.ts: SDK store and CLI start-up after 100k messages), each
 * in its own child process, one after the other, their output printed as it comes.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { printMachine } from './bench/machine.js';

const PARTS = ['scripts/bench/scale-server.ts', 'scripts/bench/scale-client.ts'];

function run(file: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

printMachine();
let failed = 0;
for (const part of PARTS) {
  if (!existsSync(part)) {
    console.log(`\n(${part} is not in this tree: that part is skipped)`);
    continue;
  }
  console.log(`\n== ${part}`);
  if ((await run(part)) !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
