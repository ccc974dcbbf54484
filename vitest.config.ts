import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-process suites spawn real agents; two cores here, so keep file-level parallelism modest.
    maxWorkers: 2,
    reporters: ['default']
  }
})
