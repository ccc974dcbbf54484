// The zCDP accountant against independent reference values (protocols/privacy.md §2–§5). Reference literals were
// computed with mpmath at 40 digits by direct minimisation over α of CKS20's conversion (not with this code).
import { describe, expect, it } from 'vitest'
import {
  calibrateSigma,
  checkNoiseShares,
  distributedGaussianRho,
  kls21Tau,
  planNoise,
  rhoForEpsilonDelta,
  slotSensitivities,
  zcdpDelta,
  zcdpEpsilon,
  type NoisePlanInput
} from '../../src/privacy/accounting.ts'
import { Phi } from './stats.ts'

const close = (a: number, b: number, rel: number): void => {
  expect(Math.abs(a - b) / Math.abs(b)).toBeLessThan(rel)
}

describe('zCDP → (ε, δ), the tight conversion of CKS20 Cor. 13', () => {
  it('δ(ρ, ε) matches high-precision references', () => {
    close(zcdpDelta(0.5, 3), 0.00514318406386215, 1e-8)
    close(zcdpDelta(0.1, 1), 0.00893324577181836, 1e-8)
    close(zcdpDelta(0.01, 0.5), 3.50587806005239e-5, 1e-8)
    close(zcdpDelta(1, 5), 0.00261203450662049, 1e-8)
  })
  it('ε(ρ, δ) matches high-precision references', () => {
    close(zcdpEpsilon(0.5, 1e-6), 5.22153444453017, 1e-9)
    close(zcdpEpsilon(0.1, 1e-9), 2.7154818867305, 1e-9)
    close(zcdpEpsilon(0.0125, 1e-5), 0.615742393493785, 1e-9)
  })
  it('ρ for a budget (ε, δ) matches references, from below (never overspends)', () => {
    const refs: [number, number, number][] = [
      [1, 1e-9, 0.0149730576735885],
      [1, 1e-6, 0.0243559703595384],
      [0.1, 1e-5, 0.00043299372940181],
      [10, 1e-6, 1.53927876386673]
    ]
    for (const [e, d, rho] of refs) {
      const got = rhoForEpsilonDelta(e, d)
      close(got, rho, 1e-8)
      expect(got).toBeLessThanOrEqual(rho)
      expect(zcdpDelta(got, e)).toBeLessThanOrEqual(d)
    }
  })
  it('is tighter than Bun–Steinke ε = ρ + 2√(ρ ln 1/δ) and never below the exact Gaussian profile (Balle–Wang)', () => {
    for (const rho of [0.001, 0.0149, 0.1, 0.5, 2]) {
      for (const delta of [1e-5, 1e-9]) {
        const eps = zcdpEpsilon(rho, delta)
        expect(eps).toBeLessThan(rho + 2 * Math.sqrt(rho * Math.log(1 / delta)))
        // the Gaussian mechanism with Δ/σ = √(2ρ) is exactly ρ-zCDP; its true δ(ε) cannot exceed the conversion's
        const r = Math.sqrt(2 * rho)
        const exact = Phi(r / 2 - eps / r) - Math.exp(eps) * Phi(-r / 2 - eps / r)
        expect(exact).toBeLessThanOrEqual(delta * (1 + 1e-6))
        expect(exact).toBeGreaterThan(delta / 10) // and the conversion is not wildly loose
      }
    }
  })
})

describe('sum of discrete Gaussians (KLS21 Prop. 14)', () => {
  it('τ = 10 Σ_{k<h} exp(−2π²σ² k/(k+1))', () => {
    close(kls21Tau(1, 2), 10 * Math.exp(-(Math.PI * Math.PI)), 1e-14)
    close(kls21Tau(0.5, 3), 10 * (Math.exp(-(Math.PI * Math.PI) / 4) + Math.exp(-(Math.PI * Math.PI) / 3)), 1e-14)
    expect(kls21Tau(5, 1)).toBe(0)
  })
  it('h = 1 is the single discrete Gaussian, ρ = Δ²/(2σ²) (CKS20 §2)', () => {
    close(distributedGaussianRho(7, 1, 100, { l1: 3, l2: 3 }), 9 / 98, 1e-15)
  })
  it('for small σ the τ term makes the sum strictly worse than one discrete Gaussian at hσ²', () => {
    const s = { l1: 24, l2: Math.sqrt(24) }
    const naive = (s.l2 * s.l2) / (2 * 5 * 1)
    const rho = distributedGaussianRho(1, 5, 1000, s)
    expect(rho).toBeGreaterThan(naive * 1.002)
    // and for large σ τ vanishes
    close(distributedGaussianRho(100, 5, 1000, s), (s.l2 * s.l2) / (2 * 5 * 100 * 100), 1e-12)
  })
  it('calibration returns the smallest integer σ meeting the target', () => {
    for (const [rho, h, d, l2] of [[0.01, 2, 168, 4.9], [0.001, 5, 10, 1], [0.5, 2, 10_000, 1], [1e-4, 3, 24, 24494.9]] as const) {
      const s = { l1: l2 * Math.sqrt(d), l2 }
      const sigma = calibrateSigma(rho, h, d, s)
      expect(distributedGaussianRho(sigma, h, d, s)).toBeLessThanOrEqual(rho)
      if (sigma > 1) expect(distributedGaussianRho(sigma - 1, h, d, s)).toBeGreaterThan(rho)
    }
  })
  it('a single discrete Gaussian at the calibrated σ has an exact privacy profile within the target (ε, δ)', () => {
    // N = 2, t = 1 → h = 1: one honest discrete Gaussian; sensitivity 1 (a count, unit row). Hockey-stick divergence
    // δ(ε) = Σ_y max(0, p(y) − e^ε p(y − 1)) computed from the pmf.
    for (const [eps, delta] of [[1, 1e-6], [0.5, 1e-9], [2, 1e-5]] as const) {
      const plan = planNoise({ epsilon: eps, delta, slots: [{ l1: 1, l2: 1 }], cells: 1, providers: 2, dishonest: 1 })
      const sigma = plan.sigmas[0] as number
      const lp = (y: number): number => (-y * y) / (2 * sigma * sigma)
      let z = 0
      const K = 60 * sigma
      for (let y = -K; y <= K; y++) z += Math.exp(lp(y))
      let d = 0
      for (let y = -K; y <= K; y++) d += Math.max(0, Math.exp(lp(y)) / z - Math.exp(eps + lp(y - 1)) / z)
      expect(d).toBeLessThanOrEqual(delta)
    }
  })
})

describe('sensitivity, split and acceptance', () => {
  it('slots per aggregate and the unit bounds: a mean has two slots; a column unit scales by √max_cells · rows', () => {
    const aggs = [{ kind: 'count' }, { kind: 'sum', maxAbs: 500 }, { kind: 'mean', maxAbs: 7, span: 7 }, { kind: 'count_distinct' }] as const
    expect(slotSensitivities(aggs, { kind: 'row' })).toEqual([
      { l1: 1, l2: 1 },
      { l1: 500, l2: 500 },
      { l1: 7, l2: 7 },
      { l1: 1, l2: 1 },
      { l1: 1, l2: 1 }
    ])
    const col = slotSensitivities(aggs, { kind: 'column', column: 'vehicle_id', maxCells: 24, maxRowsPerCell: 2 })
    expect(col).toHaveLength(5)
    close(col[1]?.l2 as number, Math.sqrt(24) * 2 * 500, 1e-15)
    expect(col[1]?.l1).toBe(24 * 2 * 500)
  })

  it('a mean\'s sum is charged its clip\'s span when that exceeds maxAbs (a symmetric clip: twice)', () => {
    expect(slotSensitivities([{ kind: 'mean', maxAbs: 50, span: 100 }], { kind: 'row' })).toEqual([{ l1: 100, l2: 100 }, { l1: 1, l2: 1 }])
    expect(slotSensitivities([{ kind: 'mean', maxAbs: 10, span: 5 }], { kind: 'row' })[0]).toEqual({ l1: 10, l2: 10 })
  })

  const base: NoisePlanInput = {
    epsilon: 1,
    delta: 1e-9,
    slots: slotSensitivities([{ kind: 'count' }, { kind: 'mean', maxAbs: 5000, span: 5000 }], { kind: 'column', column: 'v', maxCells: 24, maxRowsPerCell: 1 }),
    cells: 168,
    providers: 4,
    dishonest: 2
  }
  it('the plan splits ρ equally over the slots and meets it with h = N − t honest providers', () => {
    const plan = planNoise(base)
    expect(plan.honest).toBe(2)
    expect(plan.sigmas).toHaveLength(3)
    expect(plan.achievedRho).toBeLessThanOrEqual(plan.rho)
    expect(plan.achievedRho).toBeGreaterThan(plan.rho * 0.9)
    expect(plan.sigmas[0]).toBe(plan.sigmas[2]) // a count and a mean's count: same sensitivity, same σ
  })
  it('a provider accepts the planned shares and refuses lower, unequal or too-trusting ones (privacy_noise)', () => {
    const plan = planNoise(base)
    const shares = Array.from({ length: 4 }, () => [...plan.sigmas])
    expect(checkNoiseShares({ ...base, shares, self: 1 }).ok).toBe(true)
    const lower = shares.map((row) => row.map((s) => s - 1))
    expect(checkNoiseShares({ ...base, shares: lower, self: 1 })).toMatchObject({ ok: false, code: 'privacy_noise' })
    const unequal = shares.map((row, p) => (p === 3 ? row.map((s) => s * 2) : row))
    expect(checkNoiseShares({ ...base, shares: unequal, self: 0 })).toMatchObject({ ok: false, code: 'privacy_noise' })
    // planned assuming t = 1 (3 honest): a provider assuming t = 2 (its policy's default N − 2) refuses
    const trusting = planNoise({ ...base, dishonest: 1 })
    const sharesT1 = Array.from({ length: 4 }, () => [...trusting.sigmas])
    expect(checkNoiseShares({ ...base, shares: sharesT1, self: 0 }).ok).toBe(false)
    expect(checkNoiseShares({ ...base, dishonest: 1, shares: sharesT1, self: 0 }).ok).toBe(true)
    expect(checkNoiseShares({ ...base, shares: shares.slice(1), self: 0 }).ok).toBe(false)
  })
  it('more noise than planned (equal shares) is accepted; a query needing σ > 2^26 is refused by the planner', () => {
    const plan = planNoise(base)
    const more = Array.from({ length: 4 }, () => plan.sigmas.map((x) => x + 10))
    expect(checkNoiseShares({ ...base, shares: more, self: 2 }).ok).toBe(true)
    const huge = slotSensitivities([{ kind: 'sum', maxAbs: 1e9 }], { kind: 'row' })
    expect(() => planNoise({ ...base, slots: huge })).toThrow(/exceeds sigma/)
  })
})
