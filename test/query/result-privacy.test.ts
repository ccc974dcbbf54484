// The buyer's view of a noisy result (protocols/privacy.md §7): signed decoding, intervals per aggregate, a mean
// null below k·σ_count, suppress_below marks, and ε/δ/mechanism in the table and CSV.
import { describe, expect, it } from 'vitest'
import { decodeResult, resultToCsv } from '../../src/query/result.ts'
import { noiseInterval } from '../../src/privacy/intervals.ts'
import { query } from '../data/fixtures.ts'

describe('noisy result', () => {
  it('decodes noisy slots as signed, with intervals, null means and suppression marks', async () => {
    const q = await query({
      aggregates: [{ name: 'n', kind: 'count' }, { name: 'fare', kind: 'mean', column: 'fare', scale: 100, clip: [0, 500] }],
      privacy: { epsilon: 1, delta: 1e-9, unit: 'row', suppress_below: 10, noise: { mechanism: 'discrete_gaussian', dishonest: 1, sigmas: [4, 400, 4] } }
    })
    // zone 1: n = -2 (noise made it negative), mean slots sum -100 / count 1 (count below k·σ → null)
    // zone 2: n = 50, sum 50·1234, count 50; zone 3: n = 12
    const v = [-2n, -100n, 1n, 50n, 61700n, 50n, 12n, 0n, 40n].map((x) => BigInt.asUintN(64, x))
    const t = decodeResult(q, v)
    const w = noiseInterval(4, 3).halfWidth
    expect(t.cells[0]?.values.n).toBe(-2)
    expect(t.cells[0]?.values.fare).toBeNull()
    expect(t.cells[0]?.interval?.n).toEqual([-2 - w, -2 + w])
    expect(t.cells[0]?.suppressed).toBe(true)
    expect(t.cells[1]?.values.fare).toBeCloseTo(12.34)
    const [lo, hi] = t.cells[1]?.interval?.fare as [number, number]
    expect(lo).toBeLessThan(12.34)
    expect(hi).toBeGreaterThan(12.34)
    expect(t.cells[1]?.suppressed).toBeUndefined()
    expect(t.noise?.epsilon).toBe(1)
    expect(t.noise?.mechanism).toBe('discrete_gaussian')
    expect(t.noise?.aggregates.n?.half_width_95).toBe(w)
    const csv = resultToCsv(t).split('\n')
    expect(csv[0]).toBe('zone,n,fare,n_low95,n_high95,fare_low95,fare_high95,suppressed')
    expect(csv[1]?.endsWith(',yes')).toBe(true)
  })
})
