import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites with servers and databases run one file at a time per worker; two cores here.
    pool: 'forks',
    maxWorkers: 2,
  },
});
