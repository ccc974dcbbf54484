// node bench/noise.ts [--cells 1000000] — the cost of differential-privacy noise per cell per provider
// (protocols/privacy.md §6): the production call addDiscreteGaussianNoise (exact discrete Gaussian from
// node:crypto) on a vector of `cells` words, for per-provider σ from 1 to the sampler's maximum, best of 3.
// Also run by `npm run bench` (bench/run.ts). Writes bench/results/noise.json; asserts nothing.
import { cpus } from 'node:os'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { addDiscreteGaussianNoise, MAX_SIGMA } from '../src/privacy/sampler.ts'

export interface NoiseRow {
  sigma: number
  cells: number
  /** best of `reps` wall times for the whole vector */
  ms: number
  ns_per_cell: number
}

export function benchNoise(opts: { cells?: number; reps?: number; log?: (line: string) => void } = {}): { cpu: string; rows: NoiseRow[] } {
  const cells = opts.cells ?? 1_000_000
  const reps = opts.reps ?? 3
  const rows: NoiseRow[] = []
  const vec = new BigUint64Array(cells)
  for (const sigma of [1, 35, 1000, 173_361, 1_000_000, MAX_SIGMA]) {
    let best = Infinity
    for (let r = 0; r < reps; r++) {
      const t = performance.now()
      addDiscreteGaussianNoise(vec, { dataLength: cells, sigmas: [sigma] })
      best = Math.min(best, performance.now() - t)
    }
    const row = { sigma, cells, ms: Math.round(best), ns_per_cell: Math.round((best * 1e6) / cells) }
    rows.push(row)
    opts.log?.(`noise sigma=${sigma}: ${row.ms} ms per ${cells} cells = ${row.ns_per_cell} ns/cell (target ≤ 1000)`)
  }
  const doc = { cpu: cpus()[0]?.model ?? 'unknown', node: process.version, at: new Date().toISOString(), rows }
  const dir = fileURLToPath(new URL('./results/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}noise.json`, `${JSON.stringify(doc, null, 2)}\n`)
  return doc
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { cells: { type: 'string' }, reps: { type: 'string' } } })
  benchNoise({ cells: Number(values.cells ?? 1_000_000), reps: Number(values.reps ?? 3), log: (l) => process.stderr.write(`${l}\n`) })
}
