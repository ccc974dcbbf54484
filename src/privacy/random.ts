// Uniform 32-bit words for the noise sampler (protocols/privacy.md §6).
// Production noise draws ONLY from node:crypto (`CryptoWords`): fresh OS-seeded CSPRNG output, independent of
// every mask seed and pair key (those are revealed or shared). Tests inject a seeded stream through
// src/privacy/testing.ts, which no production module imports (test/privacy/sampler.test.ts checks that).
import { randomFillSync } from 'node:crypto'

/** A stream of independent uniform 32-bit words. */
export interface WordSource {
  /** the next uniform integer in [0, 2^32) */
  next(): number
}

// 64 KiB per refill: one randomFillSync call per ~16k words keeps the call overhead off the per-cell cost.
const POOL_WORDS = 16_384

/** node:crypto randomness, batched. Wipe with `dispose()` when done (the words are noise-determining). */
export class CryptoWords implements WordSource {
  private readonly pool = new Uint32Array(POOL_WORDS)
  private pos = POOL_WORDS
  next(): number {
    if (this.pos === POOL_WORDS) {
      randomFillSync(this.pool)
      this.pos = 0
    }
    return this.pool[this.pos++] as number
  }
  dispose(): void {
    this.pool.fill(0)
    this.pos = POOL_WORDS
  }
}

const TWO32 = 4_294_967_296
const TWO53 = 9_007_199_254_740_992

/**
 * A uniform integer in [0, n), exactly, for an integer 1 ≤ n ≤ 2^53: rejection sampling on 32 or 53 uniform bits
 * (accept a draw below the largest multiple of n, return it mod n). Every arithmetic step is on integers below
 * 2^53, so IEEE binary64 computes it exactly.
 */
export function uniformBelow(src: WordSource, n: number): number {
  if (n <= TWO32) {
    const limit = TWO32 - (TWO32 % n)
    for (;;) {
      const u = src.next()
      if (u < limit) return u % n
    }
  }
  if (n > TWO53 || !Number.isInteger(n)) throw new RangeError(`uniformBelow: expected an integer n ≤ 2^53, got ${n}`)
  const limit = TWO53 - (TWO53 % n)
  for (;;) {
    const u = (src.next() & 0x1f_ffff) * TWO32 + src.next()
    if (u < limit) return u % n
  }
}
