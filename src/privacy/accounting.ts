// zCDP accounting for distributed discrete Gaussian noise (protocols/privacy.md §2–§5). Pure functions of public
// parameters; no I/O. Units: ρ of ρ-zCDP (Bun–Steinke 2016); composition adds ρ.
//
// Sources, cited where used:
//  [CKS20] Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy", NeurIPS 2020, arXiv:2004.00010.
//  [KLS21] Kairouz, Liu, Steinke, "The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure
//          Aggregation", ICML 2021, arXiv:2102.06387.
import { MAX_SIGMA } from './_dgauss.ts'

/** relative safety margin: a ρ derived from (ε, δ) is lowered by this factor so float rounding never overspends */
const RHO_MARGIN = 1e-9

function checkPositive(name: string, x: number): void {
  if (!(Number.isFinite(x) && x > 0)) throw new RangeError(`expected ${name} > 0 and finite, got ${x}`)
}

/**
 * The smallest δ such that ρ-zCDP implies (ε, δ)-DP, by the tight conversion [CKS20 Prop. 12 / Cor. 13]:
 * δ = inf_{α>1} exp((α−1)(αρ − ε)) / (α − 1) · (1 − 1/α)^α. Any α > 1 gives a valid δ; the optimum is found by
 * bisection on the derivative's sign, (2α − 1)ρ − ε + ln(1 − 1/α) = 0. Clamped to ≤ 1.
 */
export function zcdpDelta(rho: number, epsilon: number): number {
  if (!(rho >= 0) || !(epsilon >= 0)) throw new RangeError(`expected rho ≥ 0 and epsilon ≥ 0, got ${rho}, ${epsilon}`)
  if (rho === 0) return 0
  let lo = 1 + 1e-9
  let hi = (epsilon + 1) / (2 * rho) + 2
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const a = (lo + hi) / 2
    if ((2 * a - 1) * rho - epsilon + Math.log1p(-1 / a) < 0) lo = a
    else hi = a
  }
  const a = (lo + hi) / 2
  const delta = Math.exp((a - 1) * (a * rho - epsilon) + a * Math.log1p(-1 / a)) / (a - 1)
  return Math.min(delta, 1)
}

/** The smallest ε such that ρ-zCDP implies (ε, δ)-DP (bisection on zcdpDelta, which decreases in ε). */
export function zcdpEpsilon(rho: number, delta: number): number {
  checkPositive('delta', delta)
  if (!(rho >= 0)) throw new RangeError(`expected rho ≥ 0, got ${rho}`)
  if (rho === 0 || delta >= 1) return 0
  let lo = 0
  let hi = rho + 2 * Math.sqrt(rho * Math.log(1 / delta)) // Bun–Steinke's bound: always enough
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const e = (lo + hi) / 2
    if (zcdpDelta(rho, e) <= delta) hi = e
    else lo = e
  }
  return hi
}

/**
 * The largest ρ whose tight conversion gives (ε, δ)-DP: the zCDP budget of a query or of a ledger. Lowered by a
 * relative 1e-9 so that the returned ρ satisfies zcdpDelta(ρ, ε) ≤ δ despite float rounding (checked).
 */
export function rhoForEpsilonDelta(epsilon: number, delta: number): number {
  checkPositive('epsilon', epsilon)
  checkPositive('delta', delta)
  if (delta >= 1) throw new RangeError(`expected delta < 1, got ${delta}`)
  let lo = 0
  let hi = Math.max(epsilon, 1)
  while (zcdpDelta(hi, epsilon) <= delta) hi *= 2
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const r = (lo + hi) / 2
    if (zcdpDelta(r, epsilon) <= delta) lo = r
    else hi = r
  }
  const rho = lo * (1 - RHO_MARGIN)
  if (!(zcdpDelta(rho, epsilon) <= delta)) throw new Error('rhoForEpsilonDelta: conversion did not verify')
  return rho
}

/** [KLS21] τ for a sum of h iid N_Z(0, σ²): τ = 10 · Σ_{k=1}^{h−1} exp(−2π²σ² · k/(k+1)); 0 for h = 1. */
export function kls21Tau(sigma: number, honest: number): number {
  let tau = 0
  for (let k = 1; k < honest; k++) tau += Math.exp((-2 * Math.PI * Math.PI * sigma * sigma * k) / (k + 1))
  return 10 * tau
}

/** What one neighbouring change can move, per noise component (one slot of every cell). */
export interface Sensitivity {
  /** ‖Δ‖₁ over the component's d cells */
  readonly l1: number
  /** ‖Δ‖₂ over the component's d cells */
  readonly l2: number
}

/**
 * ρ of one noise component: h honest providers each adding iid N_Z(0, σ²) to each of d cells, against any integer
 * shift Δ with ‖Δ‖₁ ≤ l1, ‖Δ‖₂ ≤ l2. [KLS21 Prop. 14] bounds the Rényi divergence of order α by
 *   min{ α/2 · (l2²/(hσ²) + 2 l1 τ/(√h σ) + τ² d),  α/2 · (l2/(√h σ) + τ √d)²,  α l2²/(2hσ²) + τ d }.
 * The first two are linear in α, i.e. zCDP; we use ρ = ½ min(of those two) and never the single discrete Gaussian
 * bound at hσ² (the sum of discrete Gaussians is not one). h = 1 gives τ = 0 and ρ = l2²/(2σ²) [CKS20 §2, the discrete Gaussian mechanism is Δ²/(2σ²)-zCDP].
 */
export function distributedGaussianRho(sigma: number, honest: number, dim: number, s: Sensitivity): number {
  checkPositive('sigma', sigma)
  if (!Number.isInteger(honest) || honest < 1) throw new RangeError(`expected honest ≥ 1, got ${honest}`)
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`expected dim ≥ 1, got ${dim}`)
  const tau = kls21Tau(sigma, honest)
  const sd = Math.sqrt(honest) * sigma
  const a = (s.l2 * s.l2) / (sd * sd) + (2 * s.l1 * tau) / sd + tau * tau * dim
  const b = (s.l2 / sd + tau * Math.sqrt(dim)) ** 2
  return Math.min(a, b) / 2
}

/** The smallest integer σ ≥ 1 with distributedGaussianRho(σ, h, d, s) ≤ rho; RangeError if it exceeds MAX_SIGMA. */
export function calibrateSigma(rho: number, honest: number, dim: number, s: Sensitivity): number {
  checkPositive('rho', rho)
  const ok = (sigma: number): boolean => distributedGaussianRho(sigma, honest, dim, s) <= rho
  // the continuous-Gaussian value is a lower bound (τ ≥ 0 only adds); search upward from it
  let lo = Math.max(1, Math.floor(s.l2 / Math.sqrt(2 * rho * honest)))
  if (ok(lo)) {
    if (lo === 1) return 1
    lo = 1 // should not happen (τ ≥ 0), but stay correct: bisect from 1
  }
  let hi = Math.max(lo + 1, Math.ceil(s.l2 / Math.sqrt(2 * rho * honest)))
  while (!ok(hi)) {
    if (hi > MAX_SIGMA) throw new RangeError(`the noise this query needs exceeds sigma ${MAX_SIGMA} per provider`)
    hi *= 2
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (ok(mid)) hi = mid
    else lo = mid
  }
  if (hi > MAX_SIGMA) throw new RangeError(`the noise this query needs exceeds sigma ${MAX_SIGMA} per provider`)
  return hi
}

// ---- sensitivity from the query's aggregates and the privacy unit (privacy.md §3) ----

/** One aggregate as the accountant sees it; maxAbs = max |round(clip · scale)| over the clip's two ends. */
export type DpAggregate =
  | { readonly kind: 'count' }
  | { readonly kind: 'count_distinct' }
  | { readonly kind: 'sum'; readonly maxAbs: number }
  /** span = |round(clip_max·scale) − round(clip_min·scale)|: a cell over max_rows_per_provider is rescaled (below) */
  | { readonly kind: 'mean'; readonly maxAbs: number; readonly span: number }

/** The privacy unit, as the provider's policy sets it for the dataset. */
export type DpUnit =
  | { readonly kind: 'row' }
  | { readonly kind: 'column'; readonly column: string; readonly maxCells: number; readonly maxRowsPerCell: number }

/**
 * Per-slot sensitivity, in vector slot order (negotiation.md §3.4: count → 1 slot, sum → 1, mean → 2 (sum, count),
 * count_distinct → 1). Neighbouring relation: add or remove every row of one privacy unit at one provider.
 * A unit touches ≤ m cells (m = 1 for `row`) with ≤ r rows each (r = 1 for `row`); per cell a slot moves by at most
 * b = r · (1 for a count or a mean's count; maxAbs for a sum; max(maxAbs, span) for a mean's sum; 1 per row for
 * count_distinct, which a row can move by at most one). So ‖Δ‖₁ ≤ m·b and ‖Δ‖₂ ≤ √m·b per slot.
 * A mean's sum: a cell of n > t = max_rows_per_provider rows is clamped to sum·t/n (negotiation.md §3.7, clampCell),
 * and one row v more moves that by (t/(n+1))·(v − sum/n), up to the clip's span — twice maxAbs for a clip
 * symmetric about 0 — and after the two roundings still at most span (an integer below span + 1).
 */
export function slotSensitivities(aggregates: readonly DpAggregate[], unit: DpUnit): Sensitivity[] {
  const m = unit.kind === 'row' ? 1 : unit.maxCells
  const r = unit.kind === 'row' ? 1 : unit.maxRowsPerCell
  if (!Number.isSafeInteger(m) || m < 1) throw new RangeError(`expected max_cells ≥ 1, got ${m}`)
  if (!Number.isSafeInteger(r) || r < 1) throw new RangeError(`expected max_rows_per_cell ≥ 1, got ${r}`)
  const slot = (perRow: number): Sensitivity => {
    if (!Number.isFinite(perRow) || perRow < 0) throw new RangeError(`expected a per-row bound ≥ 0, got ${perRow}`)
    const b = r * Math.max(perRow, 1) // a zero clip still gets unit noise: every data slot is noised
    return { l1: m * b, l2: Math.sqrt(m) * b }
  }
  const out: Sensitivity[] = []
  for (const a of aggregates) {
    if (a.kind === 'count' || a.kind === 'count_distinct') out.push(slot(1))
    else if (a.kind === 'sum') out.push(slot(a.maxAbs))
    else out.push(slot(Math.max(a.maxAbs, a.span)), slot(1))
  }
  return out
}

// ---- the query's noise plan and the provider's acceptance rule (privacy.md §4) ----

export interface NoisePlanInput {
  readonly epsilon: number
  readonly delta: number
  /** per-slot sensitivities (slotSensitivities) */
  readonly slots: readonly Sensitivity[]
  /** number of cells (each slot has one value per cell) */
  readonly cells: number
  /** N, the providers in the query */
  readonly providers: number
  /** t, the other providers assumed dishonest (default N − 2); the honest count is h = N − t */
  readonly dishonest: number
}

export interface NoisePlan {
  /** the query's budget in zCDP units: the ledger's cost of the run */
  readonly rho: number
  /** per-provider σ for each slot of a cell (every provider the same; sampler NoiseLayout.sigmas) */
  readonly sigmas: number[]
  /** h = N − t */
  readonly honest: number
  /** ρ actually guaranteed by the h honest providers' noise alone (≤ rho) */
  readonly achievedRho: number
}

export function honestCount(providers: number, dishonest: number): number {
  if (!Number.isInteger(providers) || providers < 1) throw new RangeError(`expected providers ≥ 1, got ${providers}`)
  if (!Number.isInteger(dishonest) || dishonest < 0 || dishonest > providers - 1) {
    throw new RangeError(`expected 0 ≤ dishonest ≤ ${providers - 1}, got ${dishonest}`)
  }
  return providers - dishonest
}

/**
 * The query's ρ from its (ε, δ), split equally over the S slots of a cell (a mean's sum and count are two), each
 * slot calibrated to the smallest integer σ whose h-provider sum meets ρ/S.
 */
export function planNoise(input: NoisePlanInput): NoisePlan {
  const rho = rhoForEpsilonDelta(input.epsilon, input.delta)
  const honest = honestCount(input.providers, input.dishonest)
  if (input.slots.length === 0) throw new RangeError('expected at least one slot')
  const perSlot = rho / input.slots.length
  const sigmas = input.slots.map((s) => calibrateSigma(perSlot, honest, input.cells, s))
  const achievedRho = sigmas.reduce((acc, sigma, i) => acc + distributedGaussianRho(sigma, honest, input.cells, input.slots[i] as Sensitivity), 0)
  return { rho, sigmas, honest, achievedRho }
}

export type NoiseCheck =
  | { readonly ok: true; readonly rho: number; readonly achievedRho: number }
  | { readonly ok: false; readonly code: 'privacy_noise'; readonly message: string }

/**
 * A provider's acceptance rule for the noise parameters a certificate fixes (`shares[p][s]` = provider p's σ for
 * slot s; p = 0 … N−1 in canonical order, `self` its own index). With its own t (policy, default N − 2), the
 * target (ε, δ) must be met by its own share plus the smallest N − 1 − t other shares. Because the [KLS21] sum
 * bound is for identically distributed shares (the discrete Gaussian is not infinitely divisible, so a larger
 * share is not "a smaller one plus more"), the certificate must give every provider the same σ per slot; then the
 * counted set is h = N − t shares of that σ. Refused otherwise, with code `privacy_noise`.
 */
export function checkNoiseShares(input: NoisePlanInput & { readonly shares: readonly (readonly number[])[]; readonly self: number }): NoiseCheck {
  const { shares, slots, providers } = input
  const fail = (message: string): NoiseCheck => ({ ok: false, code: 'privacy_noise', message })
  if (shares.length !== providers) return fail(`expected noise shares for ${providers} providers, got ${shares.length}`)
  if (!Number.isInteger(input.self) || input.self < 0 || input.self >= providers) return fail(`own index ${input.self} out of range`)
  const honest = honestCount(providers, input.dishonest)
  const rho = rhoForEpsilonDelta(input.epsilon, input.delta)
  let achievedRho = 0
  for (let s = 0; s < slots.length; s++) {
    const own = shares[input.self]?.[s]
    if (own === undefined || !Number.isInteger(own) || own < 1 || own > MAX_SIGMA) return fail(`slot ${s}: own sigma ${String(own)} is not an integer in [1, ${MAX_SIGMA}]`)
    // the own share plus the smallest N − 1 − t others: with equal shares, any other share below ours is the one counted
    const others = shares.filter((_, p) => p !== input.self).map((row) => row[s])
    if (others.some((x) => x !== own) || shares.some((row) => row.length !== slots.length)) {
      return fail(`slot ${s}: providers' noise shares differ; the certificate must give every provider the same sigma`)
    }
    achievedRho += distributedGaussianRho(own, honest, input.cells, slots[s] as Sensitivity)
  }
  if (!(achievedRho <= rho * (1 + 1e-12))) {
    return fail(`the noise of ${honest} honest providers gives rho ${achievedRho.toPrecision(6)} > the query's ${rho.toPrecision(6)} (epsilon ${input.epsilon}, delta ${input.delta})`)
  }
  return { ok: true, rho, achievedRho }
}
