import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The end-to-end suites take minutes. On a clean clone vitest has no durations and starts larger
 * files first, which leaves these small files to run alone at the end; started first, they run
 * beside the short ones. With durations cached (a developer's machine) the base order stands.
 */
const LONG = [
  'bridge/encrypted-dm',
  'bridge/key-change',
  'client/chaos',
  'client/cli',
  'bridge/plain-dm',
  'server/schemathesis',
  'server/abuse-budgets',
  'server/delivery-crash',
  'client/client',
  'server/probes',
  'bridge/durable-idb-crash',
  'server/refusals',
  'client/offline',
  'server/deploy-nginx',
  'server/operations',
  'web/devices',
  'web/safety',
  'web/messaging',
  'web/calls',
].map((f) => `/test/${f}.test.ts`);

export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = LONG.findIndex((l) => f.moduleId.endsWith(l));
      return i < 0 ? LONG.length : i;
    };
    const cached = sorted.every((f) => this.ctx.cache.getFileTestResults(`${f.project.name}:${f.moduleId.slice(this.ctx.config.root.length + 1)}`));
    if (cached) return sorted;
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}
