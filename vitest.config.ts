import { defineConfig } from 'vitest/config';
import SummaryReporter from './vitest.summary-reporter.ts';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'bench/**/*.test.ts'],
    reporters: ['default', new SummaryReporter()],
    // Property tests run many cases; keep the default timeout generous but bounded.
    testTimeout: 30_000,
  },
});
