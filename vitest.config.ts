import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'

// Every e2e test spawns the real CLI (agents, `query run`, `init`, …) hundreds of times; each spawn compiles
// ~1.5 s of CPU worth of modules (libp2p, DuckDB bindings, our sources). Node's on-disk compile cache
// (V8 code cache, keyed by file content) cuts that by ~40 % per spawn. Set here, before the workers fork,
// so workers and every process they spawn inherit it; test runs only, the production binary sets nothing.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'mpc-agent-test-compile-cache')

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
