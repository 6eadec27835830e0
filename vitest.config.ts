import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers; each file gets its own loopback addresses.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
