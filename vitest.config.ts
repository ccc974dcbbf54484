import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

// Every e2e test spawns the real CLI (agents, `query run`, `init`, …) hundreds of times; each spawn compiles
// ~1.5 s of CPU worth of modules (libp2p, DuckDB bindings, our sources). Node's on-disk compile cache
// (V8 code cache, keyed by file content) cuts that by ~40 % per spawn. Set here, before the workers fork,
// so workers and every process they spawn inherit it; test runs only, the production binary sets nothing.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'mpc-agent-test-compile-cache')

/** Files that run real processes or servers: each takes tens of seconds to minutes, the rest seconds. */
const SLOW = /\/test\/(e2e|examples)\/|\/test\/data\/postgres\.test\.ts$/

/**
 * Longest first, so the two workers finish together. Vitest orders by the last run's durations when it has
 * them (a developer's machine) and otherwise by file size, which on a fresh CI checkout put the 2-minute
 * crash-matrix file 31st of 69 and a 70 s e2e file 45th, behind unit tests of a second: with no durations,
 * the multi-process files go first (largest first among them).
 */
class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    if (files.every((f) => this.ctx.cache.getTestSpecificationResult(f))) return sorted
    return [...sorted.filter((f) => SLOW.test(f.moduleId)), ...sorted.filter((f) => !SLOW.test(f.moduleId))]
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-process suites spawn real agents; two cores here, so keep file-level parallelism modest.
    maxWorkers: 2,
    sequence: { sequencer: SlowFirst },
    reporters: ['default']
  }
})
