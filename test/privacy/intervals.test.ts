// Reported noise std and 95% intervals (protocols/privacy.md §7) checked by simulation with the real sampler:
// coverage must match what the interval claims, and fail when the noise is switched off or doubled.
import { describe, expect, it } from 'vitest'
import { coverageCheck, discreteGaussianVariance, isSuppressed, meanEstimate, MEAN_NULL_K, minCellsToDetectNoNoise, noiseInterval, noiseTailBound } from '../../src/privacy/intervals.ts'
import { samples, SeededWords } from '../../src/privacy/testing.ts'
import { binomialZ } from './stats.ts'

/** totals of `providers` independent shares, `trials` times */
function totals(seed: string, sigma: number, providers: number, trials: number): Float64Array {
  const src = new SeededWords(seed)
  const out = new Float64Array(trials)
  for (let p = 0; p < providers; p++) {
    const xs = samples(src, sigma, trials)
    for (let i = 0; i < trials; i++) out[i] = (out[i] as number) + (xs[i] as number)
  }
  return out
}

const coverageZ = (zs: Float64Array, w: number, claimed: number, scale = 1): number => {
  let hits = 0
  for (const z of zs) if (Math.abs(z * scale) <= w) hits++
  return binomialZ(hits, zs.length, claimed)
}

describe('95% noise intervals', () => {
  for (const [sigma, n] of [[1, 3], [2, 5], [8, 20], [9, 3], [1000, 3], [173_361, 10]] as const) {
    it(`σ = ${sigma}, N = ${n}: simulated coverage matches the reported coverage (≥ 0.95); doubled or no noise fails`, () => {
      const iv = noiseInterval(sigma, n)
      expect(iv.coverage).toBeGreaterThanOrEqual(0.95)
      expect(iv.coverage).toBeLessThan(Math.min(0.99, 0.95 + 0.5 / iv.std)) // lattice overshoot: at most about one step of mass
      const zs = totals(`iv-${sigma}-${n}`, sigma, n, 200_000)
      expect(Math.abs(coverageZ(zs, iv.halfWidth, iv.coverage))).toBeLessThan(5.5)
      expect(Math.abs(coverageZ(zs, iv.halfWidth, iv.coverage, 2))).toBeGreaterThan(20) // noise doubled
      expect(Math.abs(coverageZ(zs, iv.halfWidth, iv.coverage, 0))).toBeGreaterThan(20) // noise off: 100% coverage
    })
  }

  it('the variance of N_Z(0, σ²) is below σ² and meets it for large σ', () => {
    expect(discreteGaussianVariance(1)).toBeLessThan(1)
    expect(discreteGaussianVariance(1)).toBeGreaterThan(0.999)
    expect(discreteGaussianVariance(0.5)).toBeLessThan(0.25)
    expect(discreteGaussianVariance(50)).toBe(2500)
  })

  it('the overflow tail bound holds across cells at 2^-64 (and is not absurd)', () => {
    const b = noiseTailBound(1000, 3, 1_000_000)
    expect(b).toBeGreaterThan(1000 * Math.sqrt(3) * 9)
    expect(b).toBeLessThan(1000 * Math.sqrt(3) * 12)
  })
})

describe('means', () => {
  it('null below k·σ_count, otherwise a propagated interval whose simulated coverage is ≈ 95%', () => {
    const sumSigma = 4000
    const countSigma = 20
    const n = 3
    const sumStd = noiseInterval(sumSigma, n).std
    const countStd = noiseInterval(countSigma, n).std
    expect(meanEstimate(1e6, MEAN_NULL_K * countStd - 1, sumStd, countStd, 100).mean).toBeNull()
    expect(meanEstimate(1e6, -5, sumStd, countStd, 100).mean).toBeNull()
    // a cell with 400 rows, true mean 12.5 (scale 100 → 1250 per row)
    const trueCount = 400
    const trueSum = 1250 * trueCount
    const trials = 100_000
    const zs = totals('mean-sum', sumSigma, n, trials)
    const zc = totals('mean-count', countSigma, n, trials)
    let hits = 0
    let nulls = 0
    for (let i = 0; i < trials; i++) {
      const m = meanEstimate(trueSum + (zs[i] as number), trueCount + (zc[i] as number), sumStd, countStd, 100)
      if (m.mean === null || m.low === null || m.high === null) nulls++
      else if (m.low <= 12.5 && 12.5 <= m.high) hits++
    }
    expect(nulls).toBe(0)
    expect(Math.abs(binomialZ(hits, trials, 0.95))).toBeLessThan(6) // delta method: first order, checked here
  })

  it('suppress_below marks cells whose noisy count is below the threshold', () => {
    expect(isSuppressed(19, 20)).toBe(true)
    expect(isSuppressed(20, 20)).toBe(false)
    expect(isSuppressed(-3, undefined)).toBe(false)
  })
})

describe('coverage check (exact binomial at 10^-6)', () => {
  it('passes honest noise and fails with the noise switched off or doubled, on a 24 × 20 heat map', () => {
    const sigma = 35
    const n = 3
    const cells = 480
    const iv = noiseInterval(sigma, n)
    const zs = totals('heat', sigma, n, cells)
    const count = (scale: number): number => zs.reduce((acc, z) => acc + (Math.abs(z * scale) <= iv.halfWidth ? 1 : 0), 0)
    expect(coverageCheck(count(1), cells, iv.coverage).ok).toBe(true)
    expect(coverageCheck(count(0), cells, iv.coverage).ok).toBe(false)
    expect(coverageCheck(count(2), cells, iv.coverage).ok).toBe(false)
    expect(minCellsToDetectNoNoise(0.95)).toBe(283)
    expect(coverageCheck(100, 100, 0.95).ok).toBe(true) // too few cells to tell: the integration must use ≥ 283
  })
})
