// Exact discrete Gaussian sampling (protocols/privacy.md §6), after Canonne, Kamath, Steinke, "The Discrete
// Gaussian for Differential Privacy", NeurIPS 2020 (arXiv:2004.00010), Algorithms 1–3. Internal module: it takes
// its randomness as a parameter; production code reaches it only through sampler.ts (node:crypto words), tests
// through testing.ts (a seeded stream).
//
// Exactness argument. Every probability this file tests is a ratio of integers num/den with 0 ≤ num, den ≤ 2^53,
// decided by one exact uniform draw in [0, den) (random.ts uniformBelow); every integer it computes stays below
// 2^53 (or is computed in BigInt), so binary64 arithmetic is exact: no rounding and no floating-point
// transcendental ever decides an outcome. σ is restricted to an integer 1 ≤ σ ≤ 2^26, which lets the Laplace
// proposal use scale t = σ: then σ²/t = σ is an integer and the acceptance exponent (|y| − σ)²/(2σ²) is a ratio
// of integers with denominator 2σ² ≤ 2^53. (The calibration rounds σ up to an integer: more noise, never less.)
import { uniformBelow, type WordSource } from './random.ts'

/** the largest per-provider σ the exact sampler accepts: 2σ² must stay ≤ 2^53 */
export const MAX_SIGMA = 67_108_864 // 2^26

/** Single uniform bits, 32 per word of the source (most decisions below need 1–3 bits, not a word). */
export class Bits {
  private w = 0
  private n = 0
  readonly src: WordSource
  constructor(src: WordSource) {
    this.src = src
  }
  bit(): number {
    if (this.n === 0) {
      this.w = this.src.next()
      this.n = 32
    }
    this.n--
    const b = this.w & 1
    this.w >>>= 1
    return b
  }
}

/**
 * Bernoulli(num/den) for integers 0 ≤ num, 1 ≤ den ≤ 2^53, by lazy comparison: the binary expansion of num/den
 * (long division, r ← 2r, digit = [r ≥ den]) against uniform bits, deciding at the first bit that differs
 * (expected 2 bits). r < den ≤ 2^53, so 2r < 2^54 is an exact even integer and 2r − den < 2^53 is exact.
 */
function bernoulli(bits: Bits, num: number, den: number): boolean {
  if (num >= den) return true
  if (num <= 0) return false
  let r = num
  for (;;) {
    r *= 2
    let digit = 0
    if (r >= den) {
      r -= den
      digit = 1
    }
    const b = bits.bit()
    if (b !== digit) return b < digit
    if (r === 0) return false // the rest of num/den is 0: the uniform is ≥ num/den
  }
}

/**
 * Bernoulli(exp(−num/den)) for 0 ≤ num ≤ den (CKS Algorithm 1, γ ∈ [0, 1]): K ← 1; while Bernoulli(γ/K) succeeds,
 * K ← K + 1; return whether K is odd. Bernoulli(γ/K) is drawn as Bernoulli(γ) ∧ Bernoulli(1/K) (independent draws,
 * same law), so no denominator ever exceeds 2^53.
 */
function bernoulliExpFrac(bits: Bits, num: number, den: number): boolean {
  let k = 1
  while (bernoulli(bits, num, den) && bernoulli(bits, 1, k)) k++
  return (k & 1) === 1
}

/** Bernoulli(exp(−1)) */
function bernoulliExpMinusOne(bits: Bits): boolean {
  return bernoulliExpFrac(bits, 1, 1)
}

/** Bernoulli(exp(−num/den)) for safe integers num ≥ 0, den ≥ 1 (CKS Algorithm 1, γ > 1: ⌊γ⌋ × Bernoulli(e^−1)) */
function bernoulliExp(bits: Bits, num: number, den: number): boolean {
  const r = num % den // IEEE remainder of integers is exact
  const g = (num - r) / den // an exact multiple of den: exact
  for (let i = 0; i < g; i++) if (!bernoulliExpMinusOne(bits)) return false
  return bernoulliExpFrac(bits, r, den)
}

/** the same for num given as a BigInt (the rare tail where (|y| − σ)² ≥ 2^53) */
function bernoulliExpBig(bits: Bits, num: bigint, den: number): boolean {
  const d = BigInt(den)
  const r = num % d
  for (let g = (num - r) / d; g > 0n; g--) if (!bernoulliExpMinusOne(bits)) return false
  return bernoulliExpFrac(bits, Number(r), den)
}

/**
 * Discrete Laplace with scale t (P[x] ∝ exp(−|x|/t)) for an integer 1 ≤ t ≤ 2^26 (CKS Algorithm 2, s = 1):
 * U uniform in [0, t), kept with probability exp(−U/t); V geometric via Bernoulli(e^−1); X = U + tV; a random sign,
 * rejecting the negative zero.
 */
export function discreteLaplace(bits: Bits, t: number): number {
  for (;;) {
    const u = uniformBelow(bits.src, t)
    if (!bernoulliExpFrac(bits, u, t)) continue
    let v = 0
    while (bernoulliExpMinusOne(bits)) v++
    const x = u + t * v
    // |x| ≥ 2^53 needs V ≥ 2^53/t ≥ 2^27, probability < exp(−2^27): the law is truncated there, a change in mass
    // below anything a binary64 can represent (and below any δ we could print)
    if (!Number.isSafeInteger(x)) continue
    const negative = bits.bit() === 1
    if (negative && x === 0) continue
    return negative ? -x : x
  }
}

/**
 * One sample of the discrete Gaussian N_Z(0, σ²) (P[x] ∝ exp(−x²/(2σ²)), x ∈ Z) for an integer 1 ≤ σ ≤ 2^26
 * (CKS Algorithm 3 with proposal scale t = σ): Y ~ DLap(σ), accepted with probability exp(−(|Y| − σ)²/(2σ²)).
 * Since −y²/(2σ²) = −|y|/σ − (|y| − σ)²/(2σ²) + 1/2, the accepted Y has exactly the target law.
 */
export function discreteGaussian(bits: Bits, sigma: number): number {
  const den = 2 * sigma * sigma
  for (;;) {
    const y = discreteLaplace(bits, sigma)
    const d = Math.abs(y) - sigma
    const num = d * d
    const accept = num <= Number.MAX_SAFE_INTEGER ? bernoulliExp(bits, num, den) : bernoulliExpBig(bits, BigInt(d) * BigInt(d), den)
    if (accept) return y
  }
}

/** Throws RangeError unless σ is an integer in [1, MAX_SIGMA]. */
export function checkSigma(sigma: number): void {
  if (!Number.isInteger(sigma) || sigma < 1 || sigma > MAX_SIGMA) {
    throw new RangeError(`expected an integer noise sigma in [1, ${MAX_SIGMA}], got ${sigma}`)
  }
}

/** Where noise goes in a vector: the data part only (canaries follow it), with one σ per slot of a cell. */
export interface NoiseLayout {
  /** number of data words L; words at index ≥ L (the canaries) are never touched */
  readonly dataLength: number
  /** per-provider σ for slot s of every cell (vector index = cell × slots + s; negotiation.md §3.4) */
  readonly sigmas: readonly number[]
}

export function checkLayout(vec: BigUint64Array, layout: NoiseLayout): void {
  const { dataLength, sigmas } = layout
  if (sigmas.length === 0) throw new RangeError('expected at least one slot sigma')
  for (const s of sigmas) checkSigma(s)
  if (!Number.isSafeInteger(dataLength) || dataLength < 0 || dataLength > vec.length) {
    throw new RangeError(`expected dataLength in [0, ${vec.length}], got ${dataLength}`)
  }
  if (dataLength % sigmas.length !== 0) {
    throw new RangeError(`dataLength ${dataLength} is not a multiple of the ${sigmas.length} slots per cell`)
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
const TWO32 = 4_294_967_296

/**
 * Adds fresh N_Z(0, σ_slot²) noise to every data word of `vec` in Z_2^64, in place (two's complement: a negative
 * sample wraps). Empty cells get noise like any other; nothing is clamped or rounded afterwards.
 */
export function addNoiseWith(src: WordSource, vec: BigUint64Array, layout: NoiseLayout): void {
  checkLayout(vec, layout)
  const bits = new Bits(src)
  const { dataLength, sigmas } = layout
  const slots = sigmas.length
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < dataLength; i++) vec[i] = (vec[i] as bigint) + BigInt(discreteGaussian(bits, sigmas[i % slots] as number))
    return
  }
  // Little-endian host: word i is (lo = w[2i], hi = w[2i+1]); add the safe-integer noise n = nHi·2^32 + nLo with
  // 0 ≤ nLo < 2^32, carrying into hi; ToUint32 (>>> 0) reduces mod 2^32 exactly for any safe integer.
  const w = new Uint32Array(vec.buffer, vec.byteOffset, dataLength * 2)
  for (let i = 0; i < dataLength; i++) {
    const n = discreteGaussian(bits, sigmas[i % slots] as number)
    const nHi = Math.floor(n / TWO32)
    const nLo = n - nHi * TWO32
    const lo = (w[2 * i] as number) + nLo
    const carry = lo >= TWO32 ? 1 : 0
    w[2 * i] = lo >>> 0
    w[2 * i + 1] = ((w[2 * i + 1] as number) + nHi + carry) >>> 0
  }
}

/** `count` independent samples of N_Z(0, σ²) */
export function samplesWith(src: WordSource, sigma: number, count: number): Float64Array {
  checkSigma(sigma)
  const bits = new Bits(src)
  const out = new Float64Array(count)
  for (let i = 0; i < count; i++) out[i] = discreteGaussian(bits, sigma)
  return out
}
