import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: {
      // global.gc() for the memory bounds of test/unit/iscsi/fuzz.test.ts.
      forks: { execArgv: ['--expose-gc'] },
    },
  },
});
