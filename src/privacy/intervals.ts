// What the buyer is told about the noise (protocols/privacy.md §7): per aggregate slot the total noise's standard
// deviation and a 95% interval, a mean's propagated interval, the null rule for means and `suppress_below`.
// Post-processing of the noisy output: none of it costs privacy budget. Pure functions, no I/O.

/** z for a two-sided 95% normal interval */
export const Z95 = 1.959963984540054
/** a mean is reported as null where its noisy count is below MEAN_NULL_K · σ_count (σ of the total count noise) */
export const MEAN_NULL_K = 3

/** Var(N_Z(0, σ²)) = Σ k² e^{−k²/2σ²} / Σ e^{−k²/2σ²}; below σ² (CKS20 §2), equal to it up to O(σ⁴e^{−2π²σ²}). */
export function discreteGaussianVariance(sigma: number): number {
  if (sigma >= 8) return sigma * sigma // 1 − Var/σ² < 10^-500: not representable
  let num = 0
  let den = 1
  const kMax = Math.ceil(40 * sigma) + 2
  for (let k = kMax; k >= 1; k--) {
    const p = Math.exp((-k * k) / (2 * sigma * sigma))
    num += 2 * k * k * p
    den += 2 * p
  }
  return num / den
}

/** The pmf of the sum of n iid N_Z(0, σ²) on [−W, W], by repeated convolution (small σ·n only). */
function sumPmf(sigma: number, n: number): { pmf: Float64Array; offset: number } {
  const half = Math.ceil(14 * sigma) + 1 // tail beyond 14σ: < e^{−98}
  const one = new Float64Array(2 * half + 1)
  let z = 0
  for (let k = -half; k <= half; k++) z += one[k + half] = Math.exp((-k * k) / (2 * sigma * sigma))
  for (let i = 0; i < one.length; i++) one[i] = (one[i] as number) / z
  let acc = one
  for (let j = 1; j < n; j++) {
    const next = new Float64Array(acc.length + one.length - 1)
    for (let a = 0; a < acc.length; a++) {
      const pa = acc[a] as number
      if (pa < 1e-300) continue
      for (let b = 0; b < one.length; b++) next[a + b] = (next[a + b] as number) + pa * (one[b] as number)
    }
    acc = next
  }
  return { pmf: acc, offset: (acc.length - 1) / 2 }
}

/** erf, Abramowitz & Stegun 7.1.26 refined by one Newton-free series switch; |error| < 2e-7 (enough for coverage). */
function erf(x: number): number {
  const s = Math.sign(x)
  const a = Math.abs(x)
  const t = 1 / (1 + 0.3275911 * a)
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a)
  return s * y
}

export interface NoiseInterval {
  /** standard deviation of the total noise in one cell of this slot (all N providers' shares) */
  readonly std: number
  /** integer half-width w: the reported interval is noisy ± w */
  readonly halfWidth: number
  /** P(|total noise| ≤ w), ≥ 0.95: what a coverage check must expect (lattice effects make it exceed 0.95) */
  readonly coverage: number
}

/**
 * The 95% interval of one cell of one slot: the total noise is the sum of the N providers' N_Z(0, σ²) shares (the
 * interval assumes every provider added its share). w = the smallest integer with P(|Z| ≤ w) ≥ 0.95: exact by
 * convolution when σ ≤ 8 and N ≤ 20 (the lattice matters there; cost ∝ σ²N²), otherwise from the normal law with
 * Var = N·Var(N_Z(0, σ²)) and a continuity correction (checked against the exact sum in test/privacy/intervals.test.ts).
 */
export function noiseInterval(sigma: number, providers: number, level = 0.95): NoiseInterval {
  if (!Number.isInteger(providers) || providers < 1) throw new RangeError(`expected providers ≥ 1, got ${providers}`)
  if (!(sigma >= 1)) throw new RangeError(`expected sigma ≥ 1, got ${sigma}`)
  const std = Math.sqrt(providers * discreteGaussianVariance(sigma))
  if (sigma <= 8 && providers <= 20) {
    const { pmf, offset } = sumPmf(sigma, providers)
    let mass = pmf[offset] as number
    let w = 0
    while (mass < level && w < offset) {
      w++
      mass += (pmf[offset + w] as number) + (pmf[offset - w] as number)
    }
    return { std, halfWidth: w, coverage: Math.min(mass, 1) }
  }
  const cover = (w: number): number => erf((w + 0.5) / (std * Math.SQRT2))
  let w = Math.max(0, Math.floor(Z95 * std) - 2)
  while (cover(w) < level) w++
  return { std, halfWidth: w, coverage: cover(w) }
}

export interface MeanEstimate {
  /** noisy_sum / noisy_count in value units (divided by scale), or null where the count is below k·σ_count */
  readonly mean: number | null
  readonly low: number | null
  readonly high: number | null
}

/**
 * A mean from its two noisy slots: m = S / C, null where C < MEAN_NULL_K · countStd. Interval by the delta method
 * (first-order propagation of independent noises): sd(m) ≈ √(sumStd² + m²·countStd²) / C, m ± Z95·sd(m); S and
 * sumStd are in fixed-point units and divided by `scale` here.
 */
export function meanEstimate(noisySum: number, noisyCount: number, sumStd: number, countStd: number, scale: number): MeanEstimate {
  if (!(noisyCount >= MEAN_NULL_K * countStd) || noisyCount <= 0) return { mean: null, low: null, high: null }
  const m = noisySum / noisyCount
  const sd = Math.sqrt(sumStd * sumStd + m * m * countStd * countStd) / noisyCount
  return { mean: m / scale, low: (m - Z95 * sd) / scale, high: (m + Z95 * sd) / scale }
}

/** `suppress_below`: a cell whose noisy count is below the threshold is marked suppressed (post-processing). */
export function isSuppressed(noisyCount: number, suppressBelow: number | undefined): boolean {
  return suppressBelow !== undefined && noisyCount < suppressBelow
}

/**
 * A bound B on the total noise of every cell at once, for the overflow check (negotiation.md §3.5): the sum of N
 * shares N_Z(0, σ²) is Nσ²-subgaussian (CKS20 §2: N_Z(0, σ²) is σ²-subgaussian; independent subgaussians add), so
 * P(∃ cell: |Z| > B) ≤ 2·cells·exp(−B²/(2Nσ²)) ≤ 2^−failureLog2 for B = σ·√(2N·(ln(2·cells) + failureLog2·ln 2)).
 */
export function noiseTailBound(sigma: number, providers: number, cells: number, failureLog2 = 64): number {
  return Math.ceil(sigma * Math.sqrt(2 * providers * (Math.log(2 * cells) + failureLog2 * Math.LN2)))
}

/** ln C(n, k) + k ln p + (n − k) ln(1 − p): the binomial log-pmf, by log-gamma-free summation of logs */
function binomialLogPmfs(n: number, p: number): Float64Array {
  const out = new Float64Array(n + 1)
  out[0] = n * Math.log1p(-p)
  const r = Math.log(p) - Math.log1p(-p)
  for (let k = 1; k <= n; k++) out[k] = (out[k - 1] as number) + Math.log((n - k + 1) / k) + r
  return out
}

export interface CoverageVerdict {
  readonly ok: boolean
  /** P(X ≤ hits) and P(X ≥ hits) for X ~ Binomial(cells, coverage) */
  readonly lower: number
  readonly upper: number
}

/**
 * The honest check of reported intervals against exact totals (issue 15, ride-sharing): `hits` of `cells` exact
 * values inside their intervals, each with probability `coverage` (noiseInterval's). Passes unless either exact
 * binomial tail is below alpha/2 (default alpha = 10^-6), so it fails with the noise switched off (all inside)
 * once coverage^cells < alpha/2 — e.g. ≥ 283 cells at 0.95 — and with the noise doubled.
 */
export function coverageCheck(hits: number, cells: number, coverage: number, alpha = 1e-6): CoverageVerdict {
  if (!Number.isInteger(cells) || cells < 1 || !Number.isInteger(hits) || hits < 0 || hits > cells) throw new RangeError(`expected 0 ≤ hits ≤ cells, got ${hits} of ${cells}`)
  const lp = binomialLogPmfs(cells, coverage)
  let lower = 0
  let upper = 0
  for (let k = 0; k <= cells; k++) {
    const p = Math.exp(lp[k] as number)
    if (k <= hits) lower += p
    if (k >= hits) upper += p
  }
  return { ok: lower >= alpha / 2 && upper >= alpha / 2, lower: Math.min(lower, 1), upper: Math.min(upper, 1) }
}

/** the fewest cells for which coverageCheck fails when every cell is inside (noise off) */
export function minCellsToDetectNoNoise(coverage: number, alpha = 1e-6): number {
  return Math.ceil(Math.log(alpha / 2) / Math.log(coverage))
}
