import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Sandbox, store-crash and registry tests start processes and servers; two cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
