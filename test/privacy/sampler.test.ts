// The exact discrete Gaussian sampler against the exact pmf (protocols/privacy.md §6), on ≥ 10^6 samples, with a
// negative control: the same battery run on a sampler whose σ is 5% too large must fail. Thresholds sit at
// p ≈ 10^-6 (χ²) and |z| < 5.5, so a correct sampler fails them with probability < 10^-5.
import { describe, expect, it } from 'vitest'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addDiscreteGaussianNoise, MAX_SIGMA, sampleDiscreteGaussian } from '../../src/privacy/sampler.ts'
import { addNoise, samples, SeededWords } from '../../src/privacy/testing.ts'
import { binomialZ, chiSquare, chiSquareCritical1e6, dgPmf, erfc, zScores } from './stats.ts'

const MILLION = 1_000_000

/** the full battery against N_Z(0, σ²); returns the statistics so a negative control can assert they fail */
function battery(xs: Float64Array, sigma: number): { chi: number; crit: number; zMean: number; zVar: number; zTail: number } {
  const pmf = dgPmf(sigma, 0)
  let variance = 0
  let tail = 0 // P(|X| > 2σ)
  for (let k = -Math.ceil(40 * sigma); k <= Math.ceil(40 * sigma); k++) {
    variance += k * k * pmf(k)
    if (Math.abs(k) > 2 * sigma) tail += pmf(k)
  }
  const { zMean, zVar } = zScores(xs, variance)
  let hits = 0
  for (const x of xs) if (Math.abs(x) > 2 * sigma) hits++
  const { stat, df } = chiSquare(xs, pmf, -Math.ceil(4 * sigma), Math.ceil(4 * sigma))
  return { chi: stat, crit: chiSquareCritical1e6(df), zMean, zVar, zTail: binomialZ(hits, xs.length, tail) }
}

function expectPasses(b: ReturnType<typeof battery>): void {
  expect(Math.abs(b.zMean)).toBeLessThan(5.5)
  expect(Math.abs(b.zVar)).toBeLessThan(5.5)
  expect(Math.abs(b.zTail)).toBeLessThan(5.5)
  expect(b.chi).toBeLessThan(b.crit)
}

describe('discrete Gaussian sampler: distribution', () => {
  it('seeded, σ = 20: mean, variance, tail mass and χ² match the exact pmf on 10^6 samples', () => {
    const xs = samples(new SeededWords('sigma-20'), 20, MILLION)
    expectPasses(battery(xs, 20))
  })

  it('negative control: samples with σ × 1.05 (21) fail the σ = 20 battery (variance and χ²)', () => {
    const xs = samples(new SeededWords('sigma-21'), 21, MILLION)
    const b = battery(xs, 20)
    expect(Math.abs(b.zVar)).toBeGreaterThan(20)
    expect(b.chi).toBeGreaterThan(10 * b.crit)
    expect(Math.abs(b.zTail)).toBeGreaterThan(5.5)
  })

  it('production path (node:crypto, vector API), σ = 3: 10^6 noisy zeros decode as signed and match the exact pmf', () => {
    const v = new BigUint64Array(MILLION)
    addDiscreteGaussianNoise(v, { dataLength: MILLION, sigmas: [3] })
    const xs = Float64Array.from(v, (w) => Number(BigInt.asIntN(64, w)))
    expectPasses(battery(xs, 3))
  })

  it('σ = 1 (the smallest): χ² and moments on 10^6 samples', () => {
    expectPasses(battery(samples(new SeededWords('sigma-1'), 1, MILLION), 1))
  })

  it('σ = 10^6: mean, variance and two-sided tail beyond 2σ and 3σ on 10^6 samples', () => {
    const sigma = 1_000_000
    const xs = samples(new SeededWords('sigma-1e6'), sigma, MILLION)
    const { zMean, zVar } = zScores(xs, sigma * sigma) // Var = σ²(1 − O(e^{−2π²σ²}))
    expect(Math.abs(zMean)).toBeLessThan(5.5)
    expect(Math.abs(zVar)).toBeLessThan(5.5)
    for (const c of [2, 3]) {
      let hits = 0
      for (const x of xs) if (Math.abs(x) > c * sigma) hits++
      expect(Math.abs(binomialZ(hits, xs.length, erfc(c / Math.SQRT2)))).toBeLessThan(5.5)
    }
  })

  it('σ = MAX_SIGMA (2^26, the BigInt tail path): variance on 2·10^5 samples; control at σ·1.05 fails', () => {
    const xs = samples(new SeededWords('sigma-max'), MAX_SIGMA, 200_000)
    const v = MAX_SIGMA * MAX_SIGMA
    expect(Math.abs(zScores(xs, v).zVar)).toBeLessThan(5.5)
    const ys = samples(new SeededWords('sigma-max-off'), Math.round(MAX_SIGMA / 1.05), 200_000)
    expect(Math.abs(zScores(ys, v).zVar)).toBeGreaterThan(5.5)
  })
})

describe('discrete Gaussian sampler: vector API', () => {
  it('adds in Z_2^64 with wrap-around, exactly the sample sequence (signed decoding recovers it)', () => {
    const n = 100_000
    const v = new BigUint64Array(n)
    const before = new BigUint64Array(n)
    const edge = [0n, 1n, (1n << 64n) - 1n, 1n << 63n, (1n << 63n) - 1n, (1n << 32n) - 1n, 1n << 32n]
    for (let i = 0; i < n; i++) before[i] = v[i] = edge[i % edge.length] as bigint
    addNoise(new SeededWords('vec'), v, { dataLength: n, sigmas: [MAX_SIGMA] })
    const expected = samples(new SeededWords('vec'), MAX_SIGMA, n)
    let crossed = 0
    for (let i = 0; i < n; i++) {
      const diff = BigInt.asIntN(64, (v[i] as bigint) - (before[i] as bigint))
      if (diff !== BigInt(expected[i] as number)) throw new Error(`word ${i}: added ${diff}, expected ${expected[i]}`)
      if ((v[i] as bigint) >> 32n !== (before[i] as bigint) >> 32n) crossed++
    }
    expect(crossed).toBeGreaterThan(n / 10) // the carry / borrow into the high word was exercised
  })

  it('noises every data slot (empty cells too) with its slot σ and never the canaries after dataLength', () => {
    const cells = 200_000
    const sigmas = [3, 1000]
    const v = new BigUint64Array(cells * 2 + 4)
    addNoise(new SeededWords('layout'), v, { dataLength: cells * 2, sigmas })
    expect([...v.subarray(cells * 2)]).toEqual([0n, 0n, 0n, 0n])
    for (let s = 0; s < 2; s++) {
      const xs = new Float64Array(cells)
      for (let c = 0; c < cells; c++) xs[c] = Number(BigInt.asIntN(64, v[c * 2 + s] as bigint))
      const sigma = sigmas[s] as number
      let variance = 0
      const pmf = dgPmf(sigma, 0)
      for (let k = -40 * sigma; k <= 40 * sigma; k++) variance += k * k * pmf(k)
      expect(Math.abs(zScores(xs, variance).zVar)).toBeLessThan(5.5)
    }
  })

  it('refuses a non-integer or out-of-range σ and a layout that does not fit', () => {
    const v = new BigUint64Array(10)
    expect(() => addDiscreteGaussianNoise(v, { dataLength: 10, sigmas: [1.5] })).toThrow(RangeError)
    expect(() => addDiscreteGaussianNoise(v, { dataLength: 10, sigmas: [0] })).toThrow(RangeError)
    expect(() => addDiscreteGaussianNoise(v, { dataLength: 10, sigmas: [MAX_SIGMA + 1] })).toThrow(RangeError)
    expect(() => addDiscreteGaussianNoise(v, { dataLength: 11, sigmas: [1] })).toThrow(RangeError)
    expect(() => addDiscreteGaussianNoise(v, { dataLength: 9, sigmas: [1, 1] })).toThrow(RangeError)
    expect(() => sampleDiscreteGaussian(0.5)).toThrow(RangeError)
    expect(Number.isInteger(sampleDiscreteGaussian(5))).toBe(true)
  })

  it('production fresh draws differ between calls (node:crypto, not a fixed seed)', () => {
    const a = new BigUint64Array(64)
    const b = new BigUint64Array(64)
    addDiscreteGaussianNoise(a, { dataLength: 64, sigmas: [1_000_000] })
    addDiscreteGaussianNoise(b, { dataLength: 64, sigmas: [1_000_000] })
    expect([...a]).not.toEqual([...b])
  })
})

describe('randomness source', () => {
  it('no production module imports the test-only seeded source, and only src/privacy reaches the internal sampler', () => {
    const root = fileURLToPath(new URL('../../src', import.meta.url))
    const files: string[] = []
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f)
        if (statSync(p).isDirectory()) walk(p)
        else if (p.endsWith('.ts') || p.endsWith('.tsx')) files.push(p)
      }
    }
    walk(root)
    expect(files.length).toBeGreaterThan(10)
    const offenders: string[] = []
    for (const f of files) {
      const text = readFileSync(f, 'utf8')
      const rel = f.slice(root.length + 1)
      if (rel !== 'privacy/testing.ts' && /from\s+['"][^'"]*privacy\/testing(\.ts)?['"]|from\s+['"]\.\/testing(\.ts)?['"]/.test(text)) offenders.push(rel)
      if (!rel.startsWith('privacy/') && /_dgauss/.test(text)) offenders.push(rel)
      if (rel.startsWith('privacy/') && /Math\.random/.test(text)) offenders.push(`${rel} (Math.random)`)
    }
    expect(offenders).toEqual([])
  })
})
