// Exact reference laws and test statistics for the privacy tests (no randomness here).

/** erfc with relative error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit), so small tails stay accurate */
export function erfc(x: number): number {
  const z = Math.abs(x)
  const t = 1 / (1 + 0.5 * z)
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 ? r : 2 - r
}

/** standard normal CDF */
export const Phi = (x: number): number => 0.5 * erfc(-x / Math.SQRT2)

/** pmf of N_Z(0, σ²) on [−K, K] with its exact normaliser (σ ≤ ~1000: direct sum) */
export function dgPmf(sigma: number, K: number): (k: number) => number {
  let z = 1
  const far = Math.ceil(40 * sigma)
  for (let k = 1; k <= far; k++) z += 2 * Math.exp((-k * k) / (2 * sigma * sigma))
  void K
  return (k: number) => Math.exp((-k * k) / (2 * sigma * sigma)) / z
}

export interface Moments {
  mean: number
  variance: number
  fourth: number
}

export function moments(xs: Float64Array): Moments {
  let s = 0
  for (const x of xs) s += x
  const mean = s / xs.length
  let v = 0
  let f = 0
  for (const x of xs) {
    const d = (x - mean) ** 2
    v += d
    f += d * d
  }
  return { mean, variance: v / (xs.length - 1), fourth: f / xs.length }
}

/** z of the sample mean against 0, of the sample variance against `variance` (its SE from the 4th moment) */
export function zScores(xs: Float64Array, variance: number): { zMean: number; zVar: number } {
  const m = moments(xs)
  const n = xs.length
  return { zMean: m.mean / Math.sqrt(variance / n), zVar: (m.variance - variance) / Math.sqrt((m.fourth - variance * variance) / n) }
}

/** binomial z of `hits` out of n against probability p */
export const binomialZ = (hits: number, n: number, p: number): number => (hits - n * p) / Math.sqrt(n * p * (1 - p))

/** Pearson χ² of integer samples against an integer pmf, bins merged until each expects ≥ 50; returns stat and df */
export function chiSquare(xs: Float64Array, pmf: (k: number) => number, lo: number, hi: number): { stat: number; df: number } {
  const n = xs.length
  const counts = new Map<number, number>()
  for (const x of xs) {
    const k = x < lo ? lo - 1 : x > hi ? hi + 1 : x
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  let below = 0
  for (let k = lo - 1; ; k--) {
    const p = pmf(k)
    below += p
    if (p < 1e-300 || k < lo - 100_000) break
  }
  const bins: { p: number; o: number }[] = [{ p: below, o: counts.get(lo - 1) ?? 0 }]
  for (let k = lo; k <= hi; k++) bins.push({ p: pmf(k), o: counts.get(k) ?? 0 })
  bins.push({ p: below, o: counts.get(hi + 1) ?? 0 }) // symmetric law: upper tail = lower tail
  const merged: { p: number; o: number }[] = []
  let acc = { p: 0, o: 0 }
  for (const b of bins) {
    acc = { p: acc.p + b.p, o: acc.o + b.o }
    if (acc.p * n >= 50) {
      merged.push(acc)
      acc = { p: 0, o: 0 }
    }
  }
  if (acc.p > 0 || acc.o > 0) {
    const last = merged.pop() ?? { p: 0, o: 0 }
    merged.push({ p: last.p + acc.p, o: last.o + acc.o })
  }
  let stat = 0
  for (const b of merged) stat += (b.o - n * b.p) ** 2 / (n * b.p)
  return { stat, df: merged.length - 1 }
}

/** the χ² critical value at upper-tail probability 1e-6 (Wilson–Hilferty, z = 4.7534) */
export function chiSquareCritical1e6(df: number): number {
  const z = 4.753424
  const a = 2 / (9 * df)
  return df * (1 - a + z * Math.sqrt(a)) ** 3
}
