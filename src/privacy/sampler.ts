// The production noise API (protocols/privacy.md §6): exact discrete Gaussian noise from node:crypto randomness.
// No function here accepts a random source: production cannot select a seeded generator. Tests that need
// reproducible draws use src/privacy/testing.ts, which no production module imports.
import { addNoiseWith, Bits, checkSigma, discreteGaussian, MAX_SIGMA, type NoiseLayout } from './_dgauss.ts'
import { CryptoWords } from './random.ts'

export { MAX_SIGMA, type NoiseLayout }

/**
 * Adds each provider's own noise to its vector before masking: fresh N_Z(0, σ_slot²) on every data word
 * (indices < layout.dataLength, empty cells included), none on the canaries after them, in Z_2^64, in place.
 * Throws RangeError on a σ that is not an integer in [1, MAX_SIGMA] or a layout that does not fit the vector.
 */
export function addDiscreteGaussianNoise(vec: BigUint64Array, layout: NoiseLayout): void {
  const words = new CryptoWords()
  try {
    addNoiseWith(words, vec, layout)
  } finally {
    words.dispose()
  }
}

/** One fresh sample of N_Z(0, σ²) from node:crypto (for diagnostics; the vector API is the fast path). */
export function sampleDiscreteGaussian(sigma: number): number {
  checkSigma(sigma)
  const words = new CryptoWords()
  try {
    return discreteGaussian(new Bits(words), sigma)
  } finally {
    words.dispose()
  }
}
