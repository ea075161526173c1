/**
 * The short chaos run (`npm run chaos` is the long one): two server instances on a throwaway
 * PostgreSQL cluster, 3 users x 2 devices behind a proxy that delays, refuses, cuts and stalls,
 * and per round one fault while users send: SIGKILL of an instance, a PostgreSQL crash-restart,
 * every connection cut, the network stalled. Every message must reach every target device's app
 * exactly once and end delivered at its sender, judged from the clients' own stores.
 */
import { describe, expect, it } from 'vitest';
import { formatFigures, runChaos } from '../helpers/chaos-run.js';
import { PgCluster } from '../helpers/pg-cluster.js';

const SEED = Number(process.env.CHAOS_SEED ?? 20261201);
const available = PgCluster.available();
if (!available) {
  if (process.env.CI === 'true') throw new Error('PostgreSQL server binaries are missing: the chaos run needs initdb and pg_ctl');
  console.warn('\n*** no PostgreSQL server binaries (initdb): the chaos run skips ***\n');
}

describe.skipIf(!available)('chaos: faults while users send', () => {
  it('loses nothing, doubles nothing, leaves nothing unfinished', async () => {
    const f = await runChaos({ rounds: 4, messagesPerRound: 50, seed: SEED, settleMs: 600_000 });
    console.log(`chaos (seed ${SEED}):\n${formatFigures(f)}`);
    expect(f.faults.instanceKills + f.faults.postgresRestarts + f.faults.cutAll + f.faults.stalls).toBe(4);
    expect(f.sent).toBe(200);
    expect({ lost: f.lost, duplicated: f.duplicated, stuck: f.stuck }).toEqual({ lost: 0, duplicated: 0, stuck: 0 });
    expect(f.delivered).toBe(f.expected);
  }, 1_200_000);
});
