import { defineConfig } from 'vitest/config';
import LongFirstSequencer from './test/long-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous: CI shares a 2-core machine with other services and can run several times slower
    // than a quiet one; a deadline only decides how long a real failure takes to show.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Suites with servers and databases run one file at a time per worker; two cores here.
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: LongFirstSequencer },
  },
});
