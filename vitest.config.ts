import path from 'node:path';
import { defineConfig } from 'vitest/config';

// The tests build btcd into the checkout's .cache (git-ignored), not the user cache: CI builds it
// once, and every process the tests spawn (CLI, examples, the installed package) inherits this.
process.env.PAYCHAN_CACHE_DIR ??= path.resolve('.cache');

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every property test of a run uses one seed, printed on failure and settable (PAYCHAN_FC_SEED).
    setupFiles: ['test/setup/fast-check-seed.ts'],
    // The regtest node is built once (go install) before any test file runs; unit-only runs
    // (npm run test:unit) skip that.
    globalSetup: process.env.PAYCHAN_UNIT_ONLY === '1' ? [] : ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Integration files each start their own btcd; two cores, so two at a time.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
