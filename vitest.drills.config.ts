import { defineConfig } from 'vitest/config';

// The drills take minutes: run with `npm run drills`, one file, no parallel files.
export default defineConfig({
  test: { include: ['test/drills/**/*.drill.ts'], testTimeout: 600_000, hookTimeout: 120_000, pool: 'forks', fileParallelism: false },
});
