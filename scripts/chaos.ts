/**
 * `npm run chaos [-- --rounds N --messages M --seed S]`: the long chaos run (test/helpers/chaos-run.ts).
 * Prints its figures; exits 1 on any loss, duplicate or message left unfinished.
 */
import { parseArgs } from 'node:util';
import { formatFigures, runChaos } from '../test/helpers/chaos-run.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '24' }, messages: { type: 'string', default: '100' }, seed: { type: 'string', default: String(Date.now() % 1e9) } },
});
const figures = await runChaos({
  rounds: Number(values.rounds),
  messagesPerRound: Number(values.messages),
  seed: Number(values.seed),
  settleMs: 600_000,
  log: (l) => console.log(l),
});
console.log(formatFigures(figures));
process.exit(figures.lost === 0 && figures.duplicated === 0 && figures.stuck === 0 ? 0 : 1);
