import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'bench/**/*.test.ts'],
    // Property tests run many cases; keep the default timeout generous but bounded.
    testTimeout: 30_000,
  },
});
