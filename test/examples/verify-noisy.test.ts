// The ride-sharing example's honest check of a noisy result (verifyNoisy): passes with the honest noise, fails
// with the noise switched off or doubled — so the example's "verified (noisy)" line can fail.
import { describe, expect, it } from 'vitest'
import { verifyNoisy, type ResultDoc } from '../../examples/ride-sharing/verify.ts'
import { noiseInterval } from '../../src/privacy/intervals.ts'
import { sampleDiscreteGaussian } from '../../src/privacy/sampler.ts'

function doc(cells: number, sigma: number, factor: number): { d: ResultDoc; exact: Map<string, Record<string, number | null>> } {
  const iv = noiseInterval(sigma, 3)
  const exact = new Map<string, Record<string, number | null>>()
  const out: ResultDoc['cells'] = []
  for (let i = 0; i < cells; i++) {
    const e = (i * 37) % 50
    exact.set(String(i), { pickups: e })
    const noise = factor * (sampleDiscreteGaussian(sigma) + sampleDiscreteGaussian(sigma) + sampleDiscreteGaussian(sigma))
    const v = e + noise
    out.push({ key: [String(i)], values: { pickups: v }, interval: { pickups: [v - iv.halfWidth, v + iv.halfWidth] } })
  }
  return {
    d: { query: { id: 'pickups-zone-hour-dp' }, dims: [{ name: 'c', labels: out.map((c) => c.key[0] as string) }], cells: out, privacy: { epsilon: 1, delta: 1e-9, mechanism: 'discrete_gaussian', aggregates: { pickups: { std: iv.std, half_width_95: iv.halfWidth, coverage: iv.coverage } } } },
    exact
  }
}

describe('verifyNoisy', () => {
  it('passes honest noise, fails with the noise off or doubled, and reports the error per cell', () => {
    const honest = doc(2000, 6, 1)
    const v = verifyNoisy(honest.d, honest.exact, 'pickups')
    expect(v.ok).toBe(true)
    expect(v.errors).toHaveLength(2000)
    expect(v.meanAbsError).toBeGreaterThan(1)
    const off = doc(2000, 6, 0)
    expect(verifyNoisy(off.d, off.exact, 'pickups').ok).toBe(false)
    const doubled = doc(2000, 6, 2)
    expect(verifyNoisy(doubled.d, doubled.exact, 'pickups').ok).toBe(false)
  })
})
